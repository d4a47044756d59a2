package dev.isthmus.tensor;

import java.util.random.RandomGenerator;

/** Host tensors of random values, for tests, demos and benchmarks (never time on zeros). */
public final class RandomTensors {
    private RandomTensors() {}

    /** Standard normal values times {@code scale}, rounded to {@code dtype}. */
    public static Tensor normal(RandomGenerator random, DType dtype, float scale, long... shape) {
        Tensor t = Tensor.allocateHost(dtype, shape);
        float[] v = new float[Math.toIntExact(t.elementCount())];
        for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian() * scale;
        t.copyFrom(v);
        return t;
    }

    /** Uniform values in [low, high), rounded to {@code dtype}. */
    public static Tensor uniform(RandomGenerator random, DType dtype, float low, float high, long... shape) {
        Tensor t = Tensor.allocateHost(dtype, shape);
        float[] v = new float[Math.toIntExact(t.elementCount())];
        for (int i = 0; i < v.length; i++) v[i] = low + random.nextFloat() * (high - low);
        t.copyFrom(v);
        return t;
    }
}
