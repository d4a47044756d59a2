package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaDeviceAttr;

/**
 * The Mamba kernels at their benchmark shapes: the selective scan (B=8, D=2048, L=4096, N=16, as a
 * Mamba block calls it: z gate, D skip, delta bias, softplus), one decode step (B=64, D=4096,
 * N=16) and the causal conv1d in front of the scan. Besides the rows, it prints the two floors of
 * the scan: the bytes over the measured copy bandwidth, and the B*D*L*N exponentials over the
 * special-function units (16 ex2 per SM per clock on sm_80..sm_90), and which one binds.
 */
final class ScanBench {
    private ScanBench() {}

    private static final int WARMUP = 5, RUNS = 30;
    private static final int EXP_PER_SM_PER_CLOCK = 16;

    static List<GpuBench.Row> run(CudaBackend gpu, Random random, Runnable flushL2, GpuBench.Row copy) {
        double copyBytesPerUs = copy.bytes() / copy.micros();
        List<GpuBench.Row> rows = new ArrayList<>();
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) rows.add(scan(gpu, random, dtype, 8, 2048, 4096, 16, flushL2, copyBytesPerUs));
        for (DType dtype : new DType[] {DType.BF16, DType.F32}) rows.add(step(gpu, random, dtype, 64, 4096, 16, flushL2, copyBytesPerUs));
        rows.add(conv(gpu, random, DType.BF16, 8, 2048, 4096, 4, flushL2, copyBytesPerUs));
        return rows;
    }

    private static GpuBench.Row scan(CudaBackend gpu, Random random, DType dtype, long batch, long channels, long length, long nstate,
                                     Runnable flushL2, double copyBytesPerUs) {
        long[] seq = {batch, channels, length};
        try (Inputs in = Inputs.of(gpu, random, dtype, seq, new long[] {batch, 1, nstate, length}, channels, nstate);
             Tensor y = gpu.allocate(dtype, seq);
             Tensor last = gpu.allocate(DType.F32, batch, channels, nstate)) {
            Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2,
                    () -> SelectiveScan.scan(gpu, y, last, in.u, in.delta, in.z, in.b, in.c, in.weights, null));
            // u, delta, z read and y written once; B and C read once; the final state written;
            // A, D and the bias read once.
            double bytes = 4.0 * batch * channels * length * dtype.byteSize() + 2.0 * batch * nstate * length * dtype.byteSize()
                    + 4.0 * batch * channels * nstate + 4.0 * channels * (nstate + 2);
            double exps = (double) batch * channels * length * nstate;
            String shape = "B" + batch + "xD" + channels + "xL" + length + "xN" + nstate;
            printFloors("selective-scan " + shape + " " + dtype.label(), t, bytes, copyBytesPerUs, exps, expPerUs(gpu));
            return new GpuBench.Row("selective-scan", shape, dtype, t.medianMicros(), bytes, 0);
        }
    }

    private static GpuBench.Row step(CudaBackend gpu, Random random, DType dtype, long batch, long channels, long nstate,
                                     Runnable flushL2, double copyBytesPerUs) {
        long[] tok = {batch, channels};
        try (Inputs in = Inputs.of(gpu, random, dtype, tok, new long[] {batch, 1, nstate}, channels, nstate);
             Tensor state = device(gpu, RandomTensors.normal(random, DType.F32, 1f, batch, channels, nstate));
             Tensor y = gpu.allocate(dtype, tok)) {
            Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2,
                    () -> SelectiveScan.step(gpu, y, state, null, in.u, in.delta, in.z, in.b, in.c, in.weights));
            // The state read and written back (fp32), u, delta, z read and y written, B, C, and A, D, bias.
            double bytes = 2.0 * 4 * batch * channels * nstate + 4.0 * batch * channels * dtype.byteSize()
                    + 2.0 * batch * nstate * dtype.byteSize() + 4.0 * channels * (nstate + 2);
            String shape = "B" + batch + "xD" + channels + "xN" + nstate;
            printFloors("selective-state-update " + shape + " " + dtype.label(), t, bytes, copyBytesPerUs,
                    (double) batch * channels * nstate, expPerUs(gpu));
            return new GpuBench.Row("selective-state-update", shape, dtype, t.medianMicros(), bytes, 0);
        }
    }

    private static GpuBench.Row conv(CudaBackend gpu, Random random, DType dtype, long batch, long channels, long length, long width,
                                     Runnable flushL2, double copyBytesPerUs) {
        try (Tensor x = device(gpu, RandomTensors.normal(random, dtype, 1f, batch, channels, length));
             Tensor w = device(gpu, RandomTensors.normal(random, dtype, 0.5f, channels, width));
             Tensor bias = device(gpu, RandomTensors.normal(random, dtype, 1f, channels));
             Tensor out = gpu.allocate(dtype, batch, channels, length)) {
            Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2, () -> CausalConv1d.apply(gpu, out, null, x, w, bias, null, true));
            double bytes = 2.0 * batch * channels * length * dtype.byteSize() + (double) channels * (width + 1) * dtype.byteSize();
            String shape = "B" + batch + "xD" + channels + "xL" + length + "xW" + width;
            System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s (%.0f%% of copy)%n", "causal-conv1d " + shape + " " + dtype.label(), t,
                    bytes / t.medianMicros() / 1e3, 100 * bytes / copyBytesPerUs / t.medianMicros());
            return new GpuBench.Row("causal-conv1d", shape, dtype, t.medianMicros(), bytes, 0);
        }
    }

    /** Exponentials per microsecond the special-function units can deliver on this device. */
    private static double expPerUs(CudaBackend gpu) {
        int[] clockKhz = {0};
        JCuda.cudaDeviceGetAttribute(clockKhz, cudaDeviceAttr.cudaDevAttrClockRate, gpu.properties().ordinal());
        return (double) gpu.properties().multiprocessorCount() * EXP_PER_SM_PER_CLOCK * clockKhz[0] * 1e-3;
    }

    private static void printFloors(String what, Timing.Stats t, double bytes, double copyBytesPerUs, double exps, double expPerUs) {
        double byteFloor = bytes / copyBytesPerUs;
        if (expPerUs <= 0) { // the device did not report its clock
            System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s; byte floor %.1f us (%.0f%% of it), exp floor unknown%n",
                    what, t, bytes / t.medianMicros() / 1e3, byteFloor, 100 * byteFloor / t.medianMicros());
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
        static Inputs of(CudaBackend gpu, Random random, DType dtype, long[] tokens, long[] bc, long channels, long nstate) {
            return new Inputs(device(gpu, RandomTensors.normal(random, dtype, 1f, tokens)),
                    device(gpu, RandomTensors.normal(random, dtype, 1f, tokens)),
                    device(gpu, RandomTensors.normal(random, dtype, 1f, tokens)),
                    device(gpu, RandomTensors.normal(random, dtype, 1f, bc)),
                    device(gpu, RandomTensors.normal(random, dtype, 1f, bc)),
                    new ScanWeights(device(gpu, RandomTensors.uniform(random, DType.F32, -4f, -0.1f, channels, nstate)),
                            device(gpu, RandomTensors.normal(random, DType.F32, 1f, channels)),
                            device(gpu, RandomTensors.uniform(random, DType.F32, -3f, 0f, channels)), true));
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {u, delta, z, b, c, weights.a(), weights.d(), weights.deltaBias()}) t.close();
        }
    }

    private static Tensor device(CudaBackend gpu, Tensor host) {
        try (host) {
            return gpu.copyOf(host);
        }
    }
}
