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
                                CausalConv1d.apply(gpu, out, last, dx, dw, on ? db : null, on ? dh : null, on);
                                assertClose(what, gpu, out, expected, Compare.boundFor(dtype));
                                assertClose(what + " final state", gpu, last, expectedLast, 0);
                            }
                        }
        }
    }

    @GpuTest
    void updateMatchesTheReference() {
        Random random = new Random(52);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] s : SHAPES)
                    for (int width : new int[] {1, 3, 4, 8}) {
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
}
