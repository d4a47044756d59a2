package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import dev.isthmus.testing.RequiresGpu;
import java.util.Random;

/**
 * GEMM on CUDA against the CPU reference: the path Gemm picks here (cuBLAS or the project's own
 * kernel) and the own kernel explicitly, over transposes, alpha/beta and both output dtypes; and
 * cuBLAS, however it is bound, at sizes on both sides of every tile edge. The own kernel's two
 * engines: the tile engine (f16/bf16, K a multiple of 8; m or n too where that side is the
 * contiguous one) at row counts around its 128-row tile and K around its 64-deep stage, and the
 * exact kernel (f32, odd K, unaligned views).
 */
class GemmGpuTest {
    private static final int[][] SHAPES = {{1, 1, 1}, {1, 4096, 17}, {33, 65, 127}, {300, 7, 513}, {64, 64, 64}};
    private static final int[][] TILE_EDGES = {{15, 17, 16}, {16, 129, 127}, {127, 1, 129}, {128, 127, 15}, {129, 128, 1}};
    // (m, n, k): m of 1, 15, 16, 17, 127, 128, 129 rows (m = 136, 8 and 1032 are whole chunks, so
    // A^T takes the tile engine too), n and k multiples of 8 but not of the 128 x 128 x 64 tile;
    // from 1024 rows on the tile is 128 x 256.
    private static final int[][] TILE_ENGINE = {{1, 136, 72}, {15, 8, 200}, {16, 264, 64}, {17, 128, 8}, {127, 40, 136},
        {128, 128, 128}, {129, 136, 72}, {136, 24, 200}, {8, 16, 320}, {1030, 264, 72}, {1032, 24, 16}};

    @GpuTest
    void thePathInUseMatchesTheReference() {
        check(false, SHAPES, 21);
    }

    @GpuTest
    void theOwnKernelMatchesTheReference() {
        check(true, SHAPES, 22);
    }

    @GpuTest
    void theOwnKernelMatchesTheReferenceAroundItsTiles() {
        check(true, TILE_ENGINE, 24);
    }

    /**
     * Operands starting one element into their buffers take the exact kernel. The buffers hold two
     * spare elements, so the views are off 16 bytes whether an allocation starts aligned (a GPU) or
     * ends against a guard page (the host emulation).
     */
    @GpuTest
    void theOwnKernelTakesUnalignedViews() {
        Random random = new Random(25);
        int m = 24, n = 40, k = 16;
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F16, DType.BF16})
                for (int transposes = 0; transposes < 4; transposes++) {
                    boolean ta = (transposes & 1) != 0, tb = (transposes & 2) != 0;
                    try (Tensor a = RandomTensors.normal(random, dtype, 1f, ta ? k : m, ta ? m : k);
                         Tensor b = RandomTensors.normal(random, dtype, 1f, tb ? n : k, tb ? k : n);
                         Tensor expected = Tensor.allocateHost(DType.F32, m, n);
                         Tensor aBuffer = gpu.allocate(dtype, 2 + (long) m * k); Tensor bBuffer = gpu.allocate(dtype, 2 + (long) k * n);
                         Tensor dc = gpu.allocate(DType.F32, m, n)) {
                        Tensor da = aBuffer.slice(0, 1, 1 + (long) m * k).reshape(a.shape());
                        Tensor db = bBuffer.slice(0, 1, 1 + (long) k * n).reshape(b.shape());
                        gpu.copy(da, a);
                        gpu.copy(db, b);
                        gpu.poison(dc);
                        Gemm.gemm(Backend.cpu(), expected, a, ta, b, tb, 1f, 0f);
                        Gemm.gemmOwnKernel(gpu, dc, da, ta, db, tb, 1f, 0f);
                        try (Tensor actual = gpu.toHost(dc)) {
                            Compare.Result r = Compare.check(dtype.label() + " unaligned" + (ta ? " A^T" : "") + (tb ? " B^T" : ""),
                                    actual, expected, 1e-4);
                            assertTrue(r.withinBound(), "own kernel: " + r);
                        }
                    }
                }
        }
    }

    @GpuTest
    void cublasMatchesTheReferenceAtTileEdges() {
        RequiresGpu.assumeRealGpu("cuBLAS");
        assumeTrue(GemmCublas.available(), "no cuBLAS here: " + GemmCublas.availability());
        check(false, TILE_EDGES, 23);
    }

    private static void check(boolean ownKernel, int[][] shapes, long seed) {
        Random random = new Random(seed);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16})
                for (int[] s : shapes)
                    for (int transposes = 0; transposes < 4; transposes++) {
                        boolean ta = (transposes & 1) != 0, tb = (transposes & 2) != 0;
                        int m = s[0], n = s[1], k = s[2];
                        float beta = transposes == 3 ? 0.5f : 0f;
                        DType out = transposes == 1 ? dtype : DType.F32;
                        try (Tensor a = RandomTensors.normal(random, dtype, 1f, ta ? k : m, ta ? m : k);
                             Tensor b = RandomTensors.normal(random, dtype, 1f, tb ? n : k, tb ? k : n);
                             Tensor c0 = RandomTensors.normal(random, out, 1f, m, n);
                             Tensor expected = Tensor.fromFloats(out, c0.toFloatArray(), m, n);
                             Tensor da = gpu.copyOf(a); Tensor db = gpu.copyOf(b);
                             Tensor dc = gpu.allocate(out, m, n)) {
                            if (beta != 0) gpu.copy(dc, c0);
                            else gpu.poison(dc);
                            Gemm.gemm(Backend.cpu(), expected, a, ta, b, tb, 1.5f, beta);
                            if (ownKernel) Gemm.gemmOwnKernel(gpu, dc, da, ta, db, tb, 1.5f, beta);
                            else Gemm.gemm(gpu, dc, da, ta, db, tb, 1.5f, beta);
                            try (Tensor actual = gpu.toHost(dc)) {
                                // An f32 output of low-precision inputs differs only by accumulation order.
                                double bound = out != DType.F32 ? Compare.boundFor(out) : dtype == DType.F32 ? 1e-5 : 1e-4;
                                Compare.Result r = Compare.check(dtype.label() + "->" + out.label() + " " + m + "x" + n + "x" + k
                                        + (ta ? " A^T" : "") + (tb ? " B^T" : "") + " beta " + beta, actual, expected, bound);
                                assertTrue(r.withinBound(), (ownKernel ? "own kernel: " : Gemm.cudaPath() + ": ") + r);
                            }
                        }
                    }
        }
    }
}
