package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.testing.RequiresGpu;
import java.io.IOException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** KvCacheGoldenTest on the CUDA backend (f32 and bf16), with the same bounds. */
@Tag("gpu")
@ExtendWith(RequiresGpu.class)
class KvCacheGoldenGpuTest {
    @Test
    void int8CacheLogitsStayCloseToTheUnquantizedRun() throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            GoldenFixtures.checkQuantizedCache("llama", gpu, DType.F32, KvCacheType.INT8, 5, KvCacheGoldenTest.INT8_LOGITS_BOUND);
            GoldenFixtures.checkQuantizedCache("qwen2", gpu, DType.BF16, KvCacheType.INT8, 5, KvCacheGoldenTest.INT8_LOGITS_BOUND);
        }
    }

    @Test
    void fp8CacheLogitsStayCloseToTheUnquantizedRun() throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            GoldenFixtures.checkQuantizedCache("llama", gpu, DType.BF16, KvCacheType.FP8_E4M3, 5, KvCacheGoldenTest.FP8_LOGITS_BOUND);
            // calibrated on the prompt: per-head scales far from 1 in the append and attention kernels
            GoldenFixtures.checkQuantizedCache("qwen2", gpu, DType.BF16, KvCacheType.FP8_E4M3, true, 5, KvCacheGoldenTest.FP8_CALIBRATED_LOGITS_BOUND);
        }
    }
}
