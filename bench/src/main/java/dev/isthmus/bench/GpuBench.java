package dev.isthmus.bench;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaMemcpyKind;

/**
 * The GPU kernel benchmarks: each kernel at its benchmark shapes, timed with CUDA events per
 * launch (median of many), the L2 cache flushed before each launch so every run reads from
 * memory, on random data. Writes OUTDIR/raw.csv (kernel,shape,dtype,time_us,bytes,flops: the
 * bytes and FLOPs the work must move and do) and OUTDIR/shapes.csv, the list the peer scripts
 * time the same work at. bench/report.py joins them with the peers and the ceilings.
 */
public final class GpuBench {
    private static final int WARMUP = 10, RUNS = 100;

    record Row(String kernel, String shape, DType dtype, double micros, double bytes, double flops) {}

    public static void main(String[] args) throws IOException {
        if (args.length != 1) throw new IllegalArgumentException("usage: GpuBench OUTDIR");
        Path outDir = Files.createDirectories(Path.of(args[0]));
        List<Row> rows = new ArrayList<>();
        try (CudaBackend gpu = Backend.cuda(0);
             Tensor flush = gpu.allocate(DType.I8, 2 * Math.max(gpu.properties().l2CacheSize(), 1 << 20))) {
            System.out.println("device: " + gpu.describe());
            Runnable flushL2 = () -> gpu.poison(flush);
            rows.add(deviceCopy(gpu));
            Random random = new Random(7);
            for (DType dtype : new DType[] {DType.BF16, DType.F32})
                for (long[] shape : new long[][] {{1, 4096}, {64, 4096}, {4096, 4096}, {16384, 8192}})
                    for (boolean residual : new boolean[] {false, true})
                        rows.add(rmsnorm(gpu, random, dtype, shape[0], shape[1], residual, flushL2));
            rows.addAll(ScanBench.run(gpu, random, flushL2, rows.get(0)));
            rows.addAll(AttentionBench.run(gpu, flushL2));
            rows.addAll(MoeBench.run(gpu, random, flushL2));
            rows.addAll(ModelBench.run(gpu));
        }
        try (PrintWriter raw = new PrintWriter(Files.newBufferedWriter(outDir.resolve("raw.csv")));
             PrintWriter shapes = new PrintWriter(Files.newBufferedWriter(outDir.resolve("shapes.csv")))) {
            raw.println("kernel,shape,dtype,time_us,bytes,flops");
            shapes.println("kernel,shape,dtype");
            for (Row r : rows) {
                raw.println(String.format(Locale.ROOT, "%s,%s,%s,%.3f,%.0f,%.0f", r.kernel, r.shape, r.dtype.label(), r.micros, r.bytes, r.flops));
                if (!r.kernel.equals("device-copy")) shapes.println(r.kernel + "," + r.shape + "," + r.dtype.label());
            }
        }
        System.out.println("wrote " + outDir.resolve("raw.csv") + " and " + outDir.resolve("shapes.csv"));
    }

    /** The copy ceiling as our own stack sees it: cudaMemcpyAsync device to device, 1 GiB. */
    private static Row deviceCopy(CudaBackend gpu) {
        long bytes = 1L << 30;
        try (Tensor src = gpu.allocate(DType.I8, bytes); Tensor dst = gpu.allocate(DType.I8, bytes)) {
            gpu.poison(src);
            Timing.Stats t = Timing.measure(gpu, 3, 20, () -> Cuda.check(JCuda.cudaMemcpyAsync(JCudaInterop.pointer(dst),
                    JCudaInterop.pointer(src), bytes, cudaMemcpyKind.cudaMemcpyDeviceToDevice, gpu.stream().jcuda()), "cudaMemcpyAsync"));
            print("device-copy 1GiB", t, 2.0 * bytes);
            return new Row("device-copy", "1GiB", DType.I8, t.medianMicros(), 2.0 * bytes, 0);
        }
    }

    private static Row rmsnorm(CudaBackend gpu, Random random, DType dtype, long rows, long cols, boolean residual, Runnable flushL2) {
        String kernel = residual ? "rmsnorm+residual" : "rmsnorm";
        try (Tensor hx = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor hw = RandomTensors.normal(random, dtype, 1f, cols);
             Tensor x = gpu.copyOf(hx); Tensor r = gpu.copyOf(hx); Tensor w = gpu.copyOf(hw);
             Tensor out = gpu.allocate(dtype, rows, cols)) {
            Runnable op = residual ? () -> RmsNorm.applyWithResidual(gpu, out, r, x, r, w, 1e-6f)
                                   : () -> RmsNorm.apply(gpu, out, x, w, 1e-6f);
            Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2, op);
            // Each element: x read, out written; with the residual also residual read and written back.
            double bytes = (double) rows * cols * dtype.byteSize() * (residual ? 4 : 2) + cols * dtype.byteSize();
            String shape = rows + "x" + cols;
            print(kernel + " " + shape + " " + dtype.label(), t, bytes);
            return new Row(kernel, shape, dtype, t.medianMicros(), bytes, 0);
        }
    }

    private static void print(String what, Timing.Stats t, double bytes) {
        System.out.printf(Locale.ROOT, "%-34s %s  %.1f GB/s%n", what, t, bytes / t.medianMicros() / 1e3);
    }
}
