package dev.isthmus.bench;

import dev.isthmus.backend.Timing;
import dev.isthmus.ssd.Ssd;
import dev.isthmus.ssd.SsdWeights;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The Mamba-2 SSD kernels at mamba2-2.7b's shape (80 heads of 64, N = 128, one group), 30 runs
 * each: the chunked scan over batch 8 x 4096 tokens (prefill, as the block calls it: dt bias,
 * softplus, D skip, final states) and one decode step of the batch.
 *
 * <p>Bytes: x read and y written, dt, B and C read once, the final states written (fp32), the
 * per-head parameters. FLOPs: the chunked algorithm as the kernel runs it with chunks of Q = 64,
 * per (token, head): 2 Q N for C B^T, 2 Q P for the within-chunk product, 2 P N each for the
 * state's contribution to y and the chunk state (C B^T is per head here, not shared by the
 * heads of a group). The decode step: the state read and written (fp32), 4 P N FLOPs a head.
 */
final class SsdBench {
    private SsdBench() {}

    private static final int WARMUP = 5, RUNS = 30, CHUNK = 64;

    static void run(Bench b) {
        // batch, length, heads, head_dim, groups, nstate
        long[] s = b.tiny ? new long[] {1, 64, 2, 16, 1, 16} : new long[] {8, 4096, 80, 64, 1, 128};
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) scan(b, dtype, s[0], s[1], s[2], s[3], s[4], s[5]);
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) step(b, dtype, s[0], s[2], s[3], s[4], s[5]);
    }

    private static void scan(Bench b, DType dtype, long batch, long length, long heads, long headDim, long groups, long nstate) {
        try (Tensor x = b.normal(dtype, 1f, batch, length, heads, headDim);
             Tensor dt = b.normal(dtype, 1f, batch, length, heads);
             Tensor bm = b.normal(dtype, 1f, batch, length, groups, nstate);
             Tensor cm = b.normal(dtype, 1f, batch, length, groups, nstate);
             Params p = Params.of(b, heads);
             Tensor y = b.gpu.allocate(dtype, batch, length, heads, headDim);
             Tensor last = b.gpu.allocate(DType.F32, batch, heads, headDim, nstate)) {
            Runnable op = () -> Ssd.scan(b.gpu, y, last, x, dt, bm, cm, p.weights, null);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            double tokens = (double) batch * length, e = dtype.byteSize();
            double bytes = tokens * heads * (2.0 * headDim + 1) * e + 2.0 * tokens * groups * nstate * e
                    + 4.0 * batch * heads * headDim * nstate + 4.0 * 3 * heads;
            double flops = tokens * heads * (2.0 * CHUNK * (nstate + headDim) + 4.0 * headDim * nstate);
            String shape = "B" + batch + "xL" + length + "xH" + heads + "xP" + headDim + "xN" + nstate + "xG" + groups;
            GpuBench.print("ssd-scan " + shape + " " + dtype.label(), t, bytes);
            b.record("ssd-scan", shape, dtype, t, bytes, flops, batch * length, op);
        }
    }

    private static void step(Bench b, DType dtype, long batch, long heads, long headDim, long groups, long nstate) {
        try (Tensor x = b.normal(dtype, 1f, batch, heads, headDim);
             Tensor dt = b.normal(dtype, 1f, batch, heads);
             Tensor bm = b.normal(dtype, 1f, batch, groups, nstate);
             Tensor cm = b.normal(dtype, 1f, batch, groups, nstate);
             Params p = Params.of(b, heads);
             Tensor state = b.normal(DType.F32, 1f, batch, heads, headDim, nstate);
             Tensor y = b.gpu.allocate(dtype, batch, heads, headDim)) {
            Runnable op = () -> Ssd.step(b.gpu, y, state, null, x, dt, bm, cm, p.weights);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            double e = dtype.byteSize();
            double bytes = 2.0 * 4 * batch * heads * headDim * nstate + batch * heads * (2.0 * headDim + 1) * e
                    + 2.0 * batch * groups * nstate * e + 4.0 * 3 * heads;
            double flops = 4.0 * batch * heads * headDim * nstate;
            String shape = "B" + batch + "xH" + heads + "xP" + headDim + "xN" + nstate + "xG" + groups;
            GpuBench.print("ssd-state-update " + shape + " " + dtype.label(), t, bytes);
            b.record("ssd-state-update", shape, dtype, t, bytes, flops, batch, op);
        }
    }

    /** A = -exp(A_log) in Mamba-2's range, D, dt bias; softplus on, no time-step limit. */
    private record Params(SsdWeights weights) implements AutoCloseable {
        static Params of(Bench b, long heads) {
            return new Params(new SsdWeights(b.uniform(DType.F32, -16f, -1f, heads), b.normal(DType.F32, 1f, heads),
                    b.uniform(DType.F32, -6f, -2f, heads), true));
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {weights.a(), weights.d(), weights.dtBias()}) t.close();
        }
    }
}
