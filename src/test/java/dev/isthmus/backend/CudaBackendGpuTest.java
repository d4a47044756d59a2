package dev.isthmus.backend;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import dev.isthmus.testing.RequiresGpu;
import java.util.Random;
import jcuda.driver.CUdeviceptr;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaStream_t;

/** Copies, poisoning and JCuda interop on a real device. */
class CudaBackendGpuTest {

    @GpuTest
    void copiesRoundTripAndPoisonWritesNaN() {
        Random random = new Random(31);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
                try (Tensor host = RandomTensors.normal(random, dtype, 1f, 3, 1001);
                     Tensor device = gpu.copyOf(host);
                     Tensor twin = gpu.copyOf(device);
                     Tensor back = gpu.toHost(twin)) {
                    assertArrayEquals(host.toFloatArray(), back.toFloatArray(), dtype.label());
                    gpu.poison(twin);
                    try (Tensor poisoned = gpu.toHost(twin)) {
                        for (float v : poisoned.toFloatArray()) assertTrue(Float.isNaN(v), dtype.label());
                    }
                }
            }
        }
    }

    @GpuTest
    void kernelsRunOnJCudaMemoryAndOnAnEnginesStream() {
        // An engine that already owns JCuda memory and a stream hands both in without copying.
        RequiresGpu.assumeRealGpu("JCuda memory and streams");
        Random random = new Random(32);
        int rows = 4, cols = 96;
        Cuda.setDevice(0);
        CUdeviceptr xMemory = new CUdeviceptr(), wMemory = new CUdeviceptr(), outMemory = new CUdeviceptr();
        cudaStream_t stream = new cudaStream_t();
        Cuda.check(JCuda.cudaMalloc(xMemory, rows * cols * 4L), "cudaMalloc");
        Cuda.check(JCuda.cudaMalloc(wMemory, cols * 4L), "cudaMalloc");
        Cuda.check(JCuda.cudaMalloc(outMemory, rows * cols * 4L), "cudaMalloc");
        Cuda.check(JCuda.cudaStreamCreate(stream), "cudaStreamCreate");
        try (CudaBackend gpu = CudaBackend.wrap(0, stream);
             Tensor x = RandomTensors.normal(random, DType.F32, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, DType.F32, 1f, cols);
             Tensor expected = Tensor.allocateHost(DType.F32, rows, cols);
             Tensor dx = JCudaInterop.wrap(xMemory, 0, DType.F32, rows, cols);
             Tensor dw = JCudaInterop.wrap(wMemory, 0, DType.F32, cols);
             Tensor out = JCudaInterop.wrap(outMemory, 0, DType.F32, rows, cols)) {
            assertEquals(JCudaInterop.address(xMemory), dx.address());
            assertEquals(JCudaInterop.handle(stream), gpu.stream().handle());
            gpu.copy(dx, x);
            gpu.copy(dw, w);
            gpu.poison(out);
            RmsNorm.apply(Backend.cpu(), expected, x, w, 1e-6f);
            RmsNorm.apply(gpu, out, dx, dw, 1e-6f);
            // Read back through plain JCuda, the engine's way.
            gpu.synchronize();
            float[] actual = new float[rows * cols];
            Cuda.check(JCuda.cudaMemcpy(jcuda.Pointer.to(actual), JCudaInterop.pointer(out), actual.length * 4L,
                    jcuda.runtime.cudaMemcpyKind.cudaMemcpyDeviceToHost), "cudaMemcpy");
            try (Tensor got = Tensor.fromFloats(DType.F32, actual, rows, cols)) {
                Compare.Result r = Compare.check("on JCuda memory", got, expected);
                assertTrue(r.withinBound(), r.toString());
            }
        } finally {
            // Borrowed: the tensors and the wrapped backend freed nothing; the owner frees it all.
            Cuda.check(JCuda.cudaFree(xMemory), "cudaFree");
            Cuda.check(JCuda.cudaFree(wMemory), "cudaFree");
            Cuda.check(JCuda.cudaFree(outMemory), "cudaFree");
            Cuda.check(JCuda.cudaStreamDestroy(stream), "cudaStreamDestroy");
        }
    }

    @GpuTest
    void badOrdinalAndClosedBackendAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Backend.cuda(Cuda.availability().deviceCount()));
        CudaBackend gpu = Backend.cuda(0);
        gpu.close();
        assertThrows(IllegalArgumentException.class, () -> gpu.allocate(DType.F32, 4));
    }
}
