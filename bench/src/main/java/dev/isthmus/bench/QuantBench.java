package dev.isthmus.bench;

import dev.isthmus.backend.Timing;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.quant.QuantGemv;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.SplittableRandom;

/**
 * The quantized decode GEMV (x W^T with W in Q8_0, Q4_0 or Q4_K) at a 4096 x 4096 projection and a
 * 14336 x 4096 FFN matrix, 1, 8 and 16 rows of bf16 activations: 100 runs each. Bytes: the
 * quantized weight as the format counts it (what a decode step must stream), x read and out written.
 */
final class QuantBench {
    private QuantBench() {}

    private static final int WARMUP = 10, RUNS = 100;

    static void run(Bench b) {
        long[][] shapes = b.tiny ? new long[][] {{33, 256}} : new long[][] {{4096, 4096}, {14336, 4096}};
        for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K})
            for (long[] shape : shapes) {
                float[] values = new float[Math.toIntExact(shape[0] * shape[1])];
                SplittableRandom random = new SplittableRandom(7);
                for (int i = 0; i < values.length; i++) values[i] = (float) (random.nextDouble() * 2 - 1) * 0.02f;
                try (QuantizedMatrix w = QuantizedMatrix.quantize(b.gpu, type, values, shape[0], shape[1])) {
                    for (int rows : b.tiny ? new int[] {1, 3} : new int[] {1, 8, 16}) gemv(b, w, rows);
                }
            }
    }

    private static void gemv(Bench b, QuantizedMatrix w, int rows) {
        DType dtype = DType.BF16;
        try (Tensor x = b.normal(dtype, 1f, rows, w.cols()); Tensor out = b.gpu.allocate(dtype, rows, w.rows())) {
            Runnable op = () -> QuantGemv.apply(b.gpu, out, x, w);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 3 : RUNS, op);
            double bytes = w.type().bytes(w.rows() * w.cols()) + (double) rows * (w.cols() + w.rows()) * dtype.byteSize();
            double flops = 2.0 * rows * w.rows() * w.cols();
            String kernel = "quant-gemv-" + w.type().name().toLowerCase(java.util.Locale.ROOT);
            String shape = "m" + rows + "-" + w.rows() + "x" + w.cols();
            GpuBench.print(kernel + " " + shape + " " + dtype.label(), t, bytes);
            b.record(kernel, shape, dtype, t, bytes, flops, rows, op);
        }
    }
}
