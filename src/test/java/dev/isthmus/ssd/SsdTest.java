package dev.isthmus.ssd;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CPU path of the SSD scan: the reference against hand-computed steps, against the dual
 * (quadratic, attention-like) form of the same map written here independently, and against itself
 * under the identities the recurrence must satisfy (decode steps = one scan, packed = one by one,
 * resumed = whole); the gated RMSNorm by hand; every argument check.
 */
class SsdTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void matchesTwoHandComputedSteps() {
        // H = P = N = 1, A = -1, D = 0.5, dt' = dt (no bias, no softplus):
        //   S1 = e^(-0.5) 0 + 0.5 * 2 * 1 = 1            y1 = 1 * S1 + 0.5 * 2 = 2
        //   S2 = e^(-1) S1 + 1 * 3 * 2 = e^-1 + 6         y2 = 1 * S2 + 0.5 * 3
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {2, 3}, 1, 2, 1, 1);
             Tensor dt = Tensor.fromFloats(DType.F32, new float[] {0.5f, 1}, 1, 2, 1);
             Tensor b = Tensor.fromFloats(DType.F32, new float[] {1, 2}, 1, 2, 1, 1);
             Tensor c = Tensor.fromFloats(DType.F32, new float[] {1, 1}, 1, 2, 1, 1);
             Tensor a = Tensor.fromFloats(DType.F32, new float[] {-1}, 1);
             Tensor d = Tensor.fromFloats(DType.F32, new float[] {0.5f}, 1);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 2, 1, 1);
             Tensor last = Tensor.allocateHost(DType.F32, 1, 1, 1, 1)) {
            Ssd.scan(CPU, y, last, x, dt, b, c, new SsdWeights(a, d, null, false), null);
            double s2 = Math.exp(-1) + 6;
            assertArrayEquals(new float[] {2, (float) (s2 + 1.5)}, y.toFloatArray(), 1e-6f);
            assertArrayEquals(new float[] {(float) s2}, last.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void theTimeStepIsClampedAfterTheSoftplus() {
        // dt + bias = 3: softplus = 3.0486 > dtMax = 0.25, so dt' = 0.25; from S0 = 1 with A = -2,
        // x = B = C = 1: S = e^(-0.5) + 0.25 = y.
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {1}, 1, 1, 1, 1);
             Tensor dt = Tensor.fromFloats(DType.F32, new float[] {2}, 1, 1, 1);
             Tensor b = Tensor.fromFloats(DType.F32, new float[] {1}, 1, 1, 1, 1);
             Tensor a = Tensor.fromFloats(DType.F32, new float[] {-2}, 1);
             Tensor bias = Tensor.fromFloats(DType.F32, new float[] {1}, 1);
             Tensor s0 = Tensor.fromFloats(DType.F32, new float[] {1}, 1, 1, 1, 1);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 1, 1, 1)) {
            Ssd.scan(CPU, y, null, x, dt, b, b, new SsdWeights(a, null, bias, true, 0f, 0.25f), s0);
            assertEquals(Math.exp(-0.5) + 0.25, y.getFloat(0, 0, 0, 0), 1e-6);
        }
    }

    @Test
    void equalsTheDualQuadraticForm() {
        // y_t = sum_{s <= t} (C_t . B_s) exp(sum_{r=s+1..t} dt'_r A) dt'_s x_s + exp(sum_{r<=t} dt'_r A) C_t S0 + D x_t:
        // the matrix ("attention") form of the same linear map, section 3 of the paper.
        Random random = new Random(1);
        int length = 37, heads = 4, headDim = 3, groups = 2, nstate = 5;
        for (boolean limited : new boolean[] {false, true})
            try (SsdInputs in = SsdInputs.sequence(random, DType.F32, 1, length, heads, headDim, groups, nstate, true, true, true, limited);
                 Tensor s0 = RandomTensors.normal(random, DType.F32, 1f, 1, heads, headDim, nstate);
                 Tensor y = Tensor.allocateHost(DType.F32, 1, length, heads, headDim);
                 Tensor expected = Tensor.fromFloats(DType.F32, dualForm(in, s0.toFloatArray()), 1, length, heads, headDim)) {
                Ssd.scan(CPU, y, null, in.x(), in.dt(), in.b(), in.c(), in.weights(), s0);
                Compare.Result r = Compare.check("dual form", y, expected, 1e-6);
                assertTrue(r.withinBound(), r.toString());
            }
    }

    private static float[] dualForm(SsdInputs in, float[] s0) {
        int length = (int) in.x().dim(1), heads = (int) in.x().dim(2), headDim = (int) in.x().dim(3);
        int groups = (int) in.b().dim(2), nstate = (int) in.b().dim(3);
        float[] x = in.x().toFloatArray(), dt = in.dt().toFloatArray(), b = in.b().toFloatArray(), c = in.c().toFloatArray();
        float[] a = in.a().toFloatArray(), d = in.d().toFloatArray(), bias = in.dtBias().toFloatArray();
        float[] y = new float[x.length];
        for (int h = 0; h < heads; h++) {
            int g = h * groups / heads;
            double[] step = new double[length], cum = new double[length + 1]; // cum[t+1] = sum_{r<=t} dt'_r A
            for (int t = 0; t < length; t++) {
                double v = Math.log1p(Math.exp(dt[t * heads + h] + (double) bias[h]));
                step[t] = Math.min(Math.max(v, in.dtMin()), in.dtMax());
                cum[t + 1] = cum[t] + step[t] * a[h];
            }
            for (int t = 0; t < length; t++)
                for (int p = 0; p < headDim; p++) {
                    double acc = d[h] * (double) x[(t * heads + h) * headDim + p];
                    for (int n = 0; n < nstate; n++)
                        acc += Math.exp(cum[t + 1]) * c[(t * groups + g) * nstate + n] * s0[(h * headDim + p) * nstate + n];
                    for (int s = 0; s <= t; s++) {
                        double cb = 0;
                        for (int n = 0; n < nstate; n++) cb += (double) c[(t * groups + g) * nstate + n] * b[(s * groups + g) * nstate + n];
                        acc += cb * Math.exp(cum[t + 1] - cum[s + 1]) * step[s] * x[(s * heads + h) * headDim + p];
                    }
                    y[(t * heads + h) * headDim + p] = (float) acc;
                }
        }
        return y;
    }

    @Test
    void packedEqualsOneByOne() {
        Random random = new Random(2);
        int[] starts = {0, 5, 5, 6, 30, 47};
        int length = 47, heads = 2, headDim = 4, nstate = 3, sequences = starts.length - 1;
        try (SsdInputs in = SsdInputs.sequence(random, DType.F32, 1, length, heads, headDim, 1, nstate, true, true, true, false);
             Tensor s0 = RandomTensors.normal(random, DType.F32, 1f, sequences, heads, headDim, nstate);
             Tensor seqStarts = ints(starts);
             Tensor y = Tensor.allocateHost(DType.F32, 1, length, heads, headDim);
             Tensor last = Tensor.allocateHost(DType.F32, sequences, heads, headDim, nstate)) {
            Ssd.scanPacked(CPU, y, last, in.x(), in.dt(), in.b(), in.c(), in.weights(), seqStarts, s0);
            for (int i = 0; i < sequences; i++) {
                int lo = starts[i], hi = starts[i + 1];
                try (Tensor yi = Tensor.allocateHost(DType.F32, 1, hi - lo, heads, headDim);
                     Tensor li = Tensor.allocateHost(DType.F32, 1, heads, headDim, nstate);
                     Tensor si = Tensor.fromFloats(DType.F32, s0.slice(0, i, i + 1).toFloatArray(), 1, heads, headDim, nstate)) {
                    Ssd.scan(CPU, yi, li, in.x().slice(1, lo, hi), in.dt().slice(1, lo, hi), in.b().slice(1, lo, hi),
                            in.c().slice(1, lo, hi), in.weights(), si);
                    if (hi > lo) assertArrayEquals(yi.toFloatArray(), y.slice(1, lo, hi).toFloatArray(), 0f, "sequence " + i);
                    assertArrayEquals(li.toFloatArray(), last.slice(0, i, i + 1).toFloatArray(), 0f, "final state " + i);
                }
            }
        }
    }

    @Test
    void resumedEqualsWholeAndStepsEqualTheScan() {
        Random random = new Random(3);
        int batch = 2, length = 9, split = 4, heads = 3, headDim = 2, nstate = 4;
        try (SsdInputs in = SsdInputs.sequence(random, DType.F32, batch, length, heads, headDim, 3, nstate, true, true, true, true);
             Tensor s0 = RandomTensors.normal(random, DType.F32, 1f, batch, heads, headDim, nstate);
             Tensor y = Tensor.allocateHost(DType.F32, batch, length, heads, headDim);
             Tensor last = Tensor.allocateHost(DType.F32, batch, heads, headDim, nstate);
             Tensor mid = Tensor.allocateHost(DType.F32, batch, heads, headDim, nstate);
             Tensor yHead = Tensor.allocateHost(DType.F32, batch, split, heads, headDim);
             Tensor yTail = Tensor.allocateHost(DType.F32, batch, length - split, heads, headDim);
             Tensor end = Tensor.allocateHost(DType.F32, batch, heads, headDim, nstate)) {
            Ssd.scan(CPU, y, last, in.x(), in.dt(), in.b(), in.c(), in.weights(), s0);
            Ssd.scan(CPU, yHead, mid, slice(in.x(), 0, split), slice(in.dt(), 0, split), slice(in.b(), 0, split),
                    slice(in.c(), 0, split), in.weights(), s0);
            Ssd.scan(CPU, yTail, end, slice(in.x(), split, length), slice(in.dt(), split, length), slice(in.b(), split, length),
                    slice(in.c(), split, length), in.weights(), mid);
            assertArrayEquals(slice(y, split, length).toFloatArray(), yTail.toFloatArray(), 1e-5f);
            assertArrayEquals(last.toFloatArray(), end.toFloatArray(), 1e-5f);
            // the same sequence one token at a time, from the same states, through a pool with padding:
            // row r of the batch in slot 2 - r of a pool of 4, a padding row between them.
            float[] pool = new float[4 * heads * headDim * nstate];
            float[] init = s0.toFloatArray();
            int slotSize = heads * headDim * nstate;
            for (int r = 0; r < batch; r++) System.arraycopy(init, r * slotSize, pool, (2 - r) * slotSize, slotSize);
            try (Tensor state = Tensor.fromFloats(DType.F32, pool, 4, heads, headDim, nstate);
                 Tensor slots = ints(2, -1, 1)) {
                for (int t = 0; t < length; t++) {
                    try (Tensor x = padded(slice(in.x(), t, t + 1), heads, headDim);
                         Tensor dt = padded(slice(in.dt(), t, t + 1), heads);
                         Tensor b = padded(slice(in.b(), t, t + 1), 3, nstate);
                         Tensor c = padded(slice(in.c(), t, t + 1), 3, nstate);
                         Tensor yt = Tensor.allocateHost(DType.F32, 3, heads, headDim)) {
                        Ssd.step(CPU, yt, state, slots, x, dt, b, c, in.weights());
                        float[] got = yt.toFloatArray(), want = slice(y, t, t + 1).toFloatArray();
                        int row = heads * headDim;
                        for (int i = 0; i < row; i++) {
                            assertEquals(want[i], got[i], 1e-4, "step " + t + " row 0");
                            assertEquals(0f, got[row + i], "padding row");
                            assertEquals(want[row + i], got[2 * row + i], 1e-4, "step " + t + " row 1");
                        }
                    }
                }
                float[] s = state.toFloatArray(), l = last.toFloatArray();
                for (int i = 0; i < slotSize; i++) {
                    assertEquals(l[i], s[2 * slotSize + i], 1e-4);
                    assertEquals(l[slotSize + i], s[slotSize + i], 1e-4);
                    assertEquals(0f, s[3 * slotSize + i], "an unnamed slot");
                    assertEquals(0f, s[i], "an unnamed slot");
                }
            }
        }
    }

    /** Steps [lo, hi) of a (B, L, ...) tensor, as a copy. */
    private static Tensor slice(Tensor t, int lo, int hi) {
        Tensor view = t.slice(1, lo, hi);
        long[] shape = view.shape();
        return Tensor.fromFloats(t.dtype(), view.toFloatArray(), shape);
    }

    /** One step (B, 1, rest...) of two rows as three rows (row 0, a zero padding row, row 1), without the step dimension. */
    private static Tensor padded(Tensor step, long... rest) {
        float[] v = step.toFloatArray();
        int row = v.length / 2;
        float[] out = new float[3 * row];
        System.arraycopy(v, 0, out, 0, row);
        System.arraycopy(v, row, out, 2 * row, row);
        long[] shape = new long[rest.length + 1];
        shape[0] = 3;
        System.arraycopy(rest, 0, shape, 1, rest.length);
        step.close();
        return Tensor.fromFloats(DType.F32, out, shape);
    }

    @Test
    void gatedRmsNormNormalisesEachGroupOfTheGatedValues() {
        // v = y * silu(z); groups {v0, v1} and {v2, v3}, each divided by its own rms.
        float[] ys = {1, 2, 3, -4}, zs = {0.5f, -1, 2, 3}, ws = {1, 2, 0.5f, -1};
        try (Tensor y = Tensor.fromFloats(DType.F32, ys, 1, 4);
             Tensor z = Tensor.fromFloats(DType.F32, zs, 1, 4);
             Tensor w = Tensor.fromFloats(DType.F32, ws, 4);
             Tensor out = Tensor.allocateHost(DType.F32, 1, 4)) {
            Ssd.gatedRmsNorm(CPU, out, y, z, w, 2, 1e-5f);
            double[] v = new double[4];
            for (int i = 0; i < 4; i++) v[i] = ys[i] * zs[i] / (1 + Math.exp(-zs[i]));
            for (int i = 0; i < 4; i++) {
                int g = i / 2 * 2;
                double rms = Math.sqrt((v[g] * v[g] + v[g + 1] * v[g + 1]) / 2 + 1e-5);
                assertEquals(v[i] / rms * ws[i], out.getFloat(0, i), 1e-5, "channel " + i);
            }
            Ssd.gatedRmsNorm(CPU, out, y, null, w, 4, 0f); // no gate, one group: plain RMSNorm
            double rms = Math.sqrt((1 + 4 + 9 + 16) / 4.0);
            for (int i = 0; i < 4; i++) assertEquals(ys[i] / rms * ws[i], out.getFloat(0, i), 1e-6);
        }
    }

    @Test
    void badInputIsRefusedByName() {
        Random random = new Random(4);
        try (SsdInputs in = SsdInputs.sequence(random, DType.F32, 1, 6, 4, 2, 2, 3, true, true, true, false);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 6, 4, 2);
             Tensor y16 = Tensor.allocateHost(DType.BF16, 1, 6, 4, 2);
             Tensor b3 = RandomTensors.normal(random, DType.F32, 1f, 1, 6, 3, 3);
             Tensor a5 = Tensor.allocateHost(DType.F32, 5);
             Tensor badStarts = ints(0, 4, 2, 6);
             Tensor state = Tensor.allocateHost(DType.F32, 2, 4, 2, 3)) {
            SsdWeights w = in.weights();
            illegalArgument("y", () -> Ssd.scan(CPU, y16, null, in.x(), in.dt(), in.b(), in.c(), w, null));
            illegalArgument("groups", () -> Ssd.scan(CPU, y, null, in.x(), in.dt(), b3, b3, w, null));
            illegalArgument("a", () -> Ssd.scan(CPU, y, null, in.x(), in.dt(), in.b(), in.c(), new SsdWeights(a5, null, null, true), null));
            illegalArgument("time-step limits", () -> Ssd.scan(CPU, y, null, in.x(), in.dt(), in.b(), in.c(),
                    new SsdWeights(in.a(), null, null, true, 1f, 0f), null));
            illegalArgument("seqStarts must not decrease", () -> Ssd.scanPacked(CPU, y, null, in.x(), in.dt(), in.b(), in.c(), w, badStarts, null));
            illegalArgument("finalStates", () -> Ssd.scan(CPU, y, state, in.x(), in.dt(), in.b(), in.c(), w, null));
            illegalArgument("chunk", () -> Ssd.scan(CPU, y, null, in.x(), in.dt(), in.b(), in.c(), w, null, null, 48));
            illegalArgument("y", () -> Ssd.scan(CPU, in.x(), null, in.x(), in.dt(), in.b(), in.c(), w, null));
            illegalArgument("groupSize", () -> Ssd.gatedRmsNorm(CPU, y, y, null, Tensor.allocateHost(DType.F32, 2), 3, 1e-5f));
        }
        try (SsdInputs in = SsdInputs.token(random, DType.F32, 2, 4, 2, 1, 3, true, true, true, false);
             Tensor y = Tensor.allocateHost(DType.F32, 2, 4, 2);
             Tensor pool = Tensor.allocateHost(DType.F32, 3, 4, 2, 3);
             Tensor twice = ints(1, 1);
             Tensor outside = ints(0, 3)) {
            illegalArgument("pass slots", () -> Ssd.step(CPU, y, pool, null, in.x(), in.dt(), in.b(), in.c(), in.weights()));
            illegalArgument("twice", () -> Ssd.step(CPU, y, pool, twice, in.x(), in.dt(), in.b(), in.c(), in.weights()));
            illegalArgument("out of range", () -> Ssd.step(CPU, y, pool, outside, in.x(), in.dt(), in.b(), in.c(), in.weights()));
        }
    }

    static Tensor ints(int... values) {
        long[] v = new long[values.length];
        for (int i = 0; i < v.length; i++) v[i] = values[i];
        return Tensor.fromLongs(DType.I32, v, values.length);
    }
}
