package dev.isthmus.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * A captured graph runs its work only when launched, with the capture's pointers: inputs
 * refreshed in place between launches give fresh outputs, the same as a direct launch. Work a
 * graph cannot hold is refused during the capture, and the stream is usable afterwards.
 */
class CudaGraphGpuTest {
    @GpuTest
    void replaysReadInputsRefreshedInPlace() {
        Random random = new Random(3);
        int rows = 5, cols = 333;
        try (CudaBackend gpu = Backend.cuda(0);
             Tensor x = gpu.allocate(DType.BF16, rows, cols); Tensor out = gpu.allocate(DType.BF16, rows, cols);
             Tensor direct = gpu.allocate(DType.BF16, rows, cols); Tensor hostWeight = RandomTensors.normal(random, DType.BF16, 1f, cols);
             Tensor weight = gpu.copyOf(hostWeight)) {
            gpu.poison(out);
            try (CudaGraph graph = CudaGraph.capture(gpu.stream(), () -> RmsNorm.apply(gpu, out, x, weight, 1e-5f))) {
                for (float v : floats(gpu, out)) assertTrue(Float.isNaN(v), "the capture ran nothing");
                for (int replay = 0; replay < 3; replay++) {
                    try (Tensor input = RandomTensors.normal(random, DType.BF16, 2f, rows, cols)) {
                        gpu.copy(x, input);
                    }
                    gpu.poison(out);
                    graph.launch();
                    RmsNorm.apply(gpu, direct, x, weight, 1e-5f);
                    assertArrayEquals(floats(gpu, direct), floats(gpu, out), "replay " + replay);
                }
            }
        }
    }

    private static float[] floats(CudaBackend gpu, Tensor t) {
        try (Tensor host = gpu.toHost(t)) {
            return host.toFloatArray();
        }
    }

    @GpuTest
    void workAGraphCannotHoldIsRefusedAndTheCaptureDiscarded() {
        try (CudaBackend gpu = Backend.cuda(0); Tensor a = gpu.allocate(DType.F32, 4); Tensor host = Tensor.allocateHost(DType.F32, 4)) {
            assertThrows(IllegalStateException.class, () -> CudaGraph.capture(gpu.stream(), () -> gpu.copy(a, host)));
            assertThrows(IllegalStateException.class, () -> CudaGraph.capture(gpu.stream(), gpu::synchronize));
            assertThrows(IllegalStateException.class,
                    () -> CudaGraph.capture(gpu.stream(), () -> CudaGraph.capture(gpu.stream(), () -> {}).close()));
            assertFalse(CudaGraph.capturing());
            gpu.copy(a, host); // the stream is not left capturing
            gpu.synchronize();
        }
    }
}
