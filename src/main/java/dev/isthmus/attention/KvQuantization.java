package dev.isthmus.attention;

/**
 * The quantized KV cache formats, from their definitions (the CUDA side is cuda/kv_quant.cuh):
 * how a value becomes a code and a code a value. The CPU reference appends and attends with these.
 *
 * <p>int8: for a row x (one token's kv head), s = max|x| / 127 in f32 (0 when the row is all
 * zeros), q_i = rne(x_i / s) (f32 division, round to nearest even, clamped to [-127, 127]), and
 * x_i is read back as q_i s. The error of an element is at most s / 2 = max|x| / 254.
 *
 * <p>fp8 E4M3 (OCP 8-bit floating point, "E4M3"): sign, 4 exponent bits with bias 7, 3 mantissa
 * bits; exponent field e >= 1 is 2^(e-7) (1 + m/8), e = 0 the subnormal m 2^-9; S.1111.111 is
 * NaN and there is no infinity, so the largest finite magnitude is 448. With the cache's fixed scale
 * s, c = e4m3(x / s) rounded to the nearest representable value (ties to the even mantissa), values
 * past 448 (infinities too) saturated to +-448, NaN kept as NaN; x is read back as e4m3(c) s. The
 * relative error of an element inside the normal range is at most 2^-4.
 */
public final class KvQuantization {
    private KvQuantization() {}

    /** The largest int8 code magnitude. */
    public static final float INT8_MAX = 127f;
    /** The largest finite E4M3 magnitude. */
    public static final float E4M3_MAX = 448f;

    /** The int8 scale of a row whose largest magnitude is {@code maxAbs}. */
    public static float int8Scale(float maxAbs) {
        return maxAbs / INT8_MAX;
    }

    /** The int8 code of x under {@code scale} (0 when the scale is 0: an all-zero row). */
    public static byte quantizeInt8(float x, float scale) {
        if (!(scale > 0f)) return 0;
        double q = Math.rint(x / scale); // x / scale in f32, then round half to even
        return (byte) Math.max(-INT8_MAX, Math.min(INT8_MAX, q));
    }

    /** The value of E4M3 byte {@code code}, per the format's definition. */
    public static float decodeE4m3(byte code) {
        int bits = code & 0xff;
        int e = (bits >> 3) & 0xf, m = bits & 7;
        if (e == 15 && m == 7) return Float.NaN;
        double magnitude = e == 0 ? m * Math.pow(2, -9) : Math.pow(2, e - 7) * (1 + m / 8.0);
        return (float) ((bits & 0x80) != 0 ? -magnitude : magnitude);
    }

    /**
     * The E4M3 byte nearest to x (ties to the code with the even mantissa), magnitudes past 448
     * saturated to 448, NaN to NaN (0x7f with x's sign). Found by search over the 127 finite
     * non-negative codes, not by bit arithmetic, so that it checks the kernel's rounding.
     */
    public static byte encodeE4m3(float x) {
        int sign = Float.floatToRawIntBits(x) < 0 ? 0x80 : 0;
        if (Float.isNaN(x)) return (byte) (sign | 0x7f);
        double a = Math.min(Math.abs((double) x), E4M3_MAX);
        int best = 0;
        double bestError = Double.POSITIVE_INFINITY;
        for (int c = 0; c < 0x7f; c++) {
            double error = Math.abs(decodeE4m3((byte) c) - a);
            if (error < bestError || (error == bestError && (c & 1) == 0)) {
                best = c;
                bestError = error;
            }
        }
        return (byte) (sign | best);
    }

    /** A stored code (int8, or an E4M3 byte) back to its value under {@code scale}. */
    static float dequantize(KvCacheType type, byte code, float scale) {
        return switch (type) {
            case INT8 -> code * scale;
            case FP8_E4M3 -> decodeE4m3(code) * scale;
            case MODEL_DTYPE -> throw new IllegalArgumentException("the model dtype has no codes");
        };
    }
}
