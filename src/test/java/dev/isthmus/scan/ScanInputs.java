package dev.isthmus.scan;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Random inputs of a selective scan in the ranges a trained Mamba layer sees (A = -exp(A_log) in
 * [-4, -0.1], dt around 0.01 to 1), on the host; {@link #copyTo} puts a copy on a backend. Options
 * that are off are null. Closing closes every tensor.
 */
record ScanInputs(Tensor u, Tensor delta, Tensor z, Tensor b, Tensor c, Tensor a, Tensor d, Tensor deltaBias,
                  boolean softplus) implements AutoCloseable {

    /** Sequence inputs: u, delta, z (B, D, L); b, c (B, G, N, L). */
    static ScanInputs sequence(Random random, DType dtype, long batch, long channels, long length, long groups, long nstate,
                               boolean withZ, boolean withD, boolean withBias, boolean softplus) {
        return make(random, dtype, new long[] {batch, channels, length}, new long[] {batch, groups, nstate, length},
                channels, nstate, withZ, withD, withBias, softplus);
    }

    /** One-token inputs: u, delta, z (B, D); b, c (B, G, N). */
    static ScanInputs token(Random random, DType dtype, long batch, long channels, long groups, long nstate,
                            boolean withZ, boolean withD, boolean withBias, boolean softplus) {
        return make(random, dtype, new long[] {batch, channels}, new long[] {batch, groups, nstate},
                channels, nstate, withZ, withD, withBias, softplus);
    }

    private static ScanInputs make(Random random, DType dtype, long[] seqShape, long[] bcShape, long channels, long nstate,
                                   boolean withZ, boolean withD, boolean withBias, boolean softplus) {
        // Without the softplus, delta is dt itself and must be positive.
        Tensor delta = softplus ? RandomTensors.normal(random, dtype, 1f, seqShape) : RandomTensors.uniform(random, dtype, 0.01f, 1f, seqShape);
        return new ScanInputs(RandomTensors.normal(random, dtype, 1f, seqShape), delta,
                withZ ? RandomTensors.normal(random, dtype, 1f, seqShape) : null,
                RandomTensors.normal(random, dtype, 1f, bcShape), RandomTensors.normal(random, dtype, 1f, bcShape),
                RandomTensors.uniform(random, DType.F32, -4f, -0.1f, channels, nstate),
                withD ? RandomTensors.normal(random, DType.F32, 1f, channels) : null,
                withBias ? deltaBias(random, channels, softplus) : null, softplus);
    }

    // A negative bias is only meaningful before the softplus; added to dt itself it must keep dt
    // positive, or exp(dt A) > 1 grows the state until y overflows (to inf in f16 within a step).
    private static Tensor deltaBias(Random random, long channels, boolean softplus) {
        return softplus ? RandomTensors.uniform(random, DType.F32, -3f, 0f, channels)
                        : RandomTensors.uniform(random, DType.F32, 0f, 0.5f, channels);
    }

    ScanWeights weights() {
        return new ScanWeights(a, d, deltaBias, softplus);
    }

    DType dtype() {
        return u.dtype();
    }

    /** The same inputs on {@code backend} (new tensors; close them). */
    ScanInputs copyTo(Backend backend) {
        return new ScanInputs(copy(backend, u), copy(backend, delta), copy(backend, z), copy(backend, b), copy(backend, c),
                copy(backend, a), copy(backend, d), copy(backend, deltaBias), softplus);
    }

    private static Tensor copy(Backend backend, Tensor t) {
        return t == null ? null : backend.copyOf(t);
    }

    @Override
    public void close() {
        List<Tensor> all = new ArrayList<>(List.of(u, delta, b, c, a));
        for (Tensor t : new Tensor[] {z, d, deltaBias}) if (t != null) all.add(t);
        all.forEach(Tensor::close);
    }
}
