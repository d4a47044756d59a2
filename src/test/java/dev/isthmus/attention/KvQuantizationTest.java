package dev.isthmus.attention;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The quantized KV cache formats and the CPU reference over them: the E4M3 table against values
 * from the OCP definition, the int8 rule, the error a quantized cache adds to attention (against
 * the same cache in f32), and the refusals.
 */
class KvQuantizationTest {
    private static final Backend CPU = Backend.cpu();

    /**
     * The documented bounds of ||out(quantized cache) - out(f32 cache)|| / ||out||, for K and V of
     * unit normal entries: int8's element error is at most max|x| / 254 per row, e4m3's up to
     * 2^-4 relative, a few times smaller on average. Measured here: about 7e-3 (int8) and 3.3e-2
     * (fp8) at head_dim 64 and 128, GQA 1 and 4.
     */
    static final double INT8_ATTENTION_BOUND = 1.5e-2;
    static final double FP8_ATTENTION_BOUND = 5e-2;

    @Test
    void e4m3DecodesAsTheSpecDefinesIt() {
        assertEquals(0f, KvQuantization.decodeE4m3((byte) 0x00));
        assertEquals(-0f, KvQuantization.decodeE4m3((byte) 0x80));
        assertEquals(0x1p-9f, KvQuantization.decodeE4m3((byte) 0x01));   // smallest subnormal
        assertEquals(7 * 0x1p-9f, KvQuantization.decodeE4m3((byte) 0x07)); // largest subnormal
        assertEquals(0x1p-6f, KvQuantization.decodeE4m3((byte) 0x08));   // smallest normal
        assertEquals(1f, KvQuantization.decodeE4m3((byte) 0x38));        // e = 7, m = 0
        assertEquals(1.125f, KvQuantization.decodeE4m3((byte) 0x39));
        assertEquals(-2.5f, KvQuantization.decodeE4m3((byte) 0xc2));     // e = 8, m = 2
        assertEquals(448f, KvQuantization.decodeE4m3((byte) 0x7e));      // largest finite
        assertEquals(-448f, KvQuantization.decodeE4m3((byte) 0xfe));
        assertTrue(Float.isNaN(KvQuantization.decodeE4m3((byte) 0x7f)));
        assertTrue(Float.isNaN(KvQuantization.decodeE4m3((byte) 0xff)));
    }

    @Test
    void e4m3EncodesToTheNearestWithTiesToEvenAndSaturates() {
        for (int c = 0; c < 256; c++) {
            if ((c & 0x7f) == 0x7f) continue;
            float x = KvQuantization.decodeE4m3((byte) c);
            assertEquals((byte) c, KvQuantization.encodeE4m3(x), "code " + Integer.toHexString(c) + " round trip");
        }
        assertEquals((byte) 0x38, KvQuantization.encodeE4m3(1.0625f));  // halfway 1 .. 1.125: even mantissa 0
        assertEquals((byte) 0x3a, KvQuantization.encodeE4m3(1.1875f));  // halfway 1.125 .. 1.25: even mantissa 2
        assertEquals((byte) 0x39, KvQuantization.encodeE4m3(1.07f));
        assertEquals((byte) 0x00, KvQuantization.encodeE4m3(0x1p-10f)); // halfway 0 .. 2^-9: to 0
        assertEquals((byte) 0x02, KvQuantization.encodeE4m3(3 * 0x1p-10f)); // halfway 1 .. 2 (x 2^-9): to 2
        assertEquals((byte) 0x7e, KvQuantization.encodeE4m3(460f));     // past 448 (464 would be halfway): saturated
        assertEquals((byte) 0x7e, KvQuantization.encodeE4m3(1e9f));
        assertEquals((byte) 0x7e, KvQuantization.encodeE4m3(Float.POSITIVE_INFINITY));
        assertEquals((byte) 0xfe, KvQuantization.encodeE4m3(Float.NEGATIVE_INFINITY));
        assertEquals((byte) 0x7f, KvQuantization.encodeE4m3(Float.NaN));
    }

    @Test
    void int8RoundsHalfToEvenUnderTheRowScale() {
        float scale = KvQuantization.int8Scale(127f); // 1
        assertEquals(1f, scale);
        assertEquals(2, KvQuantization.quantizeInt8(2.5f, scale));
        assertEquals(4, KvQuantization.quantizeInt8(3.5f, scale));
        assertEquals(-2, KvQuantization.quantizeInt8(-2.5f, scale));
        assertEquals(127, KvQuantization.quantizeInt8(127f, scale));
        assertEquals(-127, KvQuantization.quantizeInt8(-127f, scale));
        assertEquals(0, KvQuantization.quantizeInt8(0f, KvQuantization.int8Scale(0f))); // an all-zero row
    }

    /** Append and attend over int8 and fp8 caches against the same over an f32 cache: the quantization error. */
    @Test
    void quantizedCacheErrorIsWithinTheDocumentedBound() {
        Random random = new Random(71);
        for (int d : new int[] {64, 128})
            for (int[] heads : new int[][] {{4, 1}, {2, 2}})
                for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3}) {
                    double error = attentionError(random, type, d, heads[0], heads[1], 17, new int[] {5, 40}, new int[] {1, 15});
                    double bound = type == KvCacheType.INT8 ? INT8_ATTENTION_BOUND : FP8_ATTENTION_BOUND;
                    assertTrue(error < bound, type.label() + " d " + d + " heads " + heads[0] + "/" + heads[1] + ": error " + error);
                    assertTrue(error > 0, type.label() + ": the quantized cache must differ from the f32 one");
                }
    }

    /** ||out(type cache) - out(f32 cache)|| / ||out(f32 cache)|| for the same random q, k, v (RoPE, causal). */
    private static double attentionError(Random random, KvCacheType type, int d, int qHeads, int kvHeads, int blockSize, int[] cached,
                                         int[] fresh) {
        int batch = cached.length, numBlocks = 0;
        int[][] tables = new int[batch][];
        int[] total = new int[batch];
        for (int b = 0; b < batch; b++) {
            total[b] = cached[b] + fresh[b];
            tables[b] = new int[(total[b] + blockSize - 1) / blockSize];
            for (int j = 0; j < tables[b].length; j++) tables[b][j] = numBlocks++;
        }
        int tokens = 0;
        for (int t : total) tokens += t;
        try (KvCache exact = KvCache.allocate(CPU, DType.F32, 1, numBlocks, blockSize, kvHeads, d);
             KvCache quantized = KvCache.allocate(CPU, DType.F32, type, 1, numBlocks, blockSize, kvHeads, d);
             Tensor q = RandomTensors.normal(random, DType.F32, 1f, tokens, qHeads, d);
             Tensor k = RandomTensors.normal(random, DType.F32, 1f, tokens, kvHeads, d);
             Tensor v = RandomTensors.normal(random, DType.F32, 1f, tokens, kvHeads, d);
             Tensor qCopy = Tensor.fromFloats(DType.F32, q.toFloatArray(), q.shape());
             Tensor want = Tensor.allocateHost(DType.F32, tokens, qHeads, d);
             Tensor got = Tensor.allocateHost(DType.F32, tokens, qHeads, d)) {
            // Everything, cached prefix and new tokens, is appended in one batch, then attended.
            try (KvBatch a = KvBatch.of(CPU, exact.keys(), exact.values(), tables, new int[batch], total);
                 KvBatch b = KvBatch.of(CPU, DType.F32, type, quantized.keys(), quantized.values(), quantized.keyScales(0),
                         quantized.valueScales(0), tables, new int[batch], total)) {
                Attention.append(CPU, a, q, k, v, Rope.neox(10000f), null);
                Attention.append(CPU, b, qCopy, k, v, Rope.neox(10000f), null);
                Attention.attend(CPU, a, q, want, null, AttentionOptions.decoder(), null);
                Attention.attend(CPU, b, qCopy, got, null, AttentionOptions.decoder(), null);
            }
            return Compare.relativeError(got, want);
        }
    }

    @Test
    void badQuantizedInputIsRefusedByName() {
        try (KvCache int8 = KvCache.allocate(CPU, DType.BF16, KvCacheType.INT8, 2, 4, 16, 2, 64);
             Tensor q = Tensor.allocateHost(DType.F32, 1, 2, 64);
             Tensor k = Tensor.allocateHost(DType.F32, 1, 2, 64);
             Tensor wrongScales = Tensor.allocateHost(DType.F32, 4, 16, 3);
             Tensor f16Scales = Tensor.allocateHost(DType.F16, 4, 16, 2)) {
            int seq = int8.newSequence();
            try (KvBatch batch = int8.extend(new int[] {seq}, new int[] {1})) {
                assertEquals(KvCacheType.INT8, batch.cacheType());
                assertEquals(DType.I8, batch.keys().dtype());
                illegalArgument("the cache is for bf16", () -> Attention.append(CPU, batch, q, k, k, null, null));
                illegalArgument("keyScales has shape", () -> batch.over(int8.keys(1), int8.values(1), wrongScales, int8.valueScales(1)));
                illegalArgument("valueScales must be f32", () -> batch.over(int8.keys(1), int8.values(1), int8.keyScales(1), f16Scales));
                illegalArgument("keyScales is null", () -> batch.over(int8.keys(1), int8.values(1), null, int8.valueScales(1)));
                illegalArgument("over(keys, values, keyScales, valueScales)", () -> batch.over(int8.keys(1), int8.values(1)));
                assertEquals(int8.keyScales(1), int8.layer(batch, 1).keyScales());
            }
            illegalArgument("i8 codes", () -> KvBatch.of(CPU, DType.BF16, KvCacheType.INT8, q, q, int8.keyScales(0), int8.valueScales(0),
                    new int[][] {{0}}, new int[] {0}, new int[] {1}));
            illegalArgument("has no scales", () -> KvBatch.of(CPU, DType.F32, KvCacheType.MODEL_DTYPE, q.reshape(1, 1, 2, 64), q.reshape(1, 1, 2, 64),
                    wrongScales, wrongScales, new int[][] {{0}}, new int[] {0}, new int[] {1}));
        }
        illegalArgument("keyScales has 3 values, expected layers x kvHeads = 2 x 2 = 4",
                () -> KvCache.allocateFp8(CPU, DType.BF16, 2, 4, 16, 2, 64, new float[3], new float[4]));
        illegalArgument("valueScales[1] = 0.0", () -> KvCache.allocateFp8(CPU, DType.BF16, 1, 4, 16, 2, 64, new float[] {1, 1}, new float[] {1, 0}));
        illegalArgument("keyScales[0] = 256.0 is not a scale in (0, 256.0)",
                () -> KvCache.allocateFp8(CPU, DType.BF16, 1, 4, 16, 2, 64, new float[] {256, 1}, new float[] {1, 1}));
        illegalArgument("keyScales[1] = NaN", () -> KvCache.allocateFp8(CPU, DType.BF16, 1, 4, 16, 2, 64, new float[] {1, Float.NaN}, new float[] {1, 1}));
        illegalArgument("headDim [", () -> KvCache.allocate(CPU, DType.F16, KvCacheType.FP8_E4M3, 1, 4, 16, 2, 80));
        illegalArgument("model, int8 or fp8", () -> KvCacheType.parse("int4"));
        assertEquals(KvCacheType.FP8_E4M3, KvCacheType.parse("FP8"));
    }
}
