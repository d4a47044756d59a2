package dev.isthmus.scan;

import static dev.isthmus.testing.DeviceAssert.assertClose;
import static dev.isthmus.scan.SelectiveScanTest.assertAllFinite;
import static dev.isthmus.scan.SelectiveScanTest.ints;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The CUDA selective scan and state update against the CPU reference: fresh random inputs of
 * awkward shapes (L of 1, 2, odd, around and across chunks; N of 1, 3, 5, 16, 17, 33, 256), every option on
 * and off, f32/f16/bf16, outputs poisoned with NaN before each launch.
 */
class SelectiveScanGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};
    // batch, channels, length, groups, nstate
    private static final int[][] SHAPES = {
        {1, 1, 1, 1, 1}, {2, 3, 2, 1, 16}, {1, 4, 7, 2, 17}, {3, 5, 33, 5, 4}, {2, 6, 256, 3, 16},
        {1, 2, 1023, 1, 16}, {1, 3, 2051, 3, 8}, {2, 2, 3000, 1, 16}, {1, 2, 77, 1, 256},
        // around the chunk (a power of two, 8..64 steps) and the 8-step stage runs; a group wider
        // than a block's channels; N not a multiple of the 4 states a thread carries
        {1, 2, 8, 1, 16}, {2, 3, 63, 1, 5}, {1, 2, 64, 1, 3}, {1, 40, 65, 2, 16}, {1, 3, 4097, 1, 33}};
    /** The fp32 state after up to thousands of approximate exponentials. */
    private static final double STATE_BOUND = 1e-4;

    @GpuTest
    void scanMatchesTheReferenceOnAwkwardShapes() {
        Random random = new Random(31);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : SHAPES)
                    for (int options = 0; options < 4; options++) {
                        boolean on = options % 2 == 1, initial = options >= 2;
                        try (ScanInputs in = ScanInputs.sequence(random, dtype, s[0], s[1], s[2], s[3], s[4], on, on, !on, on);
                             Tensor h0 = initial ? RandomTensors.normal(random, DType.F32, 1f, s[0], s[1], s[4]) : null) {
                            checkScan(gpu, in, h0, null, dtype.label() + " " + java.util.Arrays.toString(s) + " options " + options);
                        }
                    }
        }
    }

    @GpuTest
    void packedScanMatchesTheReference() {
        Random random = new Random(32);
        int[][] startSets = {{0, 1}, {0, 3, 3, 10, 11, 40}, {0, 1000, 1001, 2500, 2501}, {0, 8, 16, 24, 2000},
            {0, 5, 37, 100, 131}, {0, 64, 65, 129, 130}}; // sequences crossing and ending on chunk boundaries
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] starts : startSets) {
                    int length = starts[starts.length - 1], sequences = starts.length - 1;
                    try (ScanInputs in = ScanInputs.sequence(random, dtype, 1, 3, length, 1, 16, true, true, true, true);
                         Tensor h0 = RandomTensors.normal(random, DType.F32, 1f, sequences, 3, 16);
                         Tensor seqStarts = ints(starts)) {
                        checkScan(gpu, in, h0, seqStarts, dtype.label() + " packed " + java.util.Arrays.toString(starts));
                        checkScan(gpu, in, null, seqStarts, dtype.label() + " packed, no initial state " + java.util.Arrays.toString(starts));
                    }
                }
        }
    }

    @GpuTest
    void misalignedViewsTakeTheScalarPath() {
        // u one element into its storage is not 16-byte aligned: the launcher must fall back to
        // element-wise loads instead of faulting or reading wrong data.
        Random random = new Random(33);
        int batch = 2, channels = 3, length = 64, nstate = 16;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS) {
                long n = (long) batch * channels * length;
                try (ScanInputs in = ScanInputs.sequence(random, dtype, batch, channels, length, 1, nstate, true, true, true, true);
                     ScanInputs dev = in.copyTo(gpu);
                     Tensor backing = gpu.allocate(dtype, n + 1);
                     Tensor y = gpu.allocate(dtype, batch, channels, length);
                     Tensor expected = Tensor.allocateHost(dtype, batch, channels, length)) {
                    Tensor u = backing.slice(0, 1, n + 1).reshape(batch, channels, length);
                    gpu.copy(u, in.u());
                    gpu.poison(y);
                    SelectiveScan.scan(Backend.cpu(), expected, null, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), null);
                    SelectiveScan.scan(gpu, y, null, u, dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights(), null);
                    assertClose(dtype + " misaligned", gpu, y, expected, Compare.boundFor(dtype));
                }
            }
        }
    }

    @GpuTest
    void extremeValuesStayFinite() {
        Random random = new Random(34);
        int channels = 4, length = 300, nstate = 3;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS) {
                try (ScanInputs in = ScanInputs.sequence(random, dtype, 1, channels, length, 1, nstate, true, true, true, true);
                     ScanInputs dev = in.copyTo(gpu);
                     Tensor bigDelta = gpu.copyOf(RandomTensors.uniform(random, dtype, 1e3f, 1e4f, 1, channels, length));
                     Tensor a = gpu.copyOf(Tensor.fromFloats(DType.F32, new float[] {-1e-7f, -1e-30f, -1e4f, -0f, -1e-6f, -3e38f,
                             -1e-7f, -1e-30f, -1e4f, -0.5f, -1e-6f, -3e38f}, channels, nstate));
                     Tensor y = gpu.allocate(dtype, 1, channels, length);
                     Tensor last = gpu.allocate(DType.F32, 1, channels, nstate)) {
                    gpu.poison(y);
                    gpu.poison(last);
                    SelectiveScan.scan(gpu, y, last, dev.u(), bigDelta, dev.z(), dev.b(), dev.c(),
                            new ScanWeights(a, dev.d(), dev.deltaBias(), true), null);
                    try (Tensor hy = gpu.toHost(y); Tensor hl = gpu.toHost(last)) {
                        if (dtype != DType.F16) assertAllFinite(hy.toFloatArray(), dtype + " y"); // |y| ~ 1e6 overflows f16
                        assertAllFinite(hl.toFloatArray(), dtype + " final state");
                    }
                }
            }
        }
    }

    @GpuTest
    void stepMatchesTheReferenceWithSlotsAndPadding() {
        Random random = new Random(35);
        // batch, channels, groups, nstate
        // A thread carries up to 16 states, 4 at a time where N % 4 == 0: N of 2, 20 (two lanes, the
        // second with one vector), 33 and 48 (four lanes, the last with none or one state) beside
        // 16, 17 and 256; channels across blocks of 128 and groups of them (200 in 4 groups)
        int[][] shapes = {{1, 1, 1, 1}, {3, 5, 5, 16}, {4, 64, 2, 17}, {64, 130, 1, 16}, {2, 7, 7, 256},
                          {7, 3, 1, 2}, {3, 200, 4, 20}, {5, 33, 3, 33}, {2, 129, 1, 48}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : shapes)
                    for (boolean slotted : new boolean[] {false, true}) {
                        int batch = s[0], pool = slotted ? batch + 3 : batch;
                        int[] slots = new int[batch];
                        for (int r = 0; r < batch; r++) slots[r] = slotted ? (r % 3 == 1 ? -1 : pool - 1 - r) : r;
                        boolean on = slotted;
                        try (ScanInputs in = ScanInputs.token(random, dtype, batch, s[1], s[2], s[3], on, on, on, !on);
                             ScanInputs dev = in.copyTo(gpu);
                             Tensor state = RandomTensors.normal(random, DType.F32, 1f, pool, s[1], s[3]);
                             Tensor devState = gpu.copyOf(state);
                             Tensor slotTensor = slotted ? ints(slots) : null;
                             Tensor devSlots = slotted ? gpu.copyOf(slotTensor) : null;
                             Tensor expected = Tensor.allocateHost(dtype, batch, s[1]);
                             Tensor y = gpu.allocate(dtype, batch, s[1])) {
                            gpu.poison(y);
                            String what = dtype + " step " + java.util.Arrays.toString(s) + (slotted ? " slotted" : "");
                            SelectiveScan.step(Backend.cpu(), expected, state, slotTensor, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights());
                            SelectiveScan.step(gpu, y, devState, devSlots, dev.u(), dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights());
                            assertClose(what + " y", gpu, y, expected, Compare.boundFor(dtype));
                            assertClose(what + " state", gpu, devState, state, STATE_BOUND);
                        }
                    }
        }
    }

    /** More rows than the grid's 65,535 rows of blocks: the blocks loop over the rows past them. */
    @GpuTest
    void stepOverMoreRowsThanTheGridHolds() {
        Random random = new Random(37);
        int batch = 65_541, channels = 3, groups = 1, nstate = 4;
        try (CudaBackend gpu = Backend.cuda(0);
             ScanInputs in = ScanInputs.token(random, DType.F32, batch, channels, groups, nstate, true, true, true, true);
             ScanInputs dev = in.copyTo(gpu);
             Tensor state = RandomTensors.normal(random, DType.F32, 1f, batch, channels, nstate);
             Tensor devState = gpu.copyOf(state);
             Tensor expected = Tensor.allocateHost(DType.F32, batch, channels);
             Tensor y = gpu.allocate(DType.F32, batch, channels)) {
            gpu.poison(y);
            SelectiveScan.step(Backend.cpu(), expected, state, null, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights());
            SelectiveScan.step(gpu, y, devState, null, dev.u(), dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights());
            assertClose("step over " + batch + " rows y", gpu, y, expected, Compare.boundFor(DType.F32));
            assertClose("step over " + batch + " rows state", gpu, devState, state, STATE_BOUND);
        }
    }

    /**
     * Slots on the device are not checked in Java; one that an earlier row also names is left to
     * the earliest such row: the later rows' y is NaN and their state update is skipped, so the
     * result is the reference's with those rows as padding. Shapes put one row in many warps
     * (channels 130) and many rows in one warp (channels 1, N 4: a lane per row).
     */
    @GpuTest
    void aRepeatedDeviceSlotIsLeftToItsFirstRow() {
        Random random = new Random(36);
        int[][] shapes = {{40, 1, 1, 4}, {9, 130, 2, 16}}; // batch, channels, groups, nstate
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (int[] s : shapes) {
                int batch = s[0], pool = batch + 2, channels = s[1];
                int[] slots = new int[batch], firstOnly = new int[batch];
                for (int r = 0; r < batch; r++) slots[r] = r % 8 == 3 ? r - 1 : r % 8 == 7 ? r - 6 : r; // rows 3, 11, ... repeat the row before; 7, 15, ... six rows before
                boolean[] seen = new boolean[pool];
                for (int r = 0; r < batch; r++) {
                    firstOnly[r] = seen[slots[r]] ? -1 : slots[r];
                    seen[slots[r]] = true;
                }
                try (ScanInputs in = ScanInputs.token(random, DType.F32, batch, channels, s[2], s[3], true, true, true, false);
                     ScanInputs dev = in.copyTo(gpu);
                     Tensor state = RandomTensors.normal(random, DType.F32, 1f, pool, channels, s[3]);
                     Tensor devState = gpu.copyOf(state);
                     Tensor devSlots = gpu.copyOf(ints(slots));
                     Tensor hostFirstOnly = ints(firstOnly);
                     Tensor expected = Tensor.allocateHost(DType.F32, batch, channels);
                     Tensor y = gpu.allocate(DType.F32, batch, channels)) {
                    gpu.poison(y);
                    String what = "repeated slots " + java.util.Arrays.toString(s);
                    SelectiveScan.step(Backend.cpu(), expected, state, hostFirstOnly, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights());
                    SelectiveScan.step(gpu, y, devState, devSlots, dev.u(), dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights());
                    assertClose(what + " state", gpu, devState, state, STATE_BOUND);
                    float[] got;
                    try (Tensor host = gpu.toHost(y)) {
                        got = host.toFloatArray();
                    }
                    for (int r = 0; r < batch; r++)
                        for (int ch = 0; ch < channels; ch++) {
                            float v = got[r * channels + ch];
                            if (firstOnly[r] < 0 && !Float.isNaN(v))
                                throw new AssertionError(what + ": row " + r + " repeats slot " + slots[r] + " but its y is " + v);
                            if (firstOnly[r] < 0) got[r * channels + ch] = 0f; // as the reference's padding row
                        }
                    try (Tensor gotRows = Tensor.fromFloats(DType.F32, got, batch, channels)) {
                        assertClose(what + " y", Backend.cpu(), gotRows, expected, Compare.boundFor(DType.F32));
                    }
                }
            }
        }
    }

    /** Runs the scan on the CPU and the GPU (outputs poisoned) and compares y and the final state. */
    private static void checkScan(CudaBackend gpu, ScanInputs in, Tensor h0, Tensor seqStarts, String what) {
        long[] shape = in.u().shape();
        long rows = seqStarts == null ? shape[0] : seqStarts.dim(0) - 1, nstate = in.b().dim(2);
        DType dtype = in.dtype();
        try (ScanInputs dev = in.copyTo(gpu);
             Tensor devH0 = h0 == null ? null : gpu.copyOf(h0);
             Tensor devStarts = seqStarts == null ? null : gpu.copyOf(seqStarts);
             Tensor expected = Tensor.allocateHost(dtype, shape);
             Tensor expectedLast = Tensor.allocateHost(DType.F32, rows, shape[1], nstate);
             Tensor y = gpu.allocate(dtype, shape);
             Tensor last = gpu.allocate(DType.F32, rows, shape[1], nstate)) {
            gpu.poison(y);
            gpu.poison(last);
            if (seqStarts == null) {
                SelectiveScan.scan(Backend.cpu(), expected, expectedLast, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), h0);
                SelectiveScan.scan(gpu, y, last, dev.u(), dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights(), devH0);
            } else {
                SelectiveScan.scanPacked(Backend.cpu(), expected, expectedLast, in.u(), in.delta(), in.z(), in.b(), in.c(), in.weights(), seqStarts, h0);
                SelectiveScan.scanPacked(gpu, y, last, dev.u(), dev.delta(), dev.z(), dev.b(), dev.c(), dev.weights(), devStarts, devH0);
            }
            assertClose(what + " y", gpu, y, expected, Compare.boundFor(dtype));
            assertClose(what + " final state", gpu, last, expectedLast, STATE_BOUND);
        }
    }
}
