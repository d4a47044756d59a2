package dev.isthmus.bench;

import dev.isthmus.backend.Timing;
import dev.isthmus.blas.Gemm;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.quant.QuantGemv;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The products with quantized weights (x W^T with W in Q8_0, Q4_0 or Q4_K) at a 4096 x 4096
 * projection, a 14336 x 4096 FFN matrix and a 32000 x 4096 vocabulary projection, bf16
 * activations: 1, 8 and 16 rows (decode: the tensor-core GEMV) and 4096 (a prompt: the wide
 * tile), 100 runs each; beside
 * them the same products with W dense in bf16 through the project's own GEMM (gemm-own-bf16 rows),
 * the ceiling the quantized tiles are held to. Both with the split-K workspace a model's session
 * passes. Bytes: the weight as its format counts it (what a step must stream), x read and out
 * written.
 */
final class QuantBench {
    private QuantBench() {}

    private static final int WARMUP = 10, RUNS = 100;
    private static final DType DTYPE = DType.BF16;

    static void run(Bench b) {
        long[][] shapes = b.tiny ? new long[][] {{33, 256}} : new long[][] {{4096, 4096}, {14336, 4096}, {32000, 4096}};
        int[] rowCounts = b.tiny ? new int[] {1, 3, 130} : new int[] {1, 8, 16, 4096};
        try (GemmWorkspace ws = GemmWorkspace.allocate(b.gpu)) {
            for (long[] shape : shapes) run(b, shape, rowCounts, ws);
        }
    }

    private static void run(Bench b, long[] shape, int[] rowCounts, GemmWorkspace ws) {
        float[] values = new float[Math.toIntExact(shape[0] * shape[1])];
        SplittableRandom random = new SplittableRandom(7);
        for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextDouble() * 2 - 1) * 0.02f;
        for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K})
            try (QuantizedMatrix w = QuantizedMatrix.quantize(b.gpu, type, values, shape[0], shape[1])) {
                for (int rows : rowCounts) quantized(b, w, rows, ws);
            }
        try (Tensor host = Tensor.fromFloats(DType.F32, values, shape[0], shape[1]); Tensor h16 = host.to(DTYPE);
             Tensor w = b.gpu.copyOf(h16)) {
            for (int rows : rowCounts) dense(b, w, rows, ws);
        }
    }

    private static void quantized(Bench b, QuantizedMatrix w, int rows, GemmWorkspace ws) {
        try (Tensor x = b.normal(DTYPE, 1f, rows, w.cols()); Tensor out = b.gpu.allocate(DTYPE, rows, w.rows())) {
            Runnable op = () -> QuantGemv.apply(b.gpu, out, x, w, ws);
            double weightBytes = w.type().bytes(w.rows() * w.cols());
            record(b, "quant-gemv-" + w.type().name().toLowerCase(java.util.Locale.ROOT), w.rows(), w.cols(), rows, weightBytes, op);
        }
    }

    private static void dense(Bench b, Tensor w, int rows, GemmWorkspace ws) {
        try (Tensor x = b.normal(DTYPE, 1f, rows, w.dim(1)); Tensor out = b.gpu.allocate(DTYPE, rows, w.dim(0))) {
            Runnable op = () -> Gemm.gemmOwnKernel(b.gpu, out, x, false, w, true, 1f, 0f, ws);
            record(b, "gemm-own-bf16", w.dim(0), w.dim(1), rows, (double) w.dim(0) * w.dim(1) * DTYPE.byteSize(), op);
        }
    }

    private static void record(Bench b, String kernel, long n, long k, int rows, double weightBytes, Runnable op) {
        Timing.Stats t = b.time(WARMUP, b.tiny ? 3 : RUNS, op);
        double bytes = weightBytes + (double) rows * (k + n) * DTYPE.byteSize();
        double flops = 2.0 * rows * n * k;
        String shape = "m" + rows + "-" + n + "x" + k;
        GpuBench.print(kernel + " " + shape + " " + DTYPE.label(), t, bytes);
        b.record(kernel, shape, DTYPE, t, bytes, flops, rows, op);
    }
}
