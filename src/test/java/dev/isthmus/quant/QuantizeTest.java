package dev.isthmus.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * Quantize then dequantize (the dequantization itself is pinned bit for bit to gguf's by
 * GgufFileTest): every element within half a quantization step of the block's range, as each
 * format's definition bounds it, on blocks of awkward content.
 */
class QuantizeTest {
    /** Blocks that stress a quantizer: random normals, an outlier, all equal, all zero, one sign, a negative extreme. */
    static float[] awkward(int blocks, int blockElements, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[blocks * blockElements];
        for (int b = 0; b < blocks; b++)
            for (int j = 0; j < blockElements; j++) {
                int i = b * blockElements + j;
                x[i] = switch (b % 6) {
                    case 0 -> (float) r.nextGaussian();
                    case 1 -> j == 7 ? 40f : (float) r.nextGaussian() * 0.01f;
                    case 2 -> 0.3f;
                    case 3 -> 0f;
                    case 4 -> (float) Math.abs(r.nextGaussian()) + 1f;
                    default -> j == 3 ? -9f : (float) r.nextGaussian();
                };
            }
        return x;
    }

    /**
     * The largest error each format's definition allows a block: half its step, plus the f16
     * rounding of its scales. For Q4_K, per 32-element sub-block at {@code at} of the super-block at
     * {@code superAt}: the stored min and scale are 6-bit multiples of dmin and d, which come from the
     * whole super-block (at most its largest magnitude over 63, and twice that over 15 over 63), and
     * each is rounded up by at most one of those units.
     */
    static float bound(GgmlType type, float[] x, int at, int n, int superAt) {
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY, amax = 0;
        for (int j = 0; j < n; j++) {
            lo = Math.min(lo, x[at + j]);
            hi = Math.max(hi, x[at + j]);
            amax = Math.max(amax, Math.abs(x[at + j]));
        }
        float f16 = amax * 0x1p-10f; // relative rounding of an f16 scale, times the largest value
        return switch (type) {
            case Q8_0 -> amax / 127 / 2 + f16;
            case Q4_0 -> amax / 8 + f16; // the extreme is exact; the opposite end may clip one step
            case Q4_1 -> (hi - lo) / 15 / 2 + 2 * f16;
            case Q4_K -> {
                float superMax = 0;
                for (int j = 0; j < 256; j++) superMax = Math.max(superMax, Math.abs(x[superAt + j]));
                float dmin = superMax / 63 * (1 + 0x1p-10f), d = (2 * superMax + dmin) / 15 / 63 * (1 + 0x1p-10f);
                yield ((Math.max(hi, 0) - Math.min(lo, 0) + dmin) / 15 + d) / 2 + 2 * f16;
            }
            default -> throw new IllegalArgumentException(type.name());
        };
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1", "Q4_K"})
    void roundTripStaysWithinHalfAStep(GgmlType type) {
        int blocks = type == GgmlType.Q4_K ? 13 : 97;
        float[] x = awkward(blocks * (type == GgmlType.Q4_K ? 8 : 1), 32, 42 + type.ordinal());
        byte[] q = Quantize.fromFloat(type, x);
        assertEquals(type.bytes(x.length), q.length);
        float[] back = new float[x.length];
        Dequantize.toFloat(back, type, MemorySegment.ofArray(q));
        int sub = 32; // Q4_K is bounded per 32-element sub-block, the others per block
        for (int at = 0; at < x.length; at += sub) {
            float b = bound(type, x, at, sub, at / 256 * 256);
            for (int j = 0; j < sub; j++) {
                float err = Math.abs(back[at + j] - x[at + j]);
                assertTrue(err <= b * 1.0001f + 1e-12f, type + " element " + (at + j) + ": " + x[at + j] + " -> " + back[at + j] + ", error " + err
                        + " over the bound " + b);
            }
        }
    }

    @Test
    void zerosStayZeroAndExtremesAreExact() {
        float[] zeros = new float[256];
        for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q4_K}) {
            float[] back = new float[256];
            Dequantize.toFloat(back, t, MemorySegment.ofArray(Quantize.fromFloat(t, zeros)));
            for (float v : back) assertEquals(0f, v, 0f, t.name()); // -0 (a zero scale times a negative level) is zero
        }
        float[] x = new float[32];
        x[5] = -2.5f; // Q4_0 maps its extreme to q = 0 exactly: d = -2.5 / -8
        float[] back = new float[32];
        Dequantize.toFloat(back, GgmlType.Q4_0, MemorySegment.ofArray(Quantize.fromFloat(GgmlType.Q4_0, x)));
        assertEquals(-2.5f, back[5]);
    }

    @Test
    void refusesWhatItCannotQuantize() {
        assertThrows(IllegalArgumentException.class, () -> Quantize.fromFloat(GgmlType.Q6_K, new float[256]));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Quantize.fromFloat(GgmlType.Q8_0, new float[33]));
        assertTrue(e.getMessage().contains("not a multiple"), e.getMessage());
    }
}
