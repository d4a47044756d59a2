package dev.isthmus.bench;

import dev.isthmus.backend.Timing;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * RMSNorm at decode (1 and 64 rows) and prefill widths, with and without the fused residual add,
 * bf16 and f32: 100 runs each. Bytes: x read and out written, with the residual also the residual
 * read and written back; the weight read once.
 */
final class NormBench {
    private NormBench() {}

    private static final int WARMUP = 10, RUNS = 100;

    static void run(Bench b) {
        long[][] shapes = b.tiny ? new long[][] {{3, 100}} : new long[][] {{1, 4096}, {64, 4096}, {4096, 4096}, {16384, 8192}};
        for (DType dtype : new DType[] {DType.BF16, DType.F32})
            for (long[] shape : shapes)
                for (boolean residual : new boolean[] {false, true}) rmsnorm(b, dtype, shape[0], shape[1], residual);
    }

    private static void rmsnorm(Bench b, DType dtype, long rows, long cols, boolean residual) {
        String kernel = residual ? "rmsnorm+residual" : "rmsnorm";
        try (Tensor x = b.normal(dtype, 1f, rows, cols); Tensor r = b.normal(dtype, 1f, rows, cols); Tensor w = b.normal(dtype, 1f, cols);
             Tensor out = b.gpu.allocate(dtype, rows, cols)) {
            Runnable op = residual ? () -> RmsNorm.applyWithResidual(b.gpu, out, r, x, r, w, 1e-6f)
                                   : () -> RmsNorm.apply(b.gpu, out, x, w, 1e-6f);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 3 : RUNS, op);
            double bytes = (double) rows * cols * dtype.byteSize() * (residual ? 4 : 2) + cols * dtype.byteSize();
            String shape = rows + "x" + cols;
            GpuBench.print(kernel + " " + shape + " " + dtype.label(), t, bytes);
            b.record(kernel, shape, dtype, t, bytes, 0, rows, op);
        }
    }
}
