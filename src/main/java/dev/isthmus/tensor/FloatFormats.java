package dev.isthmus.tensor;

/**
 * Conversions between fp32 and the 16-bit float formats, exact where the value is representable
 * and round-to-nearest-even otherwise (the IEEE default, and what the CUDA kernels do).
 */
public final class FloatFormats {
    private FloatFormats() {}

    /** bfloat16 is the upper half of an fp32: 1 sign, 8 exponent, 7 mantissa bits. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xffff) << 16);
    }

    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            // Keep the sign, force a quiet NaN: truncation alone could turn a NaN into infinity.
            return (short) ((bits >>> 16) | 0x0040);
        }
        // Round to nearest, ties to even: add 0x7fff plus the lowest kept bit, then truncate.
        int lowestKeptBit = (bits >>> 16) & 1;
        return (short) ((bits + 0x7fff + lowestKeptBit) >>> 16);
    }

    /** IEEE binary16: the JDK's conversions are exact and round to nearest even. */
    public static float f16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    public static short floatToF16(float value) {
        return Float.floatToFloat16(value);
    }

    /** The value {@code value} becomes once stored as {@code dtype} (identity for F32). */
    public static float roundTo(DType dtype, float value) {
        return switch (dtype) {
            case F32 -> value;
            case F16 -> f16ToFloat(floatToF16(value));
            case BF16 -> bf16ToFloat(floatToBf16(value));
            default -> throw new IllegalArgumentException(dtype + " is not a floating-point type");
        };
    }
}
