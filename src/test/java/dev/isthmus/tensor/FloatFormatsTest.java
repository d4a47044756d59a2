package dev.isthmus.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The 16-bit conversions: every bf16 and f16 value survives a round trip through fp32 exactly,
 * and fp32 values between two neighbours go to the nearer one, ties to the even mantissa. The
 * oracle picks the nearer neighbour by exact decimal arithmetic, not by the bit trick the
 * conversion uses.
 */
class FloatFormatsTest {

    @Test
    void everyBf16AndF16ValueRoundTripsExactly() {
        for (int bits = 0; bits < 0x10000; bits++) {
            short b = (short) bits;
            float asBf16 = FloatFormats.bf16ToFloat(b);
            if (Float.isNaN(asBf16)) assertTrue(Float.isNaN(FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(asBf16))));
            else assertEquals(bits, FloatFormats.floatToBf16(asBf16) & 0xffff, "bf16 " + Integer.toHexString(bits));
            float asF16 = FloatFormats.f16ToFloat(b);
            if (Float.isNaN(asF16)) assertTrue(Float.isNaN(FloatFormats.f16ToFloat(FloatFormats.floatToF16(asF16))));
            else assertEquals(bits, FloatFormats.floatToF16(asF16) & 0xffff, "f16 " + Integer.toHexString(bits));
        }
    }

    @Test
    void bf16RoundsToTheNearerNeighbourTiesToEven() {
        Random random = new Random(5);
        for (int i = 0; i < 200_000; i++) {
            float x = Float.intBitsToFloat(random.nextInt());
            if (!Float.isFinite(x) || Math.abs(x) >= 3.38e38f) continue; // the top binade rounds to infinity
            checkNearest(x);
        }
        // Exact ties: halfway between 1 and the next bf16 (1 + 2^-7) stays at 1 (even); halfway
        // above 1 + 2^-7 goes up to 1 + 2^-6 (even).
        assertEquals(1f, FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(1f + 0x1p-8f)));
        assertEquals(1f + 0x1p-6f, FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(1f + 0x1p-7f + 0x1p-8f)));
        assertEquals(-1f, FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(-1f - 0x1p-8f)));
    }

    @Test
    void specialValuesKeepTheirMeaning() {
        assertEquals(Float.POSITIVE_INFINITY, FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(Float.POSITIVE_INFINITY)));
        assertEquals(Float.NEGATIVE_INFINITY, FloatFormats.f16ToFloat(FloatFormats.floatToF16(Float.NEGATIVE_INFINITY)));
        assertEquals(Float.POSITIVE_INFINITY, FloatFormats.f16ToFloat(FloatFormats.floatToF16(65520f)), "past f16's max");
        assertEquals(65504f, FloatFormats.f16ToFloat(FloatFormats.floatToF16(65519f)));
        // A NaN whose payload sits only in the low 16 bits must not truncate to infinity.
        assertTrue(Float.isNaN(FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(Float.intBitsToFloat(0x7f800001)))));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(FloatFormats.roundTo(DType.BF16, -0f)));
        assertEquals(0x1p-24f, FloatFormats.roundTo(DType.F16, 0x1p-24f), "the smallest f16 subnormal");
        assertEquals(0f, FloatFormats.roundTo(DType.F16, 0x1p-26f));
    }

    private static void checkNearest(float x) {
        float rounded = FloatFormats.bf16ToFloat(FloatFormats.floatToBf16(x));
        int truncatedBits = Float.floatToRawIntBits(x) & 0xffff0000;
        float below = Float.intBitsToFloat(truncatedBits);                // toward zero
        float above = Float.intBitsToFloat(truncatedBits + 0x10000);      // away from zero
        BigDecimal exact = new BigDecimal(x);
        int cmp = exact.subtract(new BigDecimal(below)).abs().compareTo(exact.subtract(new BigDecimal(above)).abs());
        float expected;
        if (cmp < 0) expected = below;
        else if (cmp > 0) expected = above;
        else expected = ((truncatedBits >>> 16) & 1) == 0 ? below : above;
        assertEquals(expected, rounded, () -> "bf16 of " + x);
    }
}
