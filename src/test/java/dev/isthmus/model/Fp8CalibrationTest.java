package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.KvCache;
import dev.isthmus.attention.KvCacheType;
import dev.isthmus.attention.KvQuantization;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * fp8 scales calibrated on the prompt (CPU backend): every head's largest stored code over the
 * prompt's tokens is 448 / HEADROOM exactly, for the keys (stored after RoPE, so a scale taken
 * before it would miss) and the values of every layer, which holds only if the scales come from
 * the prompt's own rotated keys and values and from no stale slot of the pool; and bad calls are
 * refused.
 */
class Fp8CalibrationTest {
    @Test
    void thePromptsLargestValueOfEveryHeadLandsOnTheHeadroomCode() throws IOException {
        Path dir = GoldenFixtures.require("llama");
        int[] prompt = {1, 17, 34, 9, 88, 42, 7, 7, 51, 3, 26, 41, 99, 5, 63, 120, 11, 30}; // 18 tokens: a partial second block
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), dir, DType.F32);
             Session session = model.newSession(1, 64, KvCacheType.FP8_E4M3, List.of(prompt))) {
            assertPromptPeaksAtTheHeadroomCode(model, session, prompt);
        }
    }

    /** Runs {@code prompt} as sequence 0 of {@code session} and checks every head's largest stored code over it. */
    static void assertPromptPeaksAtTheHeadroomCode(DecoderModel model, Session session, int[] prompt) {
        model.forward(session, new int[] {0}, new int[][] {prompt}, false).close();
        KvCache cache = session.kvCache();
        int heads = model.config().kvHeads(), dim = model.config().headDim(), blockSize = cache.blockSize();
        int[] blocks = cache.blocks(0);
        for (int l = 0; l < cache.layers(); l++)
            for (Tensor pool : new Tensor[] {cache.keys(l), cache.values(l)}) {
                float[] largest = new float[heads];
                long[] codes = pool.toLongArray(); // the I8 codes, sign-extended
                for (int t = 0; t < prompt.length; t++)
                    for (int h = 0; h < heads; h++)
                        for (int d = 0; d < dim; d++) {
                            int at = (((blocks[t / blockSize] * blockSize + t % blockSize) * heads) + h) * dim + d;
                            largest[h] = Math.max(largest[h], Math.abs(KvQuantization.decodeE4m3((byte) codes[at])));
                        }
                for (int h = 0; h < heads; h++)
                    assertEquals(Fp8Calibration.E4M3_MAX / Fp8Calibration.HEADROOM, largest[h], 0f, "layer " + l + " head " + h);
            }
    }

    @Test
    void refusesWhatItCannotCalibrateOn() throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("llama"), DType.F32)) {
            assertThrows(IllegalArgumentException.class, () -> Fp8Calibration.calibrate(model, List.of()));
            assertThrows(IllegalArgumentException.class, () -> Fp8Calibration.calibrate(model, List.of(new int[0])));
            assertThrows(IllegalArgumentException.class, () -> Fp8Calibration.calibrate(null, List.of(new int[] {1})));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Session(model, 1, 8, KvCacheType.INT8, new Fp8Calibration.Scales(new float[] {1}, new float[] {1})));
            assertTrue(e.getMessage().contains("fp8 scales"), e.getMessage());
        }
    }
}
