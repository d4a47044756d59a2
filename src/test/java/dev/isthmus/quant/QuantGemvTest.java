package dev.isthmus.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The quantized matrix's layout round trip and the CPU path of the quantized GEMV; its refusals. */
class QuantGemvTest {
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K"})
    void kernelLayoutGivesTheFormatsBytesBack(GgmlType type) {
        Random random = new Random(type.ordinal());
        int rows = 5, cols = 2 * type.blockElements();
        byte[] ggml = new byte[(int) type.bytes((long) rows * cols)];
        random.nextBytes(ggml);
        for (int b = 0; b < ggml.length / type.blockBytes(); b++) { // finite f16 scales where the format keeps them
            int at = b * type.blockBytes();
            ggml[at + 1] = (byte) (ggml[at + 1] & 0x3b);
            if (type == GgmlType.Q4_K) ggml[at + 3] = (byte) (ggml[at + 3] & 0x3b);
        }
        try (QuantizedMatrix w = QuantizedMatrix.fromGgml(Backend.cpu(), type, rows, cols, MemorySegment.ofArray(ggml))) {
            assertArrayEquals(ggml, w.toGgml());
            assertTrue(w.bytes().byteSize() == (ggml.length + 15) / 16 * 16, "the kernels' layout has the format's byte count, padded to 16");
        }
    }

    /** x W^T through the CPU path equals a dense GEMM on the dequantized weights. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_K"})
    void cpuPathIsTheProductWithTheDequantizedWeights(GgmlType type) {
        Random random = new Random(3);
        int m = 3, n = 6, k = 2 * type.blockElements();
        float[] values = new float[n * k];
        for (int i = 0; i < values.length; i++) values[i] = (float) random.nextGaussian();
        try (QuantizedMatrix w = QuantizedMatrix.quantize(Backend.cpu(), type, values, n, k);
             Tensor x = RandomTensors.normal(random, DType.F32, 1f, m, k);
             Tensor dense = Tensor.fromFloats(DType.F32, w.dequantize(), n, k);
             Tensor out = Tensor.allocateHost(DType.F32, m, n);
             Tensor expected = Tensor.allocateHost(DType.F32, m, n)) {
            QuantGemv.apply(Backend.cpu(), out, x, w);
            Gemm.gemm(Backend.cpu(), expected, x, false, dense, true, 1f, 0f);
            Compare.Result result = Compare.check(type + " gemv", out, expected, 1e-6);
            assertTrue(result.withinBound(), result.toString());
        }
    }

    @Test
    void refusesBadArgumentsByName() {
        try (QuantizedMatrix w = QuantizedMatrix.quantize(Backend.cpu(), GgmlType.Q8_0, new float[4 * 64], 4, 64);
             Tensor x = Tensor.allocateHost(DType.F32, 2, 64);
             Tensor wrongK = Tensor.allocateHost(DType.F32, 2, 32);
             Tensor tooMany = Tensor.allocateHost(DType.F32, 17, 64);
             Tensor out = Tensor.allocateHost(DType.F32, 2, 4);
             Tensor outBf16 = Tensor.allocateHost(DType.BF16, 2, 4)) {
            assertRefused("x has shape", () -> QuantGemv.apply(Backend.cpu(), out, wrongK, w));
            assertRefused("17 rows", () -> QuantGemv.apply(Backend.cpu(), out, tooMany, w));
            assertRefused("out", () -> QuantGemv.apply(Backend.cpu(), outBf16, x, w));
            assertRefused("w", () -> QuantGemv.apply(Backend.cpu(), out, x, null));
        }
        assertRefused("Q8_0, Q4_0 or Q4_K", () -> QuantizedMatrix.quantize(Backend.cpu(), GgmlType.Q6_K, new float[256], 1, 256));
        assertRefused("not a multiple", () -> QuantizedMatrix.quantize(Backend.cpu(), GgmlType.Q4_K, new float[64], 1, 64));
        assertRefused("bytes, got 3", () -> QuantizedMatrix.fromGgml(Backend.cpu(), GgmlType.Q8_0, 1, 32, MemorySegment.ofArray(new byte[3])));
    }

    private static void assertRefused(String fragment, Runnable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call::run);
        assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' not in: " + e.getMessage());
    }
}
