package dev.isthmus.random;

import dev.isthmus.tensor.Tensor;

/**
 * The CPU side of {@link RandomFill}, written from the definition in isthmus.h: SplitMix64's
 * output function of seed + (i + 1) * 0x9E3779B97F4A7C15 for element i; the top 24 bits as a
 * uniform u in [0, 1); uniform values fma(u, high - low, low) in float, normal ones by Box-Muller
 * in double.
 */
final class RandomFillReference {
    private RandomFillReference() {}

    private static final int CHUNK = 1 << 20;

    /** The 64 random bits of element {@code i}. */
    static long bits(long seed, long i) {
        long z = seed + (i + 1) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    static float value(long seed, long i, RandomFill.Distribution distribution, float a, float b) {
        long bits = bits(seed, i);
        float u = (bits >>> 40) * 0x1p-24f;
        if (distribution == RandomFill.Distribution.UNIFORM) return Math.fma(u, b - a, a);
        double u1 = ((bits >>> 40) + 1) * 0x1p-24, u2 = ((bits >>> 16) & 0xFFFFFF) * 0x1p-24;
        return (float) (a + b * (Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2)));
    }

    static void fill(Tensor out, long seed, RandomFill.Distribution distribution, float a, float b) {
        Tensor flat = out.reshape(out.elementCount());
        float[] values = new float[(int) Math.min(CHUNK, flat.elementCount())];
        for (long start = 0; start < flat.elementCount(); start += CHUNK) {
            int n = (int) Math.min(CHUNK, flat.elementCount() - start);
            if (n != values.length) values = new float[n];
            for (int j = 0; j < n; j++) values[j] = value(seed, start + j, distribution, a, b);
            flat.slice(0, start, start + n).copyFrom(values);
        }
    }
}
