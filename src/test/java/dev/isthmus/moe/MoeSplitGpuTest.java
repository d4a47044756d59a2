package dev.isthmus.moe;

import static dev.isthmus.testing.DeviceAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The expert GEMMs split over K (decode-sized: at most 64 routed pairs, given a
 * {@link GemmWorkspace}) against the CPU reference, with routings in which some experts receive no
 * pair, some one and one several: the gate+up GEMM split over a long H (1032: 17 stages, the last
 * 8 deep) with a narrow I, and the down GEMM over a long I with a narrow H, so that on the host
 * emulation (one SM, 16 blocks aimed at) the few tiles split 2 to 8 ways. A split result repeats
 * bit for bit.
 */
class MoeSplitGpuTest {
    private static final CpuBackend CPU = Backend.cpu();
    private static final int EXPERTS = 8;
    // ids (tokens x k): one token to experts 3 and 6; expert 0 taking two, 1 and 2 one each; expert 0
    // taking three, 5, 6 and 7 one each; the other experts nothing
    private static final long[][] ROUTINGS = {{3, 6}, {0, 1, 0, 2}, {0, 5, 0, 6, 0, 7}};

    @GpuTest
    void splitGateUpMatchesTheReference() {
        Random random = new Random(51);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            for (DType dtype : new DType[] {DType.BF16, DType.F16})
                for (long[] ids : ROUTINGS) check(gpu, ws, random, dtype, ids, 1032, 24);
        }
    }

    @GpuTest
    void splitDownMatchesTheReference() {
        Random random = new Random(52);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            for (DType dtype : new DType[] {DType.BF16, DType.F16})
                for (long[] ids : ROUTINGS) check(gpu, ws, random, dtype, ids, 40, 1032);
        }
    }

    private static void check(CudaBackend gpu, GemmWorkspace ws, Random random, DType dtype, long[] id, int h, int inter) {
        int k = 2, tokens = id.length / k, pairs = id.length;
        String what = dtype.label() + " T=" + tokens + " H=" + h + " I=" + inter;
        try (Tensor x = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor gateUp = RandomTensors.normal(random, dtype, (float) (1.5 / Math.sqrt(h)), EXPERTS, 2L * inter, h);
             Tensor down = RandomTensors.normal(random, dtype, (float) (1 / Math.sqrt(inter)), EXPERTS, h, inter);
             Tensor weights = RandomTensors.uniform(random, DType.F32, 0f, 1f, tokens, k);
             Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k);
             Dispatch.Buffers routing = Dispatch.Buffers.allocate(CPU, tokens, k, EXPERTS, ExpertGemm.TILE_M);
             Dispatch.Buffers dRouting = Dispatch.Buffers.allocate(gpu, tokens, k, EXPERTS, ExpertGemm.TILE_M);
             Tensor hidden = Tensor.allocateHost(dtype, pairs, inter);
             Tensor slots = Tensor.allocateHost(dtype, pairs, h);
             Tensor dx = gpu.copyOf(x); Tensor dGateUp = gpu.copyOf(gateUp); Tensor dDown = gpu.copyOf(down);
             Tensor dWeights = gpu.copyOf(weights); Tensor dids = gpu.copyOf(ids);
             Tensor dHidden = gpu.allocate(dtype, pairs, inter);
             Tensor dSlots = gpu.allocate(dtype, pairs, h)) {
            Dispatch.align(CPU, routing, ids);
            Dispatch.align(gpu, dRouting, dids);
            gpu.poison(dHidden);
            ExpertGemm.gateUp(CPU, hidden, x, gateUp, routing, k);
            Runnable gateUpRun = () -> ExpertGemm.gateUp(gpu, dHidden, dx, dGateUp, dRouting, k, ws);
            gateUpRun.run();
            assertClose(what + " gateUp", gpu, dHidden, hidden);
            assertRepeats(what + " gateUp", gpu, dHidden, gateUpRun);
            // The down GEMM from the reference's own input, so errors do not compound.
            gpu.copy(dHidden, hidden);
            gpu.poison(dSlots);
            ExpertGemm.down(CPU, slots, hidden, down, weights, routing);
            Runnable downRun = () -> ExpertGemm.down(gpu, dSlots, dHidden, dDown, dWeights, dRouting, ws);
            downRun.run();
            assertClose(what + " down", gpu, dSlots, slots);
            assertRepeats(what + " down", gpu, dSlots, downRun);
        }
    }

    /** Runs {@code launch} again into a poisoned {@code out} and asserts the same bits as the run before. */
    private static void assertRepeats(String what, CudaBackend gpu, Tensor out, Runnable launch) {
        try (Tensor first = gpu.toHost(out)) {
            gpu.poison(out);
            launch.run();
            try (Tensor second = gpu.toHost(out)) {
                assertArrayEquals(first.toFloatArray(), second.toFloatArray(), what + ": a second run differs");
            }
        }
    }
}
