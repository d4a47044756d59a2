package dev.isthmus.quant;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * fp32 to the GGML block formats on the CPU, per block as the formats define them:
 * <ul>
 *   <li>Q8_0, symmetric: d = max|x| / 127, q = round(x / d) (ties away from zero);
 *   <li>Q4_0, symmetric around the value of largest magnitude m: d = m / -8, q = trunc(x / d + 8.5)
 *       clipped to 0..15, so that m itself is q = 0 exactly;
 *   <li>Q4_1, affine: d = (max - min) / 15, q = trunc((x - min) / d + 0.5);
 *   <li>Q4_K: per 32-element sub-block the range [min(0, lo), max(0, hi)]; its negated min is
 *       quantized to 6 bits against dmin (the largest over 63, in f16) rounding up, then its scale
 *       to 6 bits against d rounding up so that 15 steps reach hi from the stored min; the values
 *       are rounded to the nearest of the 16 levels as they dequantize, so none is clipped and the
 *       error is at most half a stored step.
 * </ul>
 * Q8_0, Q4_0 and Q4_1 reproduce ggml's reference quantizers bit for bit (a division is a
 * multiplication by the fp32 reciprocal, as there); Q4_K is Isthmus's own simpler search-free choice of
 * scales, any of which the format dequantizes exactly as written.
 */
public final class Quantize {
    private Quantize() {}

    /** {@code src} (a whole number of blocks) in {@code type}'s bytes. */
    public static byte[] fromFloat(GgmlType type, float[] src) {
        long bytes = type.bytes(src.length);
        if (bytes > Integer.MAX_VALUE) throw new IllegalArgumentException(src.length + " elements of " + type + " do not fit in one array");
        ByteBuffer out = ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int b = 0; b < src.length / type.blockElements(); b++) {
            int at = b * type.blockElements();
            switch (type) {
                case Q8_0 -> q8_0(out, src, at);
                case Q4_0 -> q4_0(out, src, at);
                case Q4_1 -> q4_1(out, src, at);
                case Q4_K -> q4_k(out, src, at);
                default -> throw new IllegalArgumentException("quantizing to " + type + " is not supported (q8_0, q4_0, q4_1, q4_k)");
            }
        }
        return out.array();
    }

    private static short f16(float v) {
        return Float.floatToFloat16(v);
    }

    /** The smallest f16 value at or above {@code v} (v >= 0, within the f16 range). */
    private static float roundedUp(float v) {
        short h = f16(v);
        return Float.float16ToFloat(h) >= v ? Float.float16ToFloat(h) : Float.float16ToFloat((short) (h + 1));
    }

    /** roundf: halves away from zero. */
    private static int roundAway(float v) {
        return (int) (v < 0 ? -Math.floor(-v + 0.5f) : Math.floor(v + 0.5f));
    }

    private static void q8_0(ByteBuffer out, float[] x, int at) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[at + j]));
        float d = amax / 127, id = d != 0 ? 1 / d : 0;
        out.putShort(f16(d));
        for (int j = 0; j < 32; j++) out.put((byte) roundAway(x[at + j] * id));
    }

    private static void q4_0(ByteBuffer out, float[] x, int at) {
        float amax = 0, max = 0;
        for (int j = 0; j < 32; j++)
            if (Math.abs(x[at + j]) > amax) {
                amax = Math.abs(x[at + j]);
                max = x[at + j];
            }
        float d = max / -8, id = d != 0 ? 1 / d : 0;
        out.putShort(f16(d));
        for (int j = 0; j < 16; j++) {
            int lo = Math.min(15, Math.max(0, (int) (x[at + j] * id + 8.5f)));
            int hi = Math.min(15, Math.max(0, (int) (x[at + 16 + j] * id + 8.5f)));
            out.put((byte) (lo | hi << 4));
        }
    }

    private static void q4_1(ByteBuffer out, float[] x, int at) {
        float min = Float.POSITIVE_INFINITY, max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < 32; j++) {
            min = Math.min(min, x[at + j]);
            max = Math.max(max, x[at + j]);
        }
        float d = (max - min) / 15, id = d != 0 ? 1 / d : 0;
        out.putShort(f16(d)).putShort(f16(min));
        for (int j = 0; j < 16; j++) {
            int lo = Math.min(15, (int) ((x[at + j] - min) * id + 0.5f));
            int hi = Math.min(15, (int) ((x[at + 16 + j] - min) * id + 0.5f));
            out.put((byte) (lo | hi << 4));
        }
    }

    private static void q4_k(ByteBuffer out, float[] x, int at) {
        float[] lo = new float[8], hi = new float[8];
        float maxNegMin = 0;
        for (int s = 0; s < 8; s++) {
            lo[s] = 0; // lo <= 0: the format subtracts a non-negative min
            hi[s] = 0;
            for (int j = 0; j < 32; j++) {
                lo[s] = Math.min(lo[s], x[at + 32 * s + j]);
                hi[s] = Math.max(hi[s], x[at + 32 * s + j]);
            }
            maxNegMin = Math.max(maxNegMin, -lo[s]);
        }
        // The mins first, rounded up so that q = 0 reaches each sub-block's low end; then the scales,
        // rounded up so that q = 15 reaches its high end from there: no value is clipped.
        float dmin = roundedUp(maxNegMin / 63);
        int[] sc = new int[8], mn = new int[8];
        float[] need = new float[8];
        float maxNeed = 0;
        for (int s = 0; s < 8; s++) {
            mn[s] = dmin > 0 ? Math.min(63, (int) Math.ceil(-lo[s] / dmin)) : 0;
            need[s] = (hi[s] + dmin * mn[s]) / 15;
            maxNeed = Math.max(maxNeed, need[s]);
        }
        float d = roundedUp(maxNeed / 63);
        for (int s = 0; s < 8; s++) sc[s] = d > 0 ? Math.min(63, (int) Math.ceil(need[s] / d)) : 0;
        out.putShort(f16(d)).putShort(f16(dmin));
        byte[] packed = new byte[12];
        for (int j = 0; j < 4; j++) {
            packed[j] = (byte) (sc[j] | (sc[j + 4] >> 4) << 6);
            packed[j + 4] = (byte) (mn[j] | (mn[j + 4] >> 4) << 6);
            packed[j + 8] = (byte) ((sc[j + 4] & 0xf) | (mn[j + 4] & 0xf) << 4);
        }
        out.put(packed);
        int[] q = new int[256];
        for (int s = 0; s < 8; s++) {
            float step = d * sc[s], offset = dmin * mn[s];
            for (int j = 0; j < 32; j++)
                q[32 * s + j] = step > 0 ? Math.min(15, Math.max(0, Math.round((x[at + 32 * s + j] + offset) / step))) : 0;
        }
        for (int run = 0; run < 4; run++)
            for (int i = 0; i < 32; i++) out.put((byte) (q[64 * run + i] | q[64 * run + 32 + i] << 4));
    }
}
