package dev.isthmus.ssd;

import static dev.isthmus.ssd.SsdTest.ints;
import static dev.isthmus.testing.DeviceAssert.assertClose;
import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Arrays;
import java.util.Random;

/**
 * The chunked CUDA SSD scan, its decode step and the gated RMSNorm against the CPU reference (the
 * recurrence): f32 (CUDA cores) and f16/bf16 (tensor cores), every chunk length the kernel takes,
 * sequences shorter than, as long as and longer than a chunk, packed batches with boundaries
 * anywhere (inside chunks, on their edges, empty sequences), every option on and off, head
 * dimensions and state sizes that are not multiples of any tile, outputs and states poisoned
 * with NaN before each launch.
 */
class SsdGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};
    private static final int[] CHUNKS = {16, 32, 64};
    /** The fp32 state after a chunk's worth of approximate exponentials and products. */
    private static final double STATE_BOUND = 1e-4;

    /** The bound for y: f16 rounds M and the state to 11 bits as the tensor cores' operands. */
    private static double bound(DType dtype) {
        return dtype == DType.F16 ? 4e-3 : dtype == DType.F32 ? 2e-5 : Compare.boundFor(dtype);
    }

    @GpuTest
    void chunkedEqualsTheRecurrence() {
        Random random = new Random(41);
        // batch, heads, head_dim, groups, nstate: P and N off the 16-tiles, groups shared by heads
        int[][] shapes = {{1, 1, 1, 1, 1}, {2, 3, 5, 1, 17}, {1, 4, 16, 2, 16}, {1, 2, 24, 2, 3}, {1, 1, 64, 1, 128}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int chunk : CHUNKS)
                    for (int length : new int[] {1, chunk - 1, chunk, chunk + 1, 2 * chunk + 5})
                        for (int[] s : shapes) {
                            if (s[4] == 128 && length > chunk + 1) continue; // the wide shape once per chunk edge
                            int options = (length + chunk / 16 + s[2]) % 4; // each option on and off across the shapes
                            boolean on = options % 2 == 1, initial = options >= 2;
                            try (SsdInputs in = SsdInputs.sequence(random, dtype, s[0], length, s[1], s[2], s[3], s[4], on, !on, options != 2, initial);
                                 Tensor s0 = initial ? RandomTensors.normal(random, DType.F32, 1f, s[0], s[1], s[2], s[4]) : null) {
                                check(gpu, in, s0, null, chunk, dtype.label() + " chunk " + chunk + " L " + length + " " + Arrays.toString(s) + " options " + options);
                            }
                        }
        }
    }

    @GpuTest
    void packedBatchesWithBoundariesAnywhere() {
        Random random = new Random(42);
        int[][] startSets = {{0, 1}, {0, 3, 3, 10, 11, 40}, {0, 16, 32, 33, 70}, {0, 15, 17, 64, 65, 129},
            {0, 5, 37, 100, 131}, {0, 1, 2, 3, 4, 80}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int chunk : CHUNKS)
                    for (int[] starts : startSets) {
                        int length = starts[starts.length - 1], sequences = starts.length - 1;
                        try (SsdInputs in = SsdInputs.sequence(random, dtype, 1, length, 2, 8, 1, 16, true, true, true, true);
                             Tensor s0 = RandomTensors.normal(random, DType.F32, 1f, sequences, 2, 8, 16);
                             Tensor seqStarts = ints(starts)) {
                            String what = dtype.label() + " chunk " + chunk + " packed " + Arrays.toString(starts);
                            check(gpu, in, s0, seqStarts, chunk, what);
                            check(gpu, in, null, seqStarts, chunk, what + ", no initial states");
                        }
                    }
        }
    }

    @GpuTest
    void theLaunchersChoiceAndTheWidestShapes() {
        Random random = new Random(43);
        // P = 72 takes two channel tiles; N = 256 and P = 256 the largest state (the tile narrows to fit)
        int[][] shapes = {{1, 2, 72, 1, 32}, {1, 1, 256, 1, 256}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : shapes)
                    try (SsdInputs in = SsdInputs.sequence(random, dtype, s[0], 70, s[1], s[2], s[3], s[4], true, true, true, false);
                         Tensor s0 = RandomTensors.normal(random, DType.F32, 1f, s[0], s[1], s[2], s[4])) {
                        check(gpu, in, s0, null, 0, dtype.label() + " " + Arrays.toString(s));
                    }
        }
    }

    private static void check(CudaBackend gpu, SsdInputs in, Tensor s0, Tensor seqStarts, int chunk, String what) {
        long rows = seqStarts == null ? in.x().dim(0) : seqStarts.dim(0) - 1;
        long heads = in.x().dim(2), headDim = in.x().dim(3), nstate = in.b().dim(3);
        DType dtype = in.dtype();
        try (SsdInputs dev = in.copyTo(gpu);
             Tensor devS0 = s0 == null ? null : gpu.copyOf(s0);
             Tensor devStarts = seqStarts == null ? null : gpu.copyOf(seqStarts);
             Tensor y = gpu.allocate(dtype, in.x().shape());
             Tensor last = gpu.allocate(DType.F32, rows, heads, headDim, nstate);
             Tensor expected = Tensor.allocateHost(dtype, in.x().shape());
             Tensor expectedLast = Tensor.allocateHost(DType.F32, rows, heads, headDim, nstate)) {
            gpu.poison(y);
            gpu.poison(last);
            Ssd.scan(Backend.cpu(), expected, expectedLast, in.x(), in.dt(), in.b(), in.c(), in.weights(), s0, seqStarts, 0);
            Ssd.scan(gpu, y, last, dev.x(), dev.dt(), dev.b(), dev.c(), dev.weights(), devS0, devStarts, chunk);
            assertClose(what + " y", gpu, y, expected, bound(dtype));
            assertClose(what + " final states", gpu, last, expectedLast, dtype == DType.F32 ? STATE_BOUND : bound(dtype));
        }
    }

    @GpuTest
    void stepMatchesTheReferenceWithSlotsAndPadding() {
        Random random = new Random(44);
        // batch, heads, head_dim, groups, nstate
        int[][] shapes = {{1, 1, 1, 1, 1}, {3, 4, 5, 2, 17}, {5, 2, 64, 1, 128}, {2, 3, 7, 3, 33}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : shapes)
                    for (boolean slotted : new boolean[] {false, true}) {
                        int batch = s[0], pool = slotted ? batch + 3 : batch;
                        int[] slots = new int[batch];
                        for (int r = 0; r < batch; r++) slots[r] = slotted ? (r % 3 == 1 ? -1 : pool - 1 - r) : r;
                        try (SsdInputs in = SsdInputs.token(random, dtype, batch, s[1], s[2], s[3], s[4], slotted, !slotted, true, slotted);
                             SsdInputs dev = in.copyTo(gpu);
                             Tensor state = RandomTensors.normal(random, DType.F32, 1f, pool, s[1], s[2], s[4]);
                             Tensor devState = gpu.copyOf(state);
                             Tensor slotTensor = slotted ? ints(slots) : null;
                             Tensor devSlots = slotted ? gpu.copyOf(slotTensor) : null;
                             Tensor expected = Tensor.allocateHost(dtype, batch, s[1], s[2]);
                             Tensor y = gpu.allocate(dtype, batch, s[1], s[2])) {
                            gpu.poison(y);
                            String what = dtype.label() + " " + Arrays.toString(s) + (slotted ? " slotted" : "");
                            Ssd.step(Backend.cpu(), expected, state, slotTensor, in.x(), in.dt(), in.b(), in.c(), in.weights());
                            Ssd.step(gpu, y, devState, devSlots, dev.x(), dev.dt(), dev.b(), dev.c(), dev.weights());
                            assertClose(what + " y", gpu, y, expected, Compare.boundFor(dtype));
                            assertClose(what + " state", gpu, devState, state, STATE_BOUND);
                        }
                    }
        }
    }

    @GpuTest
    void aSlotOutOfRangeOrTakenTwiceOnTheDeviceGivesNaNAndTouchesNothing() {
        Random random = new Random(45);
        try (CudaBackend gpu = Backend.cuda(0);
             SsdInputs in = SsdInputs.token(random, DType.F32, 3, 2, 4, 1, 8, true, true, true, false);
             SsdInputs dev = in.copyTo(gpu);
             Tensor state = RandomTensors.normal(random, DType.F32, 1f, 2, 2, 4, 8);
             Tensor devState = gpu.copyOf(state);
             Tensor slots = ints(0, 5, 0); // row 1 out of range, row 2 names row 0's slot
             Tensor devSlots = gpu.copyOf(slots);
             Tensor y = gpu.allocate(DType.F32, 3, 2, 4)) {
            Ssd.step(gpu, y, devState, devSlots, dev.x(), dev.dt(), dev.b(), dev.c(), dev.weights());
            try (Tensor hy = gpu.toHost(y); Tensor hs = gpu.toHost(devState)) {
                float[] v = hy.toFloatArray(), before = state.toFloatArray(), after = hs.toFloatArray();
                for (int i = 8; i < 24; i++) assertTrue(Float.isNaN(v[i]), "rows 1 and 2 are NaN");
                for (int i = 0; i < 8; i++) assertTrue(Float.isFinite(v[i]), "row 0 is computed");
                for (int i = 64; i < 128; i++) assertEquals(before[i], after[i], "slot 1 is untouched");
            }
        }
    }

    @GpuTest
    void gatedRmsNormMatchesTheReference() {
        Random random = new Random(46);
        // rows, width, group size: one group (n_groups = 1), several, groups wider than the block
        long[][] shapes = {{1, 1, 1}, {3, 40, 8}, {5, 96, 96}, {2, 2560, 320}, {2, 1000, 1000}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (long[] s : shapes)
                    for (boolean gated : new boolean[] {true, false})
                        try (Tensor y = RandomTensors.normal(random, dtype, 1f, s[0], s[1]);
                             Tensor z = RandomTensors.normal(random, dtype, 1f, s[0], s[1]);
                             Tensor w = RandomTensors.normal(random, dtype, 1f, s[1]);
                             Tensor expected = Tensor.allocateHost(dtype, s[0], s[1]);
                             Tensor dy = gpu.copyOf(y); Tensor dz = gpu.copyOf(z); Tensor dw = gpu.copyOf(w);
                             Tensor out = gpu.allocate(dtype, s[0], s[1])) {
                            gpu.poison(out);
                            Ssd.gatedRmsNorm(Backend.cpu(), expected, y, gated ? z : null, w, s[2], 1e-5f);
                            Ssd.gatedRmsNorm(gpu, out, dy, gated ? dz : null, dw, s[2], 1e-5f);
                            assertClose(dtype.label() + " " + Arrays.toString(s) + (gated ? " gated" : ""), gpu, out, expected,
                                    Compare.boundFor(dtype));
                        }
        }
    }

    @GpuTest
    void hostTensorsAreRefusedByName() {
        Random random = new Random(47);
        try (CudaBackend gpu = Backend.cuda(0);
             SsdInputs in = SsdInputs.sequence(random, DType.BF16, 1, 5, 2, 4, 1, 8, true, true, true, false);
             SsdInputs dev = in.copyTo(gpu);
             Tensor y = gpu.allocate(DType.BF16, 1, 5, 2, 4)) {
            illegalArgument("x", () -> Ssd.scan(gpu, y, null, in.x(), dev.dt(), dev.b(), dev.c(), dev.weights(), null));
            illegalArgument("a", () -> Ssd.scan(gpu, y, null, dev.x(), dev.dt(), dev.b(), dev.c(), in.weights(), null));
        }
    }
}
