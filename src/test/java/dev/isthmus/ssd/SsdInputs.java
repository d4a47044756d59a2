package dev.isthmus.ssd;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Random inputs of an SSD scan in the ranges a trained Mamba-2 layer sees (A = -exp(A_log) in
 * [-8, -0.5], dt' around 0.001 to 1), on the host; {@link #copyTo} puts a copy on a backend.
 * Options that are off are null. Closing closes every tensor.
 */
record SsdInputs(Tensor x, Tensor dt, Tensor b, Tensor c, Tensor a, Tensor d, Tensor dtBias, boolean softplus,
                 float dtMin, float dtMax) implements AutoCloseable {

    /** Sequence inputs: x (B, L, H, P), dt (B, L, H), b, c (B, L, G, N). */
    static SsdInputs sequence(Random random, DType dtype, long batch, long length, long heads, long headDim, long groups,
                              long nstate, boolean withD, boolean withBias, boolean softplus, boolean limited) {
        return make(random, dtype, new long[] {batch, length, heads, headDim}, new long[] {batch, length, heads},
                new long[] {batch, length, groups, nstate}, heads, withD, withBias, softplus, limited);
    }

    /** One-token inputs: x (B, H, P), dt (B, H), b, c (B, G, N). */
    static SsdInputs token(Random random, DType dtype, long batch, long heads, long headDim, long groups, long nstate,
                           boolean withD, boolean withBias, boolean softplus, boolean limited) {
        return make(random, dtype, new long[] {batch, heads, headDim}, new long[] {batch, heads},
                new long[] {batch, groups, nstate}, heads, withD, withBias, softplus, limited);
    }

    private static SsdInputs make(Random random, DType dtype, long[] xShape, long[] dtShape, long[] bcShape, long heads,
                                  boolean withD, boolean withBias, boolean softplus, boolean limited) {
        // Without the softplus dt is dt' itself and must be positive (a growing state overflows).
        Tensor dt = softplus ? RandomTensors.normal(random, dtype, 1f, dtShape) : RandomTensors.uniform(random, dtype, 0.001f, 0.5f, dtShape);
        Tensor bias = !withBias ? null : softplus ? RandomTensors.uniform(random, DType.F32, -4f, 0f, heads)
                                                  : RandomTensors.uniform(random, DType.F32, 0f, 0.2f, heads);
        return new SsdInputs(RandomTensors.normal(random, dtype, 1f, xShape), dt,
                RandomTensors.normal(random, dtype, 1f, bcShape), RandomTensors.normal(random, dtype, 1f, bcShape),
                RandomTensors.uniform(random, DType.F32, -8f, -0.5f, heads),
                withD ? RandomTensors.normal(random, DType.F32, 1f, heads) : null, bias, softplus,
                limited ? 0.01f : Float.NEGATIVE_INFINITY, limited ? 0.3f : Float.POSITIVE_INFINITY);
    }

    SsdWeights weights() {
        return new SsdWeights(a, d, dtBias, softplus, dtMin, dtMax);
    }

    DType dtype() {
        return x.dtype();
    }

    /** The same inputs on {@code backend} (new tensors; close them). */
    SsdInputs copyTo(Backend backend) {
        return new SsdInputs(copy(backend, x), copy(backend, dt), copy(backend, b), copy(backend, c), copy(backend, a),
                copy(backend, d), copy(backend, dtBias), softplus, dtMin, dtMax);
    }

    private static Tensor copy(Backend backend, Tensor t) {
        return t == null ? null : backend.copyOf(t);
    }

    @Override
    public void close() {
        List<Tensor> all = new ArrayList<>(List.of(x, dt, b, c, a));
        for (Tensor t : new Tensor[] {d, dtBias}) if (t != null) all.add(t);
        all.forEach(Tensor::close);
    }
}
