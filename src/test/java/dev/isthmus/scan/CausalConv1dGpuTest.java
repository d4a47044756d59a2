package dev.isthmus.scan;


import static dev.isthmus.testing.DeviceAssert.assertClose;
import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/** The CUDA causal conv1d and its one-token update against the CPU reference, outputs poisoned. */
class CausalConv1dGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};
    // batch, channels, length
    private static final int[][] SHAPES = {{1, 1, 1}, {2, 3, 2}, {3, 5, 7}, {2, 33, 1000}, {1, 130, 257}};
    // batch, channels: one partial block of channels, several, and a partial one after whole ones
    private static final int[][] UPDATE_SHAPES = {{1, 1}, {2, 3}, {3, 5}, {2, 33}, {1, 130}, {2, 256}, {3, 600}};
    // The sequence kernel gives each thread 8 consecutive steps: lengths around a tile, a row of
    // f32 tiles that ends in half a tile (12), and one past a block of 128 tiles (4097).
    private static final int[] TILE_EDGES = {1, 7, 8, 9, 12, 16, 4097};

    @GpuTest
    void sequenceMatchesTheReference() {
        Random random = new Random(51);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : SHAPES)
                    for (int width : new int[] {1, 2, 4, 5, 8})
                        for (boolean on : new boolean[] {false, true}) {
                            int batch = s[0], channels = s[1], length = s[2];
                            String what = dtype + " conv " + java.util.Arrays.toString(s) + " width " + width + (on ? " bias+silu+state" : "");
                            checkSequence(gpu, random, dtype, batch, channels, length, width, on, false, what);
                        }
        }
    }

    @GpuTest
    void updateMatchesTheReference() {
        Random random = new Random(52);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : UPDATE_SHAPES)
                    for (int width = 1; width <= 8; width++) {
                        int batch = s[0], channels = s[1];
                        String what = dtype + " conv update " + batch + "x" + channels + " width " + width;
                        try (Tensor x = RandomTensors.normal(random, dtype, 1f, batch, channels);
                             Tensor w = RandomTensors.normal(random, dtype, 0.5f, channels, width);
                             Tensor bias = RandomTensors.normal(random, dtype, 1f, channels);
                             Tensor state = RandomTensors.normal(random, dtype, 1f, batch, channels, width - 1);
                             Tensor expected = Tensor.allocateHost(dtype, batch, channels);
                             Tensor dx = gpu.copyOf(x); Tensor dw = gpu.copyOf(w); Tensor db = gpu.copyOf(bias);
                             Tensor dState = gpu.copyOf(state);
                             Tensor out = gpu.allocate(dtype, batch, channels)) {
                            gpu.poison(out);
                            CausalConv1d.update(Backend.cpu(), expected, width == 1 ? null : state, x, w, bias, true);
                            CausalConv1d.update(gpu, out, width == 1 ? null : dState, dx, dw, db, true);
                            assertClose(what, gpu, out, expected, Compare.boundFor(dtype));
                            assertClose(what + " state", gpu, dState, state, 0);
                            CausalConv1d.update(gpu, dx, width == 1 ? null : dState, dx, dw, db, false); // out = x in place
                        }
                    }
        }
    }

    @GpuTest
    void everyWidthAtTheTileEdges() {
        Random random = new Random(53);
        int batch = 2, channels = 3;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int length : TILE_EDGES)
                    for (int width = 1; width <= 8; width++)
                        for (boolean on : new boolean[] {false, true}) {
                            String what = dtype + " conv length " + length + " width " + width + (on ? " bias+silu+state in place" : "");
                            checkSequence(gpu, random, dtype, batch, channels, length, width, on, on, what);
                        }
        }
    }

    @GpuTest
    void misalignedViewsTakeTheScalarPath() {
        // x or out one element into its storage is not 16-byte aligned: the launcher must fall
        // back to element-wise loads and stores instead of faulting or reading wrong data.
        Random random = new Random(54);
        int batch = 2, channels = 3, width = 4;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int length : new int[] {64, 4097})
                    for (int shifted = 1; shifted <= 3; shifted++) {
                        boolean shiftX = (shifted & 1) != 0, shiftOut = (shifted & 2) != 0;
                        String what = dtype + " misaligned conv length " + length + (shiftX ? " x" : "") + (shiftOut ? " out" : "");
                        long n = (long) batch * channels * length;
                        try (Tensor x = RandomTensors.normal(random, dtype, 1f, batch, channels, length);
                             Tensor w = RandomTensors.normal(random, dtype, 0.5f, channels, width);
                             Tensor bias = RandomTensors.normal(random, dtype, 1f, channels);
                             Tensor history = RandomTensors.normal(random, dtype, 1f, batch, channels, width - 1);
                             Tensor expected = Tensor.allocateHost(dtype, batch, channels, length);
                             Tensor dw = gpu.copyOf(w); Tensor db = gpu.copyOf(bias); Tensor dh = gpu.copyOf(history);
                             Tensor xBacking = gpu.allocate(dtype, n + 1);
                             Tensor outBacking = gpu.allocate(dtype, n + 1)) {
                            Tensor dx = xBacking.slice(0, shiftX ? 1 : 0, shiftX ? n + 1 : n).reshape(batch, channels, length);
                            Tensor out = outBacking.slice(0, shiftOut ? 1 : 0, shiftOut ? n + 1 : n).reshape(batch, channels, length);
                            gpu.copy(dx, x);
                            gpu.poison(outBacking);
                            CausalConv1d.apply(Backend.cpu(), expected, null, x, w, bias, history, true);
                            CausalConv1d.apply(gpu, out, null, dx, dw, db, dh, true);
                            assertClose(what, gpu, out, expected, Compare.boundFor(dtype));
                        }
                    }
        }
    }

    @GpuTest
    void gridsBeyondTheLaunchLimitStride() {
        // The kernels put channels and batch rows on the grid's y and z axes, at most 65535 each;
        // the rows beyond are taken by striding, the update's shared memory reused across them.
        Random random = new Random(55);
        int width = 3, length = 9, many = 65_537;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (int[] s : new int[][] {{1, many}, {many, 1}}) {
                int batch = s[0], channels = s[1];
                DType dtype = DType.BF16;
                String what = "conv " + batch + "x" + channels;
                try (Tensor x = RandomTensors.normal(random, dtype, 1f, batch, channels, length);
                     Tensor w = RandomTensors.normal(random, dtype, 0.5f, channels, width);
                     Tensor bias = RandomTensors.normal(random, dtype, 1f, channels);
                     Tensor state = RandomTensors.normal(random, dtype, 1f, batch, channels, width - 1);
                     Tensor expected = Tensor.allocateHost(dtype, batch, channels, length);
                     Tensor expectedLast = Tensor.allocateHost(dtype, batch, channels, width - 1);
                     Tensor token = RandomTensors.normal(random, dtype, 1f, batch, channels);
                     Tensor expectedToken = Tensor.allocateHost(dtype, batch, channels);
                     Tensor dx = gpu.copyOf(x); Tensor dw = gpu.copyOf(w); Tensor db = gpu.copyOf(bias);
                     Tensor dState = gpu.copyOf(state); Tensor dToken = gpu.copyOf(token);
                     Tensor out = gpu.allocate(dtype, batch, channels, length);
                     Tensor outToken = gpu.allocate(dtype, batch, channels)) {
                    gpu.poison(out);
                    gpu.poison(outToken);
                    CausalConv1d.apply(Backend.cpu(), expected, expectedLast, x, w, bias, state, true);
                    CausalConv1d.apply(gpu, out, dState, dx, dw, db, dState, true);
                    assertClose(what, gpu, out, expected, Compare.boundFor(dtype));
                    assertClose(what + " final state", gpu, dState, expectedLast, 0);
                    CausalConv1d.update(Backend.cpu(), expectedToken, expectedLast, token, w, bias, true);
                    CausalConv1d.update(gpu, outToken, dState, dToken, dw, db, true);
                    assertClose(what + " update", gpu, outToken, expectedToken, Compare.boundFor(dtype));
                    assertClose(what + " update state", gpu, dState, expectedLast, 0);
                }
            }
        }
    }

    /**
     * One sequence conv on fresh random inputs, GPU against the CPU reference, outputs poisoned
     * first; {@code on} adds bias, SiLU and an initial state, and {@code stateInPlace} has the
     * final state overwrite the initial one it is read from.
     */
    private static void checkSequence(CudaBackend gpu, Random random, DType dtype, int batch, int channels, int length, int width,
                                      boolean on, boolean stateInPlace, String what) {
        try (Tensor x = RandomTensors.normal(random, dtype, 1f, batch, channels, length);
             Tensor w = RandomTensors.normal(random, dtype, 0.5f, channels, width);
             Tensor bias = RandomTensors.normal(random, dtype, 1f, channels);
             Tensor history = RandomTensors.normal(random, dtype, 1f, batch, channels, width - 1);
             Tensor expected = Tensor.allocateHost(dtype, batch, channels, length);
             Tensor expectedLast = Tensor.allocateHost(dtype, batch, channels, width - 1);
             Tensor dx = gpu.copyOf(x); Tensor dw = gpu.copyOf(w); Tensor db = gpu.copyOf(bias);
             Tensor dh = gpu.copyOf(history);
             Tensor out = gpu.allocate(dtype, batch, channels, length);
             Tensor last = gpu.allocate(dtype, batch, channels, width - 1)) {
            gpu.poison(out);
            gpu.poison(last);
            CausalConv1d.apply(Backend.cpu(), expected, expectedLast, x, w, on ? bias : null, on ? history : null, on);
            Tensor finalState = stateInPlace ? dh : last;
            CausalConv1d.apply(gpu, out, finalState, dx, dw, on ? db : null, on ? dh : null, on);
            assertClose(what, gpu, out, expected, Compare.boundFor(dtype));
            assertClose(what + " final state", gpu, finalState, expectedLast, 0);
        }
    }
}
