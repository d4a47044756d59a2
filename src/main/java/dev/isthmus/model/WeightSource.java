package dev.isthmus.model;

import dev.isthmus.io.HfCheckpoint;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.SplittableRandom;

/** Where a model's weights come from: a checkpoint, or random values for benchmarks and the demo. */
interface WeightSource {
    boolean contains(String name);

    /** A new host tensor (the caller closes it) holding {@code name}, which must have {@code shape}, converted to {@code dtype}. */
    Tensor tensor(String name, DType dtype, long... shape);

    static WeightSource of(HfCheckpoint checkpoint) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return checkpoint.contains(name);
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                Tensor mapped = checkpoint.tensor(name, shape);
                if (!mapped.dtype().isFloatingPoint())
                    throw new IllegalArgumentException("tensor " + name + " has dtype " + mapped.dtype().label() + "; expected a float");
                return mapped.to(dtype);
            }
        };
    }

    /**
     * Random weights that keep activations of order one: matrices uniform with variance 1 / columns,
     * norm weights 1, and Mamba's parameters as Mamba initialises them (A_log = log n, D = 1, a
     * time-step bias giving dt near 0.05). Each tensor's values depend only on the seed and its name.
     */
    static WeightSource random(long seed) {
        return new WeightSource() {
            @Override
            public boolean contains(String name) {
                return true;
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                Tensor t = Tensor.allocateHost(dtype, shape);
                float[] values = new float[Math.toIntExact(t.elementCount())];
                SplittableRandom random = new SplittableRandom(seed ^ name.hashCode() * 0x9E3779B97F4A7C15L);
                long cols = shape[shape.length - 1];
                if (name.endsWith("A_log")) {
                    for (int i = 0; i < values.length; i++) values[i] = (float) Math.log(i % cols + 1);
                } else if (name.endsWith(".D") || name.contains("norm")) {
                    java.util.Arrays.fill(values, 1f);
                } else if (name.endsWith("dt_proj.bias")) {
                    java.util.Arrays.fill(values, (float) Math.log(Math.expm1(0.05)));
                } else {
                    double half = Math.sqrt(3.0 / (name.contains("embed") ? 1 : cols));
                    for (int i = 0; i < values.length; i++) values[i] = (float) random.nextDouble(-half, half);
                }
                t.copyFrom(values);
                return t;
            }
        };
    }
}
