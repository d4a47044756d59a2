package dev.isthmus.bench;

import dev.isthmus.backend.Timing;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Locale;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaDeviceAttr;

/**
 * The Mamba kernels at their benchmark shapes, 30 runs each: the selective scan (B=8, D=2048,
 * L=4096, N=16, as a Mamba block calls it: z gate, D skip, delta bias, softplus), one decode step
 * (B=64, D=4096, N=16) and the causal conv1d in front of the scan. Besides the rows, it prints the
 * two floors of the scan: the bytes over the copy bandwidth the device-copy suite measured, and the B*D*L*N
 * exponentials over the special-function units (16 ex2 per SM per clock on sm_80..sm_90), and
 * which one binds.
 */
final class ScanBench {
    private ScanBench() {}

    private static final int WARMUP = 5, RUNS = 30;
    private static final int EXP_PER_SM_PER_CLOCK = 16;

    static void run(Bench b) {
        long[] scan = b.tiny ? new long[] {1, 8, 64, 16} : new long[] {8, 2048, 4096, 16};
        long[] step = b.tiny ? new long[] {2, 8, 16} : new long[] {64, 4096, 16};
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) scan(b, dtype, scan[0], scan[1], scan[2], scan[3]);
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) step(b, dtype, step[0], step[1], step[2]);
        conv(b, DType.BF16, scan[0], scan[1], scan[2], 4);
    }

    private static void scan(Bench b, DType dtype, long batch, long channels, long length, long nstate) {
        long[] seq = {batch, channels, length};
        try (Inputs in = Inputs.of(b, dtype, seq, new long[] {batch, 1, nstate, length}, channels, nstate);
             Tensor y = b.gpu.allocate(dtype, seq);
             Tensor last = b.gpu.allocate(DType.F32, batch, channels, nstate)) {
            Runnable op = () -> SelectiveScan.scan(b.gpu, y, last, in.u, in.delta, in.z, in.b, in.c, in.weights, null);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            // u, delta, z read and y written once; B and C read once; the final state written;
            // A, D and the bias read once.
            double bytes = 4.0 * batch * channels * length * dtype.byteSize() + 2.0 * batch * nstate * length * dtype.byteSize()
                    + 4.0 * batch * channels * nstate + 4.0 * channels * (nstate + 2);
            double exps = (double) batch * channels * length * nstate;
            String shape = "B" + batch + "xD" + channels + "xL" + length + "xN" + nstate;
            printFloors(b, "selective-scan " + shape + " " + dtype.label(), t, bytes, exps);
            b.record("selective-scan", shape, dtype, t, bytes, 0, batch * length, op);
        }
    }

    private static void step(Bench b, DType dtype, long batch, long channels, long nstate) {
        long[] tok = {batch, channels};
        try (Inputs in = Inputs.of(b, dtype, tok, new long[] {batch, 1, nstate}, channels, nstate);
             Tensor state = b.normal(DType.F32, 1f, batch, channels, nstate);
             Tensor y = b.gpu.allocate(dtype, tok)) {
            Runnable op = () -> SelectiveScan.step(b.gpu, y, state, null, in.u, in.delta, in.z, in.b, in.c, in.weights);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            // The state read and written back (fp32), u, delta, z read and y written, B, C, and A, D, bias.
            double bytes = 2.0 * 4 * batch * channels * nstate + 4.0 * batch * channels * dtype.byteSize()
                    + 2.0 * batch * nstate * dtype.byteSize() + 4.0 * channels * (nstate + 2);
            String shape = "B" + batch + "xD" + channels + "xN" + nstate;
            printFloors(b, "selective-state-update " + shape + " " + dtype.label(), t, bytes, (double) batch * channels * nstate);
            b.record("selective-state-update", shape, dtype, t, bytes, 0, batch, op);
        }
    }

    private static void conv(Bench b, DType dtype, long batch, long channels, long length, long width) {
        try (Tensor x = b.normal(dtype, 1f, batch, channels, length);
             Tensor w = b.normal(dtype, 0.5f, channels, width);
             Tensor bias = b.normal(dtype, 1f, channels);
             Tensor out = b.gpu.allocate(dtype, batch, channels, length)) {
            Runnable op = () -> CausalConv1d.apply(b.gpu, out, null, x, w, bias, null, true);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            double bytes = 2.0 * batch * channels * length * dtype.byteSize() + (double) channels * (width + 1) * dtype.byteSize();
            String shape = "B" + batch + "xD" + channels + "xL" + length + "xW" + width;
            GpuBench.print("causal-conv1d " + shape + " " + dtype.label(), t, bytes);
            b.record("causal-conv1d", shape, dtype, t, bytes, 0, batch * length, op);
        }
    }

    /** Exponentials per microsecond the special-function units can deliver on this device; 0 where the clock is unknown. */
    private static double expPerUs(Bench b) {
        if (HostEmulation.enabled()) return 0;
        int[] clockKhz = {0};
        JCuda.cudaDeviceGetAttribute(clockKhz, cudaDeviceAttr.cudaDevAttrClockRate, b.gpu.ordinal());
        return (double) b.gpu.properties().multiprocessorCount() * EXP_PER_SM_PER_CLOCK * clockKhz[0] * 1e-3;
    }

    private static void printFloors(Bench b, String what, Timing.Stats t, double bytes, double exps) {
        double byteFloor = bytes / b.copyBytesPerUs, expPerUs = expPerUs(b);
        if (expPerUs <= 0 || !Double.isFinite(byteFloor)) {
            System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s; byte floor %.1f us, exp floor unknown%n",
                    what, t, bytes / t.medianMicros() / 1e3, byteFloor);
            return;
        }
        double expFloor = exps / expPerUs;
        double floor = Math.max(byteFloor, expFloor);
        System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s; floors: bytes %.1f us, exp %.1f us -> %s binds, at %.0f%% of it%n",
                what, t, bytes / t.medianMicros() / 1e3, byteFloor, expFloor, byteFloor >= expFloor ? "bytes" : "exp",
                100 * floor / t.medianMicros());
    }

    /** Random device inputs as a Mamba layer feeds them: u, delta, z; B, C (G = 1); A, D, delta bias, softplus. */
    private record Inputs(Tensor u, Tensor delta, Tensor z, Tensor b, Tensor c, ScanWeights weights) implements AutoCloseable {
        static Inputs of(Bench bench, DType dtype, long[] tokens, long[] bc, long channels, long nstate) {
            return new Inputs(bench.normal(dtype, 1f, tokens), bench.normal(dtype, 1f, tokens), bench.normal(dtype, 1f, tokens),
                    bench.normal(dtype, 1f, bc), bench.normal(dtype, 1f, bc),
                    new ScanWeights(bench.uniform(DType.F32, -4f, -0.1f, channels, nstate), bench.normal(DType.F32, 1f, channels),
                            bench.uniform(DType.F32, -3f, 0f, channels), true));
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {u, delta, z, b, c, weights.a(), weights.d(), weights.deltaBias()}) t.close();
        }
    }
}
