package dev.isthmus.scan;

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
 * The CPU path of the selective scan: the reference against hand-computed steps and against
 * itself under the identities the recurrence must satisfy (decode steps = one scan, packed =
 * one by one, resumed = whole, groups = repeated B/C), extreme values, and every argument check.
 */
class SelectiveScanTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void matchesTwoHandComputedSteps() {
        // A = -1, D = 0.5, dt = delta (no bias, no softplus), N = 1:
        //   h1 = e^(-0.5) * 0 + 0.5 * 1 * 2 = 1              y1 = 1 * h1 + 0.5 * 2 = 2
        //   h2 = e^(-1) * 1 + 1 * 2 * 3 = e^-1 + 6           y2 = 1 * h2 + 0.5 * 3
        try (Tensor u = Tensor.fromFloats(DType.F32, new float[] {2, 3}, 1, 1, 2);
             Tensor delta = Tensor.fromFloats(DType.F32, new float[] {0.5f, 1}, 1, 1, 2);
             Tensor b = Tensor.fromFloats(DType.F32, new float[] {1, 2}, 1, 1, 1, 2);
             Tensor c = Tensor.fromFloats(DType.F32, new float[] {1, 1}, 1, 1, 1, 2);
             Tensor a = Tensor.fromFloats(DType.F32, new float[] {-1}, 1, 1);
             Tensor d = Tensor.fromFloats(DType.F32, new float[] {0.5f}, 1);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 1, 2);
             Tensor last = Tensor.allocateHost(DType.F32, 1, 1, 1)) {
            SelectiveScan.scan(CPU, y, last, u, delta, null, b, c, new ScanWeights(a, d, null, false), null);
            double h2 = Math.exp(-1) + 6;
            assertArrayEquals(new float[] {2, (float) (h2 + 1.5)}, y.toFloatArray(), 1e-6f);
            assertArrayEquals(new float[] {(float) h2}, last.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void biasSoftplusAndGateEnterAsWritten() {
        // delta = 0.5, bias = -0.5: dt = softplus(0) = ln 2. One step from h0 = 1 with A = -2, B = 3,
        // C = 2, u = 4, D = 0: h = e^(-2 ln 2) * 1 + ln 2 * 3 * 4 = 0.25 + 12 ln 2, y = 2 h * silu(z).
        float z = 1.5f;
        try (Tensor u = Tensor.fromFloats(DType.F32, new float[] {4}, 1, 1, 1);
             Tensor delta = Tensor.fromFloats(DType.F32, new float[] {0.5f}, 1, 1, 1);
             Tensor zs = Tensor.fromFloats(DType.F32, new float[] {z}, 1, 1, 1);
             Tensor b = Tensor.fromFloats(DType.F32, new float[] {3}, 1, 1, 1, 1);
             Tensor c = Tensor.fromFloats(DType.F32, new float[] {2}, 1, 1, 1, 1);
             Tensor a = Tensor.fromFloats(DType.F32, new float[] {-2}, 1, 1);
             Tensor bias = Tensor.fromFloats(DType.F32, new float[] {-0.5f}, 1);
             Tensor h0 = Tensor.fromFloats(DType.F32, new float[] {1}, 1, 1, 1);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 1, 1)) {
            SelectiveScan.scan(CPU, y, h0, u, delta, zs, b, c, new ScanWeights(a, null, bias, true), h0);
            double h = 0.25 + 12 * Math.log(2);
            assertEquals(2 * h * z / (1 + Math.exp(-z)), y.getFloat(0, 0, 0), 1e-5);
            assertEquals(h, h0.getFloat(0, 0, 0), 1e-5, "final state written over the initial state");
        }
    }

    @Test
    void groupsShareBAndCAmongTheirChannels() {
        // G = 2 over D = 4 is the same as G = 4 with each group's B and C repeated per channel.
        Random random = new Random(21);
        int batch = 2, channels = 4, length = 7, nstate = 3;
        try (ScanInputs in = ScanInputs.sequence(random, DType.F32, batch, channels, length, 2, nstate, true, true, true, true);
             Tensor bWide = repeatGroups(in.b(), 2);
             Tensor cWide = repeatGroups(in.c(), 2);
             Tensor y = Tensor.allocateHost(DType.F32, batch, channels, length);
             Tensor yWide = Tensor.allocateHost(DType.F32, batch, channels, length)) {
            SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), null);
            SelectiveScan.scan(CPU, yWide, null, in.u(), in.delta(), in.z(), bWide, cWide, in.weights(), null);
            assertArrayEquals(yWide.toFloatArray(), y.toFloatArray());
        }
    }

    @Test
    void decodeStepsEqualOneScan() {
        Random random = new Random(22);
        int batch = 2, channels = 5, length = 9, groups = 1, nstate = 4;
        for (boolean options : new boolean[] {false, true}) {
            try (ScanInputs in = ScanInputs.sequence(random, DType.F32, batch, channels, length, groups, nstate, options, options, options, options);
                 Tensor h0 = RandomTensors.normal(random, DType.F32, 1f, batch, channels, nstate);
                 Tensor y = Tensor.allocateHost(DType.F32, batch, channels, length);
                 Tensor last = Tensor.allocateHost(DType.F32, batch, channels, nstate);
                 Tensor state = copy(h0);
                 Tensor yStep = Tensor.allocateHost(DType.F32, batch, channels)) {
                SelectiveScan.scan(CPU, y, last, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), h0);
                float[] expected = y.toFloatArray();
                for (int t = 0; t < length; t++) {
                    try (Tensor u = step(in.u(), t); Tensor delta = step(in.delta(), t); Tensor z = in.z() == null ? null : step(in.z(), t);
                         Tensor b = step(in.b(), t); Tensor c = step(in.c(), t)) {
                        SelectiveScan.step(CPU, yStep, state, null, u, delta, z, b, c, in.weights());
                        float[] got = yStep.toFloatArray();
                        for (int i = 0; i < batch * channels; i++)
                            assertEquals(expected[i * length + t], got[i], 1e-5 * (1 + Math.abs(got[i])), "step " + t + ", row/channel " + i);
                    }
                }
                assertArrayEquals(last.toFloatArray(), state.toFloatArray(), 1e-4f);
            }
        }
    }

    @Test
    void stateSlotsPickRowsOfThePoolAndNegativeSlotsArePadding() {
        Random random = new Random(23);
        int batch = 3, channels = 4, groups = 2, nstate = 5, pool = 6;
        int[] slots = {4, -1, 1};
        try (ScanInputs in = ScanInputs.token(random, DType.BF16, batch, channels, groups, nstate, true, true, true, true);
             Tensor poolState = RandomTensors.normal(random, DType.F32, 1f, pool, channels, nstate);
             Tensor before = copy(poolState);
             Tensor slotTensor = ints(slots);
             Tensor y = Tensor.allocateHost(DType.BF16, batch, channels);
             Tensor gathered = Tensor.allocateHost(DType.F32, batch, channels, nstate);
             Tensor yDense = Tensor.allocateHost(DType.BF16, batch, channels)) {
            float[] all = poolState.toFloatArray(), rows = new float[batch * channels * nstate];
            int slice = channels * nstate;
            for (int r = 0; r < batch; r++) if (slots[r] >= 0) System.arraycopy(all, slots[r] * slice, rows, r * slice, slice);
            gathered.copyFrom(rows);
            SelectiveScan.step(CPU, y, poolState, slotTensor, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights());
            SelectiveScan.step(CPU, yDense, gathered, null, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights());
            float[] got = y.toFloatArray(), dense = yDense.toFloatArray();
            float[] after = poolState.toFloatArray(), old = before.toFloatArray(), updated = gathered.toFloatArray();
            for (int r = 0; r < batch; r++)
                for (int i = 0; i < channels; i++)
                    assertEquals(slots[r] < 0 ? 0f : dense[r * channels + i], got[r * channels + i], "y row " + r);
            for (int s = 0; s < pool; s++) {
                int row = s == 4 ? 0 : s == 1 ? 2 : -1;
                for (int i = 0; i < slice; i++)
                    assertEquals(row < 0 ? old[s * slice + i] : updated[row * slice + i], after[s * slice + i], "slot " + s);
            }
        }
    }

    @Test
    void aPackedBatchEqualsItsSequencesRunOneByOne() {
        Random random = new Random(24);
        int channels = 3, groups = 1, nstate = 4;
        int[] starts = {0, 5, 5, 12, 13}; // lengths 5, 0, 7, 1
        int length = starts[starts.length - 1], sequences = starts.length - 1;
        try (ScanInputs in = ScanInputs.sequence(random, DType.F32, 1, channels, length, groups, nstate, true, true, true, true);
             Tensor h0 = RandomTensors.normal(random, DType.F32, 1f, sequences, channels, nstate);
             Tensor y = Tensor.allocateHost(DType.F32, 1, channels, length);
             Tensor last = Tensor.allocateHost(DType.F32, sequences, channels, nstate);
             Tensor startTensor = ints(starts)) {
            SelectiveScan.scanPacked(CPU, y, last, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), startTensor, h0);
            for (int s = 0; s < sequences; s++) {
                int lo = starts[s], hi = starts[s + 1];
                try (Tensor u = range(in.u(), lo, hi); Tensor delta = range(in.delta(), lo, hi); Tensor z = range(in.z(), lo, hi);
                     Tensor b = range(in.b(), lo, hi); Tensor c = range(in.c(), lo, hi);
                     Tensor h = range0(h0, s); Tensor ys = Tensor.allocateHost(DType.F32, 1, channels, hi - lo);
                     Tensor lastOne = Tensor.allocateHost(DType.F32, 1, channels, nstate);
                     Tensor packedPart = range(y, lo, hi); Tensor packedLast = range0(last, s)) {
                    SelectiveScan.scan(CPU, ys, lastOne, u, delta, z, b, c, in.weights(), h);
                    assertArrayEquals(ys.toFloatArray(), packedPart.toFloatArray(), "sequence " + s);
                    assertArrayEquals(lastOne.toFloatArray(), packedLast.toFloatArray(), "final state of sequence " + s);
                }
            }
        }
    }

    @Test
    void anInitialStateAndTheSecondHalfEqualTheWhole() {
        Random random = new Random(25);
        int batch = 2, channels = 3, length = 11, split = 4, groups = 3, nstate = 2;
        try (ScanInputs in = ScanInputs.sequence(random, DType.F32, batch, channels, length, groups, nstate, true, true, true, true);
             Tensor y = Tensor.allocateHost(DType.F32, batch, channels, length);
             Tensor last = Tensor.allocateHost(DType.F32, batch, channels, nstate);
             Tensor first = Tensor.allocateHost(DType.F32, batch, channels, split);
             Tensor second = Tensor.allocateHost(DType.F32, batch, channels, length - split);
             Tensor mid = Tensor.allocateHost(DType.F32, batch, channels, nstate);
             Tensor u1 = range(in.u(), 0, split); Tensor d1 = range(in.delta(), 0, split); Tensor z1 = range(in.z(), 0, split);
             Tensor b1 = range(in.b(), 0, split); Tensor c1 = range(in.c(), 0, split);
             Tensor u2 = range(in.u(), split, length); Tensor d2 = range(in.delta(), split, length); Tensor z2 = range(in.z(), split, length);
             Tensor b2 = range(in.b(), split, length); Tensor c2 = range(in.c(), split, length)) {
            SelectiveScan.scan(CPU, y, last, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), null);
            SelectiveScan.scan(CPU, first, mid, u1, d1, z1, b1, c1, in.weights(), null);
            SelectiveScan.scan(CPU, second, mid, u2, d2, z2, b2, c2, in.weights(), mid); // resumed in place
            try (Tensor whole1 = range(y, 0, split); Tensor whole2 = range(y, split, length)) {
                assertArrayEquals(whole1.toFloatArray(), first.toFloatArray());
                // The middle state is rounded to f32 between the halves.
                assertArrayEquals(whole2.toFloatArray(), second.toFloatArray(), 1e-5f);
            }
            assertArrayEquals(last.toFloatArray(), mid.toFloatArray(), 1e-5f);
        }
    }

    @Test
    void extremeValuesStayFinite() {
        // Huge dt (delta 1e4 through the softplus), A near 0 and A very negative: exp(dt A)
        // underflows to 0 or stays near 1, and nothing overflows to inf or NaN.
        Random random = new Random(26);
        int channels = 4, length = 33, nstate = 3;
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            try (ScanInputs in = ScanInputs.sequence(random, dtype, 1, channels, length, 1, nstate, true, true, true, true);
                 Tensor bigDelta = RandomTensors.uniform(random, dtype, 1e3f, 1e4f, 1, channels, length);
                 Tensor a = Tensor.fromFloats(DType.F32, new float[] {-1e-7f, -1e-30f, -1e4f, -0f, -1e-6f, -3e38f,
                         -1e-7f, -1e-30f, -1e4f, -0.5f, -1e-6f, -3e38f}, channels, nstate);
                 Tensor y = Tensor.allocateHost(dtype, 1, channels, length);
                 Tensor last = Tensor.allocateHost(DType.F32, 1, channels, nstate)) {
                ScanWeights w = new ScanWeights(a, in.d(), in.deltaBias(), true);
                SelectiveScan.scan(CPU, y, last, in.u(), bigDelta, in.z(), in.b(), in.c(), w, null);
                assertAllFinite(y.toFloatArray(), dtype + " y");
                assertAllFinite(last.toFloatArray(), dtype + " final state");
            }
        }
    }

    @Test
    void bf16InputsGiveTheF32ResultRoundedToBf16() {
        Random random = new Random(27);
        try (ScanInputs in = ScanInputs.sequence(random, DType.BF16, 2, 3, 10, 1, 4, true, true, true, true);
             Tensor u = in.u().to(DType.F32); Tensor delta = in.delta().to(DType.F32); Tensor z = in.z().to(DType.F32);
             Tensor b = in.b().to(DType.F32); Tensor c = in.c().to(DType.F32);
             Tensor y = Tensor.allocateHost(DType.BF16, 2, 3, 10);
             Tensor y32 = Tensor.allocateHost(DType.F32, 2, 3, 10)) {
            SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), null);
            SelectiveScan.scan(CPU, y32, null, u, delta, z, b, c, in.weights(), null);
            Compare.Result result = Compare.check("bf16 vs f32", y, y32, Compare.boundFor(DType.BF16));
            assertTrue(result.withinBound(), result.toString());
        }
    }

    // ---- bad input: every check names the argument -------------------------------------------------

    @Test
    void rejectsBadSequenceArguments() {
        Random random = new Random(28);
        try (ScanInputs in = ScanInputs.sequence(random, DType.F32, 2, 6, 5, 3, 4, true, true, true, true);
             Tensor y = Tensor.allocateHost(DType.F32, 2, 6, 5);
             Tensor shortY = Tensor.allocateHost(DType.F32, 2, 6, 4);
             Tensor bf16Y = Tensor.allocateHost(DType.BF16, 2, 6, 5);
             Tensor intU = Tensor.allocateHost(DType.I32, 2, 6, 5);
             Tensor bFourGroups = Tensor.allocateHost(DType.F32, 2, 4, 4, 5);
             Tensor bHugeState = Tensor.allocateHost(DType.F32, 2, 1, 257, 5);
             Tensor bf16A = Tensor.allocateHost(DType.BF16, 6, 4);
             Tensor wrongA = Tensor.allocateHost(DType.F32, 6, 3);
             Tensor wrongD = Tensor.allocateHost(DType.F32, 5);
             Tensor wrongState = Tensor.allocateHost(DType.F32, 2, 6, 3);
             Tensor bf16State = Tensor.allocateHost(DType.BF16, 2, 6, 4);
             Tensor wide = Tensor.allocateHost(DType.F32, 2, 6, 10)) {
            ScanWeights w = in.weights();
            illegalArgument("y", () -> SelectiveScan.scan(CPU, shortY, null, in.u(), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("y", () -> SelectiveScan.scan(CPU, bf16Y, null, in.u(), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("y", () -> SelectiveScan.scan(CPU, in.u(), null, in.u(), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("u", () -> SelectiveScan.scan(CPU, y, null, intU, in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("u", () -> SelectiveScan.scan(CPU, y, null, wide.slice(2, 0, 5), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("delta", () -> SelectiveScan.scan(CPU, y, null, in.u(), shortY, null, in.b(), in.c(), w, null));
            illegalArgument("z", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), bf16Y, in.b(), in.c(), w, null));
            illegalArgument("groups", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, bFourGroups, in.c(), w, null));
            illegalArgument("N = 257", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, bHugeState, in.c(), w, null));
            illegalArgument("c", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), bFourGroups, w, null));
            illegalArgument("a", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), new ScanWeights(bf16A, null, null, true), null));
            illegalArgument("a", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), new ScanWeights(wrongA, null, null, true), null));
            illegalArgument("d", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), new ScanWeights(in.a(), wrongD, null, true), null));
            illegalArgument("deltaBias", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), new ScanWeights(in.a(), null, wrongD, true), null));
            illegalArgument("weights", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), null, null));
            illegalArgument("initialState", () -> SelectiveScan.scan(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, wrongState));
            illegalArgument("finalState", () -> SelectiveScan.scan(CPU, y, bf16State, in.u(), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("backend", () -> SelectiveScan.scan(null, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, null));
            illegalArgument("B = 2", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, ints(0, 5), null));
        }
    }

    @Test
    void rejectsBadSequenceStarts() {
        Random random = new Random(29);
        try (ScanInputs in = ScanInputs.sequence(random, DType.F32, 1, 2, 6, 1, 3, false, false, false, true);
             Tensor y = Tensor.allocateHost(DType.F32, 1, 2, 6);
             Tensor states = Tensor.allocateHost(DType.F32, 3, 2, 3)) {
            ScanWeights w = in.weights();
            illegalArgument("begin at 0", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, ints(1, 6), null));
            illegalArgument("end at L = 6", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, ints(0, 2, 5), null));
            illegalArgument("decrease", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, ints(0, 4, 3, 6), null));
            illegalArgument("at least 2", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, ints(0), null));
            illegalArgument("seqStarts", () -> SelectiveScan.scanPacked(CPU, y, null, in.u(), in.delta(), null, in.b(), in.c(), w, in.a(), null));
            illegalArgument("finalStates", () -> SelectiveScan.scanPacked(CPU, y, states, in.u(), in.delta(), null, in.b(), in.c(), w, ints(0, 6), null));
        }
    }

    @Test
    void rejectsBadStepArguments() {
        Random random = new Random(30);
        try (ScanInputs in = ScanInputs.token(random, DType.F16, 3, 4, 2, 5, true, true, true, true);
             Tensor y = Tensor.allocateHost(DType.F16, 3, 4);
             Tensor pool = Tensor.allocateHost(DType.F32, 4, 4, 5);
             Tensor dense = Tensor.allocateHost(DType.F32, 3, 4, 5);
             Tensor halfState = Tensor.allocateHost(DType.F16, 3, 4, 5);
             Tensor bThreeGroups = Tensor.allocateHost(DType.F16, 3, 3, 5)) {
            ScanWeights w = in.weights();
            illegalArgument("out of range", () -> SelectiveScan.step(CPU, y, pool, ints(0, 4, 1), in.u(), in.delta(), in.z(), in.b(), in.c(), w));
            illegalArgument("twice", () -> SelectiveScan.step(CPU, y, pool, ints(2, -1, 2), in.u(), in.delta(), in.z(), in.b(), in.c(), w));
            illegalArgument("slots", () -> SelectiveScan.step(CPU, y, pool, ints(0, 1), in.u(), in.delta(), in.z(), in.b(), in.c(), w));
            illegalArgument("pass slots", () -> SelectiveScan.step(CPU, y, pool, null, in.u(), in.delta(), in.z(), in.b(), in.c(), w));
            illegalArgument("state", () -> SelectiveScan.step(CPU, y, halfState, null, in.u(), in.delta(), in.z(), in.b(), in.c(), w));
            illegalArgument("groups", () -> SelectiveScan.step(CPU, y, dense, null, in.u(), in.delta(), in.z(), bThreeGroups, bThreeGroups, w));
            illegalArgument("delta", () -> SelectiveScan.step(CPU, y, dense, null, in.u(), pool, in.z(), in.b(), in.c(), w));
            illegalArgument("y", () -> SelectiveScan.step(CPU, dense, dense, null, in.u(), in.delta(), in.z(), in.b(), in.c(), w));
        }
    }

    // ---- helpers -----------------------------------------------------------------------------------

    static void assertAllFinite(float[] values, String what) {
        for (int i = 0; i < values.length; i++) assertTrue(Float.isFinite(values[i]), what + "[" + i + "] = " + values[i]);
    }

    static Tensor ints(int... values) {
        long[] v = new long[values.length];
        for (int i = 0; i < v.length; i++) v[i] = values[i];
        return Tensor.fromLongs(DType.I32, v, values.length);
    }

    static Tensor copy(Tensor t) {
        return Tensor.fromFloats(t.dtype(), t.toFloatArray(), t.shape());
    }

    /** A contiguous copy of steps [lo, hi) of the last dimension; null stays null. */
    static Tensor range(Tensor t, long lo, long hi) {
        if (t == null) return null;
        Tensor view = t.slice(t.rank() - 1, lo, hi);
        return Tensor.fromFloats(t.dtype(), view.toFloatArray(), view.shape());
    }

    /** A contiguous copy of entry i of the first dimension, keeping it as a dimension of 1. */
    static Tensor range0(Tensor t, long i) {
        Tensor view = t.slice(0, i, i + 1);
        return Tensor.fromFloats(t.dtype(), view.toFloatArray(), view.shape());
    }

    /** Step t of a sequence tensor, the last dimension dropped. */
    private static Tensor step(Tensor t, int index) {
        long[] shape = java.util.Arrays.copyOf(t.shape(), t.rank() - 1);
        return Tensor.fromFloats(t.dtype(), t.slice(t.rank() - 1, index, index + 1).toFloatArray(), shape);
    }

    /** (B, G, N, L) with every group repeated `times` times along G. */
    private static Tensor repeatGroups(Tensor t, int times) {
        int batch = (int) t.dim(0), groups = (int) t.dim(1), rest = (int) (t.dim(2) * t.dim(3));
        float[] v = t.toFloatArray(), out = new float[v.length * times];
        for (int b = 0; b < batch; b++)
            for (int g = 0; g < groups * times; g++)
                System.arraycopy(v, (b * groups + g / times) * rest, out, (b * groups * times + g) * rest, rest);
        return Tensor.fromFloats(t.dtype(), out, batch, (long) groups * times, t.dim(2), t.dim(3));
    }
}
