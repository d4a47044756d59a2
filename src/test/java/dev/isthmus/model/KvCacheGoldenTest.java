package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import java.io.IOException;
import org.junit.jupiter.api.Test;

/**
 * The golden fixtures with a quantized KV cache on the CPU backend (the reference quantizes and
 * dequantizes): logits of the prompt and of five decode steps against the same run with an f32
 * cache. The bounds (relative error of the logits) are what the formats cost these tiny random
 * models, with room: measured 1.0-3.7e-2 for int8 (llama, qwen2; 3-6e-3 for jamba, whose one
 * attention layer among Mamba layers weighs less) and 3-9e-2 for fp8 with the default scale 1;
 * with the scales calibrated on the prompt (Fp8Calibration) 1.1e-1 (qwen2) and 1.3e-1 (llama):
 * no better, since e4m3's error is relative (3 mantissa bits) wherever a value lies in its normal
 * range, which these models' K and V reach at the scale 1 already; calibration is for K and V that
 * would leave that range (beyond 448, or in bulk below 2^-6). bf16 itself costs the same models
 * 1.3-1.7e-2 against transformers (GoldenModelGpuTest).
 */
class KvCacheGoldenTest {
    static final double INT8_LOGITS_BOUND = 6e-2;
    static final double FP8_LOGITS_BOUND = 0.15;
    static final double FP8_CALIBRATED_LOGITS_BOUND = 0.15;

    @Test
    void int8CacheLogitsStayCloseToTheUnquantizedRun() throws IOException {
        for (String family : new String[] {"llama", "qwen2", "jamba"})
            GoldenFixtures.checkQuantizedCache(family, Backend.cpu(), DType.F32, KvCacheType.INT8, 5, INT8_LOGITS_BOUND);
    }

    @Test
    void fp8CacheLogitsStayCloseToTheUnquantizedRun() throws IOException {
        GoldenFixtures.checkQuantizedCache("llama", Backend.cpu(), DType.F32, KvCacheType.FP8_E4M3, 5, FP8_LOGITS_BOUND);
    }

    @Test
    void fp8CacheCalibratedOnThePromptStaysClose() throws IOException {
        for (String family : new String[] {"llama", "qwen2"})
            GoldenFixtures.checkQuantizedCache(family, Backend.cpu(), DType.F32, KvCacheType.FP8_E4M3, true, 5, FP8_CALIBRATED_LOGITS_BOUND);
    }
}
