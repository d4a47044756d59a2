package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaGraph;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The own kernel's split-K (decode-sized products given a {@link GemmWorkspace}) against the CPU
 * reference: row counts on both sides of the decode tile's 16-row slices and of its 64-row limit
 * (65 rows take the 128-row tile, unsplit), K not a whole number of 64-deep stages nor of the
 * splits, up to 11 splits of a tile, every transpose (A^T takes the tile engine where m is a
 * multiple of 8, else the exact kernel), beta reading C once. Split results repeat bit for bit,
 * directly and replayed from a CUDA graph (which needs the kernel to leave its counters at zero).
 * On the host emulation (one SM) the launcher aims at 16 blocks, so one or two column tiles split
 * 8 to 11 ways there; on a GPU it aims at two blocks an SM.
 */
class GemmSplitGpuTest {
    private static final int[] ROWS = {1, 2, 15, 16, 17, 63, 64, 65};

    @GpuTest
    void splitProductsMatchTheReferenceAtAwkwardRows() {
        Random random = new Random(41);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            for (int m : ROWS)
                for (int transposes = 0; transposes < 4; transposes++) {
                    DType dtype = transposes % 2 == 0 ? DType.BF16 : DType.F16;
                    // n = 72: two column tiles, the second 8 wide; k = 1000: 16 stages, the last 40 deep
                    check(gpu, ws, random, dtype, m, 72, 1000, (transposes & 1) != 0, (transposes & 2) != 0);
                }
        }
    }

    @GpuTest
    void manySplitsOfOneTileMatchTheReference() {
        Random random = new Random(42);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            // one column tile; k = 2056 is 33 stages (11 splits of 3), 520 is 9 (3 of 3), 136 is 3 (1 of 2, 1 of 1)
            for (int k : new int[] {2056, 520, 136})
                for (int m : new int[] {1, 17, 64})
                    check(gpu, ws, random, DType.BF16, m, 40, k, false, true);
        }
    }

    @GpuTest
    void splitProductsRepeatBitForBitDirectlyAndFromAGraph() {
        Random random = new Random(43);
        int m = 5, n = 72, k = 1096;
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu);
             Tensor a = RandomTensors.normal(random, DType.BF16, 1f, m, k);
             Tensor b = RandomTensors.normal(random, DType.BF16, 1f, n, k);
             Tensor expected = Tensor.allocateHost(DType.F32, m, n);
             Tensor da = gpu.copyOf(a); Tensor db = gpu.copyOf(b); Tensor dc = gpu.allocate(DType.F32, m, n)) {
            Gemm.gemm(Backend.cpu(), expected, a, false, b, true, 1f, 0f);
            gpu.poison(dc);
            Gemm.gemmOwnKernel(gpu, dc, da, false, db, true, 1f, 0f, ws);
            try (Tensor first = gpu.toHost(dc)) {
                assertTrue(Compare.check("split", first, expected, 1e-4).withinBound());
                gpu.poison(dc);
                Gemm.gemmOwnKernel(gpu, dc, da, false, db, true, 1f, 0f, ws);
                try (Tensor second = gpu.toHost(dc)) {
                    assertArrayEquals(first.toFloatArray(), second.toFloatArray(), "a second run differs");
                }
                try (CudaGraph graph = CudaGraph.capture(gpu.stream(), () -> Gemm.gemmOwnKernel(gpu, dc, da, false, db, true, 1f, 0f, ws))) {
                    for (int replay = 0; replay < 2; replay++) {
                        gpu.poison(dc);
                        graph.launch();
                        try (Tensor replayed = gpu.toHost(dc)) {
                            assertArrayEquals(first.toFloatArray(), replayed.toFloatArray(), "graph replay " + replay + " differs");
                        }
                    }
                }
            }
        }
    }

    @GpuTest
    void aClosedWorkspaceIsRefused() {
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu);
             Tensor a = gpu.allocate(DType.BF16, 1, 8); Tensor b = gpu.allocate(DType.BF16, 8, 8);
             Tensor c = gpu.allocate(DType.F32, 1, 8)) {
            ws.close();
            assertThrows(IllegalArgumentException.class, () -> Gemm.gemmOwnKernel(gpu, c, a, false, b, false, 1f, 0f, ws));
        }
    }

    private static void check(CudaBackend gpu, GemmWorkspace ws, Random random, DType dtype, int m, int n, int k, boolean ta,
                              boolean tb) {
        float beta = ta ? 0.5f : 0f;
        DType out = tb && !ta ? dtype : DType.F32;
        try (Tensor a = RandomTensors.normal(random, dtype, 1f, ta ? k : m, ta ? m : k);
             Tensor b = RandomTensors.normal(random, dtype, 1f, tb ? n : k, tb ? k : n);
             Tensor c0 = RandomTensors.normal(random, out, 1f, m, n);
             Tensor expected = Tensor.fromFloats(out, c0.toFloatArray(), m, n);
             Tensor da = gpu.copyOf(a); Tensor db = gpu.copyOf(b); Tensor dc = gpu.allocate(out, m, n)) {
            if (beta != 0) gpu.copy(dc, c0);
            else gpu.poison(dc);
            Gemm.gemm(Backend.cpu(), expected, a, ta, b, tb, 1.5f, beta);
            Gemm.gemmOwnKernel(gpu, dc, da, ta, db, tb, 1.5f, beta, ws);
            try (Tensor actual = gpu.toHost(dc)) {
                double bound = out != DType.F32 ? Compare.boundFor(out) : 1e-4;
                Compare.Result r = Compare.check(dtype.label() + "->" + out.label() + " " + m + "x" + n + "x" + k
                        + (ta ? " A^T" : "") + (tb ? " B^T" : "") + " beta " + beta, actual, expected, bound);
                assertTrue(r.withinBound(), "split own kernel: " + r);
            }
        }
    }
}
