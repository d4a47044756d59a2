package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import dev.isthmus.testing.RequiresGpu;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;

/** GEMM on CUDA against the CPU reference, or the clear refusal where JCublas cannot load. */
class GemmGpuTest {

    @GpuTest
    void matchesTheReferenceOrRefusesClearly() {
        RequiresGpu.assumeRealGpu("cuBLAS");
        try (CudaBackend gpu = Backend.cuda(0);
             Tensor a = gpu.allocate(DType.F32, 2, 2); Tensor c = gpu.allocate(DType.F32, 2, 2)) {
            if (!Gemm.cudaPath().startsWith("cublas")) {
                UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                        () -> Gemm.matmul(gpu, c, a, a, 1f, 0f));
                assertTrue(e.getMessage().contains("libcublas"), e.getMessage());
                Assumptions.abort("JCublas cannot load here: " + Gemm.cudaPath());
            }
        }
        Random random = new Random(21);
        int[][] shapes = {{1, 1, 1}, {1, 4096, 17}, {33, 65, 127}, {300, 7, 513}};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16})
                for (int[] s : shapes)
                    for (boolean transposeB : new boolean[] {false, true}) {
                        int m = s[0], n = s[1], k = s[2];
                        try (Tensor a = RandomTensors.normal(random, dtype, 1f, m, k);
                             Tensor b = RandomTensors.normal(random, dtype, 1f, transposeB ? n : k, transposeB ? k : n);
                             Tensor expected = Tensor.allocateHost(DType.F32, m, n);
                             Tensor da = gpu.copyOf(a); Tensor db = gpu.copyOf(b);
                             Tensor dc = gpu.allocate(DType.F32, m, n)) {
                            gpu.poison(dc);
                            Gemm.gemm(Backend.cpu(), expected, a, false, b, transposeB, 1f, 0f);
                            Gemm.gemm(gpu, dc, da, false, db, transposeB, 1f, 0f);
                            try (Tensor actual = gpu.toHost(dc)) {
                                // f32 output of low-precision inputs: only accumulation order differs.
                                Compare.Result r = Compare.check(dtype.label() + " " + m + "x" + n + "x" + k, actual, expected,
                                        dtype == DType.F32 ? 1e-5 : 1e-4);
                                assertTrue(r.withinBound(), r.toString());
                            }
                        }
                    }
        }
    }
}
