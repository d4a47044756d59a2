package dev.isthmus.random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** The CPU random fill: its moments, its range, its dependence on the seed alone, and its refusals. */
class RandomFillTest {
    private static final long N = 200_003;

    @Test
    void uniformValuesCoverTheRangeWithTheRightMoments() {
        try (Tensor t = RandomFill.uniform(Backend.cpu(), DType.F32, 11, -3f, 5f, N)) {
            float[] v = t.toFloatArray();
            double mean = 0, min = Double.MAX_VALUE, max = -Double.MAX_VALUE;
            for (float x : v) {
                mean += x / (double) N;
                min = Math.min(min, x);
                max = Math.max(max, x);
            }
            double variance = 0;
            for (float x : v) variance += (x - mean) * (x - mean) / N;
            // Uniform on [-3, 5): mean 1, variance 64 / 12; the standard error of the mean is ~0.005.
            assertEquals(1.0, mean, 0.03);
            assertEquals(64.0 / 12, variance, 0.05);
            assertTrue(min >= -3 && min < -2.99, "min " + min);
            assertTrue(max < 5 && max > 4.99, "max " + max);
        }
    }

    @Test
    void normalValuesHaveTheRightMoments() {
        try (Tensor t = RandomFill.normal(Backend.cpu(), DType.F32, 12, 0.5f, N)) {
            float[] v = t.toFloatArray();
            double mean = 0, second = 0, fourth = 0;
            for (float x : v) {
                mean += x / (double) N;
                second += (double) x * x / N;
                fourth += Math.pow(x, 4) / N;
            }
            assertEquals(0.0, mean, 0.005);
            assertEquals(0.25, second, 0.005);
            // A normal's fourth moment is 3 sigma^4: a uniform or a bad transform misses it.
            assertEquals(3 * 0.0625, fourth, 0.01);
            for (float x : v) assertTrue(Float.isFinite(x));
        }
    }

    @Test
    void valuesDependOnTheSeedAndTheIndexOnly() {
        Backend cpu = Backend.cpu();
        try (Tensor whole = RandomFill.normal(cpu, DType.F32, 5, 1f, 3, 1000);
             Tensor again = RandomFill.normal(cpu, DType.F32, 5, 1f, 3000);
             Tensor other = RandomFill.normal(cpu, DType.F32, 6, 1f, 3000)) {
            float[] a = whole.toFloatArray(), b = again.toFloatArray(), c = other.toFloatArray();
            org.junit.jupiter.api.Assertions.assertArrayEquals(a, b);
            int same = 0;
            for (int i = 0; i < a.length; i++) if (a[i] == c[i]) same++;
            assertTrue(same < 5, same + " equal values across seeds");
            assertNotEquals(a[0], a[1]);
        }
    }

    @Test
    void roundsToTheTensorsDtype() {
        Backend cpu = Backend.cpu();
        try (Tensor f32 = RandomFill.uniform(cpu, DType.F32, 9, -1f, 1f, 4097);
             Tensor bf16 = RandomFill.uniform(cpu, DType.BF16, 9, -1f, 1f, 4097);
             Tensor rounded = f32.to(DType.BF16)) {
            org.junit.jupiter.api.Assertions.assertArrayEquals(rounded.toFloatArray(), bf16.toFloatArray());
        }
    }

    @Test
    void badArgumentsAreRefusedByName() {
        Backend cpu = Backend.cpu();
        try (Tensor ints = Tensor.allocateHost(DType.I32, 4); Tensor f = Tensor.allocateHost(DType.F32, 4, 4)) {
            assertThrows(IllegalArgumentException.class, () -> RandomFill.normal(cpu, ints, 1, 0f, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.normal(cpu, null, 1, 0f, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.normal(null, f, 1, 0f, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.normal(cpu, f, 1, 0f, -1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.uniform(cpu, f, 1, 2f, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.uniform(cpu, f, 1, Float.NaN, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.uniform(cpu, f.slice(1, 0, 2), 1, 0f, 1f));
            assertThrows(IllegalArgumentException.class, () -> RandomFill.normal(cpu, DType.I8, 1, 1f, 4));
        }
    }

    @Test
    void anEmptyTensorIsANoOp() {
        try (Tensor t = RandomFill.normal(Backend.cpu(), DType.F32, 1, 1f, 0, 7)) {
            assertEquals(0, t.elementCount());
        }
    }
}
