package dev.isthmus.blas;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The CPU reference GEMM against hand-computed products and algebraic identities, and its checks. */
class GemmTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void multipliesASmallPairByHand() {
        // [1 2 3; 4 5 6] * [7 8; 9 10; 11 12] = [58 64; 139 154]
        try (Tensor a = Tensor.fromFloats(DType.F32, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
             Tensor b = Tensor.fromFloats(DType.F32, new float[] {7, 8, 9, 10, 11, 12}, 3, 2);
             Tensor c = Tensor.fromFloats(DType.F32, new float[] {1, 1, 1, 1}, 2, 2)) {
            Gemm.gemm(CPU, c, a, false, b, false, 2f, 0.5f); // 2 * AB + 0.5 * ones
            assertArrayEquals(new float[] {116.5f, 128.5f, 278.5f, 308.5f}, c.toFloatArray());
        }
    }

    @Test
    void transposedOperandsGiveTheSameProduct() {
        Random random = new Random(5);
        int m = 13, n = 9, k = 21;
        try (Tensor a = RandomTensors.normal(random, DType.F32, 1f, m, k);
             Tensor b = RandomTensors.normal(random, DType.F32, 1f, k, n);
             Tensor at = transpose(a); Tensor bt = transpose(b);
             Tensor c1 = Tensor.allocateHost(DType.F32, m, n);
             Tensor c2 = Tensor.allocateHost(DType.F32, m, n);
             Tensor c3 = Tensor.allocateHost(DType.F32, m, n);
             Tensor c4 = Tensor.allocateHost(DType.F32, m, n)) {
            Gemm.matmul(CPU, c1, a, b, 1f, 0f);
            Gemm.gemm(CPU, c2, at, true, b, false, 1f, 0f);
            Gemm.gemm(CPU, c3, a, false, bt, true, 1f, 0f);
            Gemm.gemm(CPU, c4, at, true, bt, true, 1f, 0f);
            assertArrayEquals(c1.toFloatArray(), c2.toFloatArray());
            assertArrayEquals(c1.toFloatArray(), c3.toFloatArray());
            assertArrayEquals(c1.toFloatArray(), c4.toFloatArray());
        }
    }

    @Test
    void identityLeavesAMatrixAndBetaZeroIgnoresNaN() {
        Random random = new Random(6);
        int n = 17;
        float[] eye = new float[n * n];
        for (int i = 0; i < n; i++) eye[i * n + i] = 1;
        try (Tensor a = RandomTensors.normal(random, DType.BF16, 1f, 5, n);
             Tensor identity = Tensor.fromFloats(DType.BF16, eye, n, n);
             Tensor c = Tensor.allocateHost(DType.BF16, 5, n)) {
            Backend.cpu().poison(c);
            Gemm.matmul(CPU, c, a, identity, 1f, 0f);
            assertArrayEquals(a.toFloatArray(), c.toFloatArray());
        }
    }

    @Test
    void lowPrecisionInputsAccumulateLikeFp32() {
        // bf16 inputs, f32 output: the only error left is the inputs' own rounding, which the
        // f32 reference on the same (already rounded) values shares.
        Random random = new Random(7);
        try (Tensor a = RandomTensors.normal(random, DType.BF16, 1f, 31, 130);
             Tensor b = RandomTensors.normal(random, DType.BF16, 1f, 130, 19);
             Tensor a32 = a.to(DType.F32); Tensor b32 = b.to(DType.F32);
             Tensor c = Tensor.allocateHost(DType.F32, 31, 19);
             Tensor c32 = Tensor.allocateHost(DType.F32, 31, 19)) {
            Gemm.matmul(CPU, c, a, b, 1f, 0f);
            Gemm.matmul(CPU, c32, a32, b32, 1f, 0f);
            Compare.Result r = Compare.check("bf16 in, f32 out", c, c32, 1e-6);
            assertTrue(r.withinBound(), r.toString());
        }
    }

    @Test
    void rejectsBadArguments() {
        try (Tensor a = Tensor.allocateHost(DType.F32, 4, 3);
             Tensor b = Tensor.allocateHost(DType.F32, 3, 5);
             Tensor c = Tensor.allocateHost(DType.F32, 4, 5);
             Tensor wrongB = Tensor.allocateHost(DType.F32, 4, 5);
             Tensor wrongC = Tensor.allocateHost(DType.F32, 5, 4);
             Tensor bf16B = Tensor.allocateHost(DType.BF16, 3, 5);
             Tensor bf16A = Tensor.allocateHost(DType.BF16, 4, 3);
             Tensor f16C = Tensor.allocateHost(DType.F16, 4, 5);
             Tensor ints = Tensor.allocateHost(DType.I32, 4, 3);
             Tensor rank3 = Tensor.allocateHost(DType.F32, 1, 4, 3)) {
            illegalArgument("inner", () -> Gemm.matmul(CPU, c, a, wrongB, 1f, 0f));
            illegalArgument("c", () -> Gemm.matmul(CPU, wrongC, a, b, 1f, 0f));
            illegalArgument("b", () -> Gemm.matmul(CPU, c, a, bf16B, 1f, 0f));
            illegalArgument("c", () -> Gemm.matmul(CPU, f16C, bf16A, bf16B, 1f, 0f));
            illegalArgument("a", () -> Gemm.matmul(CPU, c, ints, b, 1f, 0f));
            illegalArgument("a", () -> Gemm.matmul(CPU, c, rank3, b, 1f, 0f));
            illegalArgument("alpha", () -> Gemm.matmul(CPU, c, a, b, Float.POSITIVE_INFINITY, 0f));
            illegalArgument("beta", () -> Gemm.matmul(CPU, c, a, b, 1f, Float.NaN));
            illegalArgument("backend", () -> Gemm.matmul(null, c, a, b, 1f, 0f));
        }
    }

    static Tensor transpose(Tensor t) {
        int rows = (int) t.dim(0), cols = (int) t.dim(1);
        float[] v = t.toFloatArray(), out = new float[v.length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
        return Tensor.fromFloats(t.dtype(), out, cols, rows);
    }

}
