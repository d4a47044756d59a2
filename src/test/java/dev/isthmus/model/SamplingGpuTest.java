package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.ChiSquare;
import dev.isthmus.testing.RequiresGpu;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * isthmus_sample against the CPU reference: the same seeds and offsets draw the same tokens (the
 * counter generator is shared), for every kind of row and option set of {@link SamplingTest},
 * at a small and an awkward large vocabulary; the drawn token's probability within float
 * rounding; outputs poisoned before the launch; a chi-square test of the device's own draws.
 */
@Tag("gpu")
@ExtendWith(RequiresGpu.class)
class SamplingGpuTest {
    @Test
    void theDeviceDrawsWhatTheReferenceDraws() {
        try (Backend gpu = Backend.cuda(0)) {
            for (float[] logits : SamplingTest.rows())
                for (SamplingOptions options : SamplingTest.options()) compare(gpu, logits, options, 96);
            Random random = new Random(9);
            float[] wide = new float[3001];
            for (int i = 0; i < wide.length; i++) wide[i] = i % 97 == 0 ? Float.NaN : (float) (2 * random.nextGaussian());
            for (SamplingOptions options : SamplingTest.options()) compare(gpu, wide, options, 24);
            compare(gpu, new float[] {Float.NaN, Float.NEGATIVE_INFINITY, Float.NEGATIVE_INFINITY}, SamplingTest.options().getFirst(), 4);
            compare(gpu, new float[] {Float.NaN, Float.NaN}, SamplingTest.options().getFirst(), 2);
        }
    }

    @Test
    void theDevicesDrawsFitTheDistribution() {
        try (Backend gpu = Backend.cuda(0)) {
            float[] logits = SamplingTest.rows().get(3); // NaN and -inf among the logits
            SamplingOptions options = SamplingTest.options().get(4);
            long[] counts = new long[SamplingTest.VOCAB];
            for (long id : SamplingTest.draw(gpu, logits, options, 1200)) counts[(int) id]++;
            ChiSquare.assertFits("device draws", counts, Sampler.distribution(logits, options).dense(SamplingTest.VOCAB));
        }
    }

    private static void compare(Backend gpu, float[] logits, SamplingOptions options, int rows) {
        int vocab = logits.length;
        float[] all = new float[rows * vocab];
        long[] seeds = new long[rows], offsets = new long[rows];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(logits, 0, all, r * vocab, vocab);
            seeds[r] = 77 * r + 5;
            offsets[r] = r % 3;
        }
        try (Tensor l = Tensor.fromFloats(DType.F32, all, rows, vocab); Tensor s = Tensor.fromLongs(DType.I64, seeds, rows);
             Tensor o = Tensor.fromLongs(DType.I64, offsets, rows); Tensor ids = Tensor.allocateHost(DType.I32, rows);
             Tensor probs = Tensor.allocateHost(DType.F32, rows);
             Tensor dl = gpu.copyOf(l); Tensor ds = SamplingTest.upload(gpu, seeds); Tensor dOffsets = SamplingTest.upload(gpu, offsets);
             Tensor dIds = gpu.allocate(DType.I32, rows); Tensor dProbs = gpu.allocate(DType.F32, rows)) {
            Sampling.sample(Backend.cpu(), ids, probs, l, options, s, o);
            gpu.poison(dIds);
            gpu.poison(dProbs);
            Sampling.sample(gpu, dIds, dProbs, dl, options, ds, dOffsets);
            String what = vocab + " logits " + options;
            try (Tensor hi = gpu.toHost(dIds); Tensor hp = gpu.toHost(dProbs); Tensor ho = gpu.toHost(dOffsets)) {
                assertArrayEquals(ids.toLongArray(), hi.toLongArray(), what + ": ids");
                float[] expected = probs.toFloatArray(), p = hp.toFloatArray();
                for (int r = 0; r < rows; r++) assertEquals(expected[r], p[r], 1e-5, what + ": probability of row " + r);
                assertArrayEquals(o.toLongArray(), ho.toLongArray(), what + ": offsets incremented as the reference did");
            }
        }
    }
}
