package dev.isthmus.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The quantized product on CUDA against the CPU reference (the weights dequantized by the format's
 * definition, dots in double): fresh random weights and inputs; row counts for the GEMV (1 to 16:
 * every unrolled count and ones between) and for the tensor-core tiles (f16 and bf16 from 17 rows:
 * the decode tile up to 64 with a partial 16-row slice at 17, more than one row tile at 129);
 * output features not a multiple of the GEMV's warps nor of any tile width (130: a
 * partial second column tile); one block of K, K with a 32-deep tail (an odd number of 32-value
 * blocks) and several 64-deep passes, and for up to 16 rows a K deep enough that every warp of the
 * GEMV takes several runs of blocks and a tail; the output poisoned before each launch. Then the
 * same with the split-K workspace, where the GEMV may take its wide kernel and share a 128-row
 * tile's K out over blocks (300 output features: three tiles, the last partly past W, with block
 * shares that straddle tiles; K of 150 blocks: runs of kUnroll blocks with a short last one) and
 * the decode tile splits K: each launch twice, the second (the workspace's counters back at 0)
 * bitwise equal to the first.
 */
class QuantGemvGpuTest {
    private static final GgmlType[] FORMATS = {GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_K};
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};

    @GpuTest
    void matchesTheReference() {
        Random random = new Random(5);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (GgmlType format : FORMATS)
                for (DType dtype : FLOATS)
                    for (int m : new int[] {1, 2, 3, 5, 8, 15, 16, 17, 64, 129}) {
                        if (m > QuantGemv.maxRows(dtype)) continue;
                        for (int n : new int[] {1, 7, 130})
                            for (int blocks : format == GgmlType.Q4_K ? new int[] {1, 3} : new int[] {1, 4, 37})
                                check(gpu, random, format, dtype, m, n, blocks * format.blockElements());
                        // a deeper K for the decode rows: every warp of the GEMV's block makes more
                        // than one pass over its runs, and the runs leave a tail
                        if (m <= 16) check(gpu, random, format, dtype, m, 130, (format == GgmlType.Q4_K ? 19 : 150) * format.blockElements());
                    }
        }
    }

    @GpuTest
    void matchesTheReferenceWithTheSplitKWorkspace() {
        Random random = new Random(6);
        try (CudaBackend gpu = Backend.cuda(0); GemmWorkspace ws = GemmWorkspace.allocate(gpu)) {
            for (GgmlType format : FORMATS)
                for (DType dtype : new DType[] {DType.F16, DType.BF16})
                    for (int m : new int[] {1, 9, 16, 40}) {
                        int[] blockCounts = format == GgmlType.Q4_K ? new int[] {3, 19} : new int[] {37, 150};
                        for (int blocks : blockCounts) check(gpu, random, format, dtype, m, 300, blocks * format.blockElements(), ws);
                        check(gpu, random, format, dtype, m, 7, blockCounts[1] * format.blockElements(), ws);
                    }
        }
    }

    private static void check(CudaBackend gpu, Random random, GgmlType format, DType dtype, int m, int n, int k) {
        check(gpu, random, format, dtype, m, n, k, null);
    }

    private static void check(CudaBackend gpu, Random random, GgmlType format, DType dtype, int m, int n, int k, GemmWorkspace ws) {
        String what = format + " " + dtype.label() + " m=" + m + " n=" + n + " k=" + k;
        float[] weights = new float[n * k];
        for (int i = 0; i < weights.length; i++) weights[i] = (float) random.nextGaussian() * (i % 97 == 0 ? 4 : 1); // outliers widen blocks
        try (QuantizedMatrix host = QuantizedMatrix.quantize(Backend.cpu(), format, weights, n, k);
             QuantizedMatrix device = QuantizedMatrix.fromGgml(gpu, format, n, k, java.lang.foreign.MemorySegment.ofArray(host.toGgml()));
             Tensor x = RandomTensors.normal(random, dtype, 1f, m, k);
             Tensor expected = Tensor.allocateHost(dtype, m, n);
             Tensor dx = gpu.copyOf(x);
             Tensor out = gpu.allocate(dtype, m, n)) {
            gpu.poison(out);
            QuantGemv.apply(Backend.cpu(), expected, x, host);
            QuantGemv.apply(gpu, out, dx, device, ws);
            try (Tensor actual = gpu.toHost(out)) {
                Compare.Result result = Compare.check(what, actual, expected);
                assertTrue(result.withinBound(), result.toString());
                if (ws == null) return;
                gpu.poison(out);
                QuantGemv.apply(gpu, out, dx, device, ws);
                try (Tensor again = gpu.toHost(out)) {
                    assertArrayEquals(actual.toFloatArray(), again.toFloatArray(), what + ": a second launch with the same workspace differs");
                }
            }
        }
    }
}
