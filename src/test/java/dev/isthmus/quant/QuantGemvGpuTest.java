package dev.isthmus.quant;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The quantized GEMV on CUDA against the CPU reference (the weights dequantized by the format's
 * definition, dots in double): fresh random weights and inputs, awkward row counts (every unrolled
 * count and the ones between), output features not a multiple of the block's warps, several blocks
 * per weight row, the output poisoned before each launch.
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
                    for (int m : new int[] {1, 2, 3, 5, 16})
                        for (int n : new int[] {1, 7, 33})
                            for (int blocks : new int[] {1, 3, format == GgmlType.Q4_K ? 2 : 37})
                                check(gpu, random, format, dtype, m, n, blocks * format.blockElements());
        }
    }

    private static void check(CudaBackend gpu, Random random, GgmlType format, DType dtype, int m, int n, int k) {
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
            QuantGemv.apply(gpu, out, dx, device);
            try (Tensor actual = gpu.toHost(out)) {
                Compare.Result result = Compare.check(what, actual, expected);
                assertTrue(result.withinBound(), result.toString());
            }
        }
    }
}
