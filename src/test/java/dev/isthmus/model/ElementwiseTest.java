package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.Expect;
import org.junit.jupiter.api.Test;

/** The CPU references of the element-wise model steps on hand-computed values, and their argument checks. */
class ElementwiseTest {
    final Backend cpu = Backend.cpu();

    @Test
    void embeddingCopiesTheRowsOfTheIds() {
        try (Tensor table = Tensor.fromFloats(DType.F32, new float[] {0, 1, 10, 11, 20, 21}, 3, 2);
             Tensor ids = Tensor.fromLongs(DType.I32, new long[] {2, 0, 2}, 3);
             Tensor out = Tensor.allocateHost(DType.F32, 3, 2)) {
            Elementwise.embedding(cpu, out, table, ids);
            assertArrayEquals(new float[] {20, 21, 0, 1, 20, 21}, out.toFloatArray());
        }
    }

    @Test
    void argmaxTakesTheLowestOfTiedMaximaAndIgnoresNaN() {
        float nan = Float.NaN, inf = Float.POSITIVE_INFINITY;
        float[] rows = {
            1, 5, 2, 5,                 // a tie: the lower column
            nan, -3, -1, -2,            // NaN in column 0 is ignored, not sticky
            nan, nan, nan, nan,         // only NaN: 0
            -inf, -inf, -inf, -inf,     // only -inf: the first
            0, nan, inf, inf,           // +inf, twice
        };
        try (Tensor logits = Tensor.fromFloats(DType.F32, rows, 5, 4); Tensor out = Tensor.allocateHost(DType.I32, 5)) {
            Elementwise.argmax(cpu, out, logits);
            assertArrayEquals(new long[] {1, 2, 0, 0, 2}, out.toLongArray());
            try (Tensor half = Tensor.allocateHost(DType.F16, 5, 4); Tensor wrong = Tensor.allocateHost(DType.I32, 4)) {
                Expect.illegalArgument("logits must be f32", () -> Elementwise.argmax(cpu, out, half));
                Expect.illegalArgument("out", () -> Elementwise.argmax(cpu, wrong, logits));
                Expect.illegalArgument("out must be i32", () -> Elementwise.argmax(cpu, logits, logits));
            }
        }
    }

    @Test
    void addBiasAddsTheBiasToEveryRow() {
        try (Tensor x = Tensor.fromFloats(DType.BF16, new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
             Tensor bias = Tensor.fromFloats(DType.BF16, new float[] {0.5f, -1, 2}, 3)) {
            Elementwise.addBias(cpu, x, x, bias);
            assertArrayEquals(new float[] {1.5f, 1, 5, 4.5f, 4, 8}, x.toFloatArray());
        }
    }

    @Test
    void siluMulIsTheSwiGluProduct() {
        float[] g = {-2f, 0f, 0.5f, 3f};
        float[] u = {1.5f, 7f, -2f, 0.25f};
        try (Tensor gate = Tensor.fromFloats(DType.F32, g, 4); Tensor up = Tensor.fromFloats(DType.F32, u, 4);
             Tensor out = Tensor.allocateHost(DType.F32, 4)) {
            Elementwise.siluMul(cpu, out, gate, up);
            float[] actual = out.toFloatArray();
            for (int i = 0; i < 4; i++) assertEquals(g[i] / (1 + Math.exp(-g[i])) * u[i], actual[i], 1e-6);
        }
    }

    @Test
    void badArgumentsAreNamed() {
        try (Tensor table = Tensor.allocateHost(DType.F32, 4, 2); Tensor ids = Tensor.fromLongs(DType.I32, new long[] {1, 4}, 2);
             Tensor longIds = Tensor.fromLongs(DType.I64, new long[] {1, 2}, 2); Tensor out = Tensor.allocateHost(DType.F32, 2, 2);
             Tensor half = Tensor.allocateHost(DType.F16, 2, 2); Tensor bias = Tensor.allocateHost(DType.F32, 3)) {
            Expect.illegalArgument("ids[1]", () -> Elementwise.embedding(cpu, out, table, ids));
            Expect.illegalArgument("ids", () -> Elementwise.embedding(cpu, out, table, longIds));
            Expect.illegalArgument("out", () -> Elementwise.embedding(cpu, half, table, longIds.to(DType.I32)));
            Expect.illegalArgument("bias", () -> Elementwise.addBias(cpu, out, out, bias));
            Expect.illegalArgument("up", () -> Elementwise.siluMul(cpu, out, out, half));
            Expect.illegalArgument("backend", () -> Elementwise.siluMul(null, out, out, out));
        }
    }
}
