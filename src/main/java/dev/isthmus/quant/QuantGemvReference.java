package dev.isthmus.quant;

import dev.isthmus.tensor.Tensor;

/** CPU reference of {@link QuantGemv}: W dequantized by the format's definition, each dot product summed in double. */
final class QuantGemvReference {
    private QuantGemvReference() {}

    static void apply(Tensor out, Tensor x, QuantizedMatrix w) {
        float[] weights = w.dequantize(), xs = x.toFloatArray();
        int m = (int) x.dim(0), n = (int) w.rows(), k = (int) w.cols();
        float[] result = new float[m * n];
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int i = 0; i < k; i++) sum += (double) xs[r * k + i] * weights[j * k + i];
                result[r * n + j] = (float) sum;
            }
        out.copyFrom(result);
    }
}
