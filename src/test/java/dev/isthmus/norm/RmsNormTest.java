package dev.isthmus.norm;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.FloatFormats;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The CPU path of RMSNorm: the reference against the formula, and every argument check. */
class RmsNormTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void matchesTheFormulaOnAHandComputedRow() {
        // rms([3, 4]) = sqrt((9 + 16) / 2) = sqrt(12.5)
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {3, 4}, 1, 2);
             Tensor w = Tensor.fromFloats(DType.F32, new float[] {1, 2}, 2);
             Tensor out = Tensor.allocateHost(DType.F32, 1, 2)) {
            RmsNorm.apply(CPU, out, x, w, 0f);
            double rms = Math.sqrt(12.5);
            assertArrayEquals(new float[] {(float) (3 / rms), (float) (8 / rms)}, out.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void epsEntersUnderTheRoot() {
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {1, 1}, 2);
             Tensor w = Tensor.fromFloats(DType.F32, new float[] {1, 1}, 2);
             Tensor out = Tensor.allocateHost(DType.F32, 2)) {
            RmsNorm.apply(CPU, out, x, w, 3f); // 1 / sqrt(1 + 3) = 0.5
            assertArrayEquals(new float[] {0.5f, 0.5f}, out.toFloatArray(), 1e-7f);
        }
    }

    @Test
    void unitWeightGivesRowsOfUnitRmsAndIgnoresScale() {
        Random random = new Random(1);
        int rows = 5, cols = 37;
        try (Tensor x = RandomTensors.normal(random, DType.F32, 3f, rows, cols);
             Tensor scaled = Tensor.fromFloats(DType.F32, scale(x.toFloatArray(), 7.5f), rows, cols);
             Tensor w = Tensor.fromFloats(DType.F32, filled(cols, 1f), cols);
             Tensor out = Tensor.allocateHost(DType.F32, rows, cols);
             Tensor outScaled = Tensor.allocateHost(DType.F32, rows, cols)) {
            RmsNorm.apply(CPU, out, x, w, 0f);
            RmsNorm.apply(CPU, outScaled, scaled, w, 0f);
            float[] y = out.toFloatArray();
            for (int r = 0; r < rows; r++) {
                double sumSquares = 0;
                for (int c = 0; c < cols; c++) sumSquares += y[r * cols + c] * y[r * cols + c];
                assertEquals(1.0, Math.sqrt(sumSquares / cols), 1e-5, "row " + r);
            }
            assertArrayEquals(y, outScaled.toFloatArray(), 1e-5f);
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void fusedResidualEqualsTheTwoUnfusedSteps(DType dtype) {
        Random random = new Random(2);
        int rows = 3, cols = 29;
        try (Tensor x = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor r = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, dtype, 1f, cols);
             Tensor out = Tensor.allocateHost(dtype, rows, cols);
             Tensor h = Tensor.allocateHost(dtype, rows, cols);
             Tensor sum = Tensor.allocateHost(dtype, rows, cols);
             Tensor unfused = Tensor.allocateHost(dtype, rows, cols)) {
            RmsNorm.applyWithResidual(CPU, out, h, x, r, w, 1e-6f);
            float[] xs = x.toFloatArray(), rs = r.toFloatArray(), s = new float[xs.length];
            for (int i = 0; i < s.length; i++) s[i] = FloatFormats.roundTo(dtype, xs[i] + rs[i]);
            sum.copyFrom(s);
            RmsNorm.apply(CPU, unfused, sum, w, 1e-6f);
            assertArrayEquals(s, h.toFloatArray(), "residualOut is x + residual in the dtype");
            assertArrayEquals(unfused.toFloatArray(), out.toFloatArray(), "out is the norm of the stored sum");
        }
    }

    @Test
    void inPlaceUpdatesGiveTheSameResultAsSeparateBuffers() {
        Random random = new Random(3);
        int rows = 4, cols = 16;
        try (Tensor x = RandomTensors.normal(random, DType.BF16, 1f, rows, cols);
             Tensor r = RandomTensors.normal(random, DType.BF16, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, DType.BF16, 1f, cols);
             Tensor out = Tensor.allocateHost(DType.BF16, rows, cols);
             Tensor h = Tensor.allocateHost(DType.BF16, rows, cols)) {
            RmsNorm.applyWithResidual(CPU, out, h, x, r, w, 1e-6f);
            RmsNorm.applyWithResidual(CPU, x, r, x, r, w, 1e-6f); // out = x, residualOut = residual
            assertArrayEquals(out.toFloatArray(), x.toFloatArray());
            assertArrayEquals(h.toFloatArray(), r.toFloatArray());
        }
    }

    @Test
    void zeroRowsIsANoOpAndLeadingDimensionsAreRows() {
        try (Tensor x = Tensor.allocateHost(DType.F32, 0, 8);
             Tensor w = Tensor.allocateHost(DType.F32, 8);
             Tensor out = Tensor.allocateHost(DType.F32, 0, 8)) {
            RmsNorm.apply(CPU, out, x, w, 1e-6f);
        }
        Random random = new Random(4);
        try (Tensor x = RandomTensors.normal(random, DType.F32, 1f, 2, 3, 5);
             Tensor w = RandomTensors.normal(random, DType.F32, 1f, 5);
             Tensor out3 = Tensor.allocateHost(DType.F32, 2, 3, 5);
             Tensor out2 = Tensor.allocateHost(DType.F32, 6, 5)) {
            RmsNorm.apply(CPU, out3, x, w, 1e-6f);
            RmsNorm.apply(CPU, out2, x.reshape(6, 5), w, 1e-6f);
            assertArrayEquals(out2.toFloatArray(), out3.toFloatArray());
        }
    }

    // ---- bad input: every check names the argument -------------------------------------------------

    @Test
    void rejectsBadArguments() {
        try (Tensor x = Tensor.allocateHost(DType.F32, 4, 8);
             Tensor w = Tensor.allocateHost(DType.F32, 8);
             Tensor out = Tensor.allocateHost(DType.F32, 4, 8);
             Tensor wrongW = Tensor.allocateHost(DType.F32, 7);
             Tensor bf16Out = Tensor.allocateHost(DType.BF16, 4, 8);
             Tensor ints = Tensor.allocateHost(DType.I32, 4, 8);
             Tensor intW = Tensor.allocateHost(DType.I32, 8);
             Tensor wide = Tensor.allocateHost(DType.F32, 4, 16);
             Tensor empty = Tensor.allocateHost(DType.F32, 4, 0);
             Tensor emptyW = Tensor.allocateHost(DType.F32, 0)) {
            illegalArgument("weight", () -> RmsNorm.apply(CPU, out, x, wrongW, 1e-6f));
            illegalArgument("out", () -> RmsNorm.apply(CPU, bf16Out, x, w, 1e-6f));
            illegalArgument("x", () -> RmsNorm.apply(CPU, ints, ints, intW, 1e-6f));
            illegalArgument("x", () -> RmsNorm.apply(CPU, out, wide.slice(1, 0, 8), w, 1e-6f)); // strided view
            illegalArgument("eps", () -> RmsNorm.apply(CPU, out, x, w, Float.NaN));
            illegalArgument("eps", () -> RmsNorm.apply(CPU, out, x, w, -1f));
            illegalArgument("empty", () -> RmsNorm.apply(CPU, empty, empty, emptyW, 1e-6f));
            illegalArgument("backend", () -> RmsNorm.apply(null, out, x, w, 1e-6f));
            illegalArgument("x", () -> RmsNorm.apply(CPU, out, null, w, 1e-6f));
            illegalArgument("residual", () -> RmsNorm.applyWithResidual(CPU, out, out, x, null, w, 1e-6f));
            illegalArgument("residual", () -> RmsNorm.applyWithResidual(CPU, out, x, x, wrongW, w, 1e-6f));
        }
    }

    @Test
    void rejectsClosedTensorsAndTensorsOnAnotherDevice() {
        Tensor x = Tensor.allocateHost(DType.F32, 2, 4);
        try (Tensor w = Tensor.allocateHost(DType.F32, 4);
             Tensor out = Tensor.allocateHost(DType.F32, 2, 4);
             Tensor onGpu = JCudaInterop.wrap(JCudaInterop.pointer(0x10000), 0, DType.F32, 2, 4)) {
            x.close();
            illegalArgument("closed", () -> RmsNorm.apply(CPU, out, x, w, 1e-6f));
            illegalArgument("cuda:0", () -> RmsNorm.apply(CPU, out, onGpu, w, 1e-6f));
        }
    }


    private static float[] scale(float[] v, float s) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) out[i] = v[i] * s;
        return out;
    }

    private static float[] filled(int n, float value) {
        float[] out = new float[n];
        java.util.Arrays.fill(out, value);
        return out;
    }
}
