package dev.isthmus.blas;

import dev.isthmus.tensor.Tensor;
import java.util.stream.IntStream;

/**
 * The CPU reference GEMM: for every (i, j), sum over p of op(A)[i, p] * op(B)[p, j] in double,
 * rows spread over all cores. op(B) is first laid out as (N, K) so the inner loop walks two
 * contiguous rows.
 */
final class GemmReference {
    private GemmReference() {}

    static void gemm(Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB, float alpha, float beta,
                     int m, int n, int k) {
        float[] opA = rowsOf(a.toFloatArray(), transposeA, m, k);      // (M, K)
        float[] opBt = rowsOf(b.toFloatArray(), !transposeB, n, k);    // op(B)^T: (N, K)
        float[] out = beta == 0 ? new float[m * n] : c.toFloatArray();
        IntStream.range(0, m).parallel().forEach(i -> {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int p = 0; p < k; p++) sum += (double) opA[i * k + p] * opBt[j * k + p];
                double prior = beta == 0 ? 0 : (double) beta * out[i * n + j];
                out[i * n + j] = (float) (alpha * sum + prior);
            }
        });
        c.copyFrom(out);
    }

    /** The (rows, cols) row-major matrix that {@code x} is, or whose transpose it is when {@code transposed}. */
    private static float[] rowsOf(float[] x, boolean transposed, int rows, int cols) {
        if (!transposed) return x;
        float[] t = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int q = 0; q < cols; q++) t[r * cols + q] = x[q * rows + r];
        return t;
    }
}
