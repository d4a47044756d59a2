package dev.isthmus.norm;

import dev.isthmus.tensor.FloatFormats;
import dev.isthmus.tensor.Tensor;

/**
 * The CPU reference of {@link RmsNorm}, written from the formula in double precision. Arguments
 * are checked by RmsNorm before this runs.
 */
final class RmsNormReference {
    private RmsNormReference() {}

    static void apply(Tensor out, Tensor residualOut, Tensor x, Tensor residual, Tensor weight, float eps) {
        int cols = Math.toIntExact(x.dim(-1));
        float[] h = x.toFloatArray();
        if (residual != null) {
            float[] r = residual.toFloatArray();
            // The sum is stored in the tensors' dtype, and the norm is taken of what was stored.
            for (int i = 0; i < h.length; i++) h[i] = FloatFormats.roundTo(x.dtype(), h[i] + r[i]);
            residualOut.copyFrom(h);
        }
        float[] w = weight.toFloatArray();
        float[] y = new float[h.length];
        for (int row = 0; row < h.length / cols; row++) {
            int start = row * cols;
            double sumSquares = 0;
            for (int j = 0; j < cols; j++) sumSquares += (double) h[start + j] * h[start + j];
            double invRms = 1.0 / Math.sqrt(sumSquares / cols + eps);
            for (int j = 0; j < cols; j++) y[start + j] = (float) (h[start + j] * invRms * w[j]);
        }
        out.copyFrom(y);
    }
}
