package dev.isthmus.moe;

import static dev.isthmus.testing.DeviceAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.quant.Quantize;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.lang.foreign.MemorySegment;
import java.util.Random;

/**
 * The grouped expert GEMMs on quantized experts (the tensor-core tiles with the quantized B source)
 * against the CPU reference (the experts dequantized by the format's definition, dots in double):
 * every format, f16 and bf16, row counts that take each tile width (1 and 17 tokens: the decode
 * tile; 200 x 2 pairs: 128 x 128; 600 x 2: the wide tile), one and eight experts, K an odd number of
 * blocks (a 32-deep tail for Q8_0 and Q4_0), output columns not a multiple of any tile; gate+up
 * built from separate gate and up stacks as a GGUF file holds them; outputs poisoned. Then the
 * decode tile with the split-K workspace, K deep enough (9 blocks, 3 of Q4_K) to split over.
 */
class QuantizedExpertsGpuTest {
    private static final CpuBackend CPU = Backend.cpu();
    private static final GgmlType[] FORMATS = {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K};

    @GpuTest
    void expertGemmsMatchTheReference() {
        Random random = new Random(41);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (GgmlType format : FORMATS)
                for (DType dtype : new DType[] {DType.F16, DType.BF16})
                    for (int[] tek : new int[][] {{1, 1, 1}, {17, 8, 2}, {200, 8, 2}, {600, 8, 2}}) {
                        int deep = 3 * format.blockElements(), wide = 40;
                        checkGateUp(gpu, random, format, dtype, tek[0], deep, wide, tek[1], tek[2], null);
                        checkDown(gpu, random, format, dtype, tek[0], wide, deep, tek[1], tek[2], null);
                    }
        }
    }

    @GpuTest
    void expertGemmsMatchTheReferenceWithTheSplitKWorkspace() {
        Random random = new Random(42);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            for (GgmlType format : FORMATS)
                for (int[] tek : new int[][] {{1, 1, 1}, {17, 8, 2}}) {
                    int deep = (format == GgmlType.Q4_K ? 3 : 9) * format.blockElements(), wide = 40;
                    checkGateUp(gpu, random, format, DType.BF16, tek[0], deep, wide, tek[1], tek[2], ws);
                    checkDown(gpu, random, format, DType.BF16, tek[0], wide, deep, tek[1], tek[2], ws);
                }
        }
    }

    @GpuTest
    void refusesF32ActivationsOnCuda() {
        try (CudaBackend gpu = Backend.cuda(0);
             QuantizedExperts w = QuantizedExperts.fromGgml(gpu, GgmlType.Q8_0, 1, 64, 32,
                     MemorySegment.ofArray(Quantize.fromFloat(GgmlType.Q8_0, gaussian(new Random(1), 64 * 32, 0.1f))));
             Tensor x = gpu.allocate(DType.F32, 1, 32);
             Tensor hidden = gpu.allocate(DType.F32, 1, 32);
             Tensor ids = gpu.copyOf(Tensor.fromLongs(DType.I32, new long[] {0}, 1, 1));
             Dispatch.Buffers routing = Dispatch.Buffers.allocate(gpu, 1, 1, 1, ExpertGemm.TILE_M)) {
            Dispatch.align(gpu, routing, ids);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> ExpertGemm.gateUpQuantized(gpu, hidden, x, w, routing, 1));
            assertTrue(e.getMessage().contains("f16 or bf16"), e.getMessage());
        }
    }

    private static float[] gaussian(Random random, int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) random.nextGaussian() * scale * (i % 89 == 0 ? 4 : 1); // outliers widen blocks
        return v;
    }

    private static void checkGateUp(CudaBackend gpu, Random random, GgmlType format, DType dtype, int tokens, int h, int inter, int e, int k,
                                    GemmWorkspace ws) {
        String what = format + " " + dtype.label() + " gate+up T=" + tokens + " H=" + h + " I=" + inter + " E=" + e + " k=" + k;
        int pairs = tokens * k;
        float[] gate = gaussian(random, e * inter * h, (float) (1.5 / Math.sqrt(h))), up = gaussian(random, e * inter * h, (float) (1.5 / Math.sqrt(h)));
        MemorySegment gateBytes = MemorySegment.ofArray(Quantize.fromFloat(format, gate)), upBytes = MemorySegment.ofArray(Quantize.fromFloat(format, up));
        try (QuantizedExperts host = QuantizedExperts.fromGgmlPair(CPU, format, e, inter, h, gateBytes, upBytes);
             QuantizedExperts device = QuantizedExperts.fromGgmlPair(gpu, format, e, inter, h, gateBytes, upBytes);
             Tensor x = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor ids = MoeFixtures.distinctIds(random, tokens, e, k);
             Dispatch.Buffers routing = Dispatch.Buffers.allocate(CPU, tokens, k, e, ExpertGemm.TILE_M);
             Dispatch.Buffers dRouting = Dispatch.Buffers.allocate(gpu, tokens, k, e, ExpertGemm.TILE_M);
             Tensor hidden = Tensor.allocateHost(dtype, pairs, inter);
             Tensor dx = gpu.copyOf(x);
             Tensor dids = gpu.copyOf(ids);
             Tensor dHidden = gpu.allocate(dtype, pairs, inter)) {
            Dispatch.align(CPU, routing, ids);
            Dispatch.align(gpu, dRouting, dids);
            gpu.poison(dHidden);
            ExpertGemm.gateUpQuantized(CPU, hidden, x, host, routing, k);
            ExpertGemm.gateUpQuantized(gpu, dHidden, dx, device, dRouting, k, ws);
            assertClose(what, gpu, dHidden, hidden);
        }
    }

    private static void checkDown(CudaBackend gpu, Random random, GgmlType format, DType dtype, int tokens, int h, int inter, int e, int k,
                                  GemmWorkspace ws) {
        String what = format + " " + dtype.label() + " down T=" + tokens + " H=" + h + " I=" + inter + " E=" + e + " k=" + k;
        int pairs = tokens * k;
        MemorySegment bytes = MemorySegment.ofArray(Quantize.fromFloat(format, gaussian(random, e * h * inter, (float) (1 / Math.sqrt(inter)))));
        try (QuantizedExperts host = QuantizedExperts.fromGgml(CPU, format, e, h, inter, bytes);
             QuantizedExperts device = QuantizedExperts.fromGgml(gpu, format, e, h, inter, bytes);
             Tensor hidden = RandomTensors.normal(random, dtype, 1f, pairs, inter);
             Tensor weights = RandomTensors.uniform(random, DType.F32, 0f, 1f, tokens, k);
             Tensor ids = MoeFixtures.distinctIds(random, tokens, e, k);
             Dispatch.Buffers routing = Dispatch.Buffers.allocate(CPU, tokens, k, e, ExpertGemm.TILE_M);
             Dispatch.Buffers dRouting = Dispatch.Buffers.allocate(gpu, tokens, k, e, ExpertGemm.TILE_M);
             Tensor slots = Tensor.allocateHost(dtype, pairs, h);
             Tensor dHidden = gpu.copyOf(hidden);
             Tensor dWeights = gpu.copyOf(weights);
             Tensor dids = gpu.copyOf(ids);
             Tensor dSlots = gpu.allocate(dtype, pairs, h)) {
            Dispatch.align(CPU, routing, ids);
            Dispatch.align(gpu, dRouting, dids);
            gpu.poison(dSlots);
            ExpertGemm.downQuantized(CPU, slots, hidden, host, weights, routing);
            ExpertGemm.downQuantized(gpu, dSlots, dHidden, device, dWeights, dRouting, ws);
            assertClose(what, gpu, dSlots, slots);
        }
    }
}
