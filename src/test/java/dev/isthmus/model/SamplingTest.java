package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.ChiSquare;
import dev.isthmus.testing.Expect;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Sampling on the CPU backend against the distribution itself: chi-square tests of the drawn
 * frequencies, over many rows of the same logits with different seeds, for skewed and flat rows,
 * ties at the cuts, NaN and -inf logits, under temperature, top-k, top-p, min-p and their
 * combinations; and the distribution's own cuts checked by hand.
 */
class SamplingTest {
    static final int VOCAB = 37;

    /** Rows of logits of the kinds the tests draw from. */
    static List<float[]> rows() {
        Random random = new Random(5);
        float[] skewed = new float[VOCAB], flat = new float[VOCAB], ties = new float[VOCAB], holes = new float[VOCAB];
        for (int i = 0; i < VOCAB; i++) {
            skewed[i] = (float) (3 * random.nextGaussian());
            flat[i] = 0.25f;
            ties[i] = i % 4 == 0 ? 2f : i % 3 == 0 ? 1f : -1f; // ten tokens tied on top, then ties below
            holes[i] = i % 5 == 0 ? Float.NaN : i % 7 == 0 ? Float.NEGATIVE_INFINITY : (float) random.nextGaussian();
        }
        return List.of(skewed, flat, ties, holes);
    }

    static List<SamplingOptions> options() {
        return List.of(new SamplingOptions(1f, 0, 1f, 0f, 0), new SamplingOptions(0.7f, 5, 1f, 0f, 0), new SamplingOptions(1.3f, 0, 0.8f, 0f, 0),
                new SamplingOptions(1f, 0, 1f, 0.1f, 0), new SamplingOptions(0.9f, 12, 0.9f, 0.05f, 0));
    }

    /** {@code draws} rows of {@code logits}, seed 1000 + r, offset 3: the ids drawn on {@code backend}, after checking the offsets moved on. */
    static long[] draw(Backend backend, float[] logits, SamplingOptions options, int draws) {
        float[] all = new float[draws * logits.length];
        long[] seeds = new long[draws], offsets = new long[draws];
        for (int r = 0; r < draws; r++) {
            System.arraycopy(logits, 0, all, r * logits.length, logits.length);
            seeds[r] = 1000 + r;
            offsets[r] = 3;
        }
        try (Tensor hostLogits = Tensor.fromFloats(DType.F32, all, draws, logits.length);
             Tensor l = backend.copyOf(hostLogits); Tensor s = upload(backend, seeds);
             Tensor o = upload(backend, offsets); Tensor ids = backend.allocate(DType.I32, draws)) {
            Sampling.sample(backend, ids, null, l, options, s, o);
            try (Tensor moved = backend.toHost(o); Tensor drawn = backend.toHost(ids)) {
                assertTrue(Arrays.stream(moved.toLongArray()).allMatch(v -> v == 4), "every offset incremented");
                return drawn.toLongArray();
            }
        }
    }

    static Tensor upload(Backend backend, long[] values) {
        try (Tensor host = Tensor.fromLongs(DType.I64, values, values.length)) {
            return backend.copyOf(host);
        }
    }

    @Test
    void drawnFrequenciesMatchTheDistribution() {
        int draws = 20_000;
        for (float[] logits : rows()) {
            for (SamplingOptions options : options()) {
                long[] counts = new long[VOCAB];
                for (long id : draw(Backend.cpu(), logits, options, draws)) counts[(int) id]++;
                ChiSquare.assertFits(Arrays.toString(Arrays.copyOf(logits, 4)) + "... " + options, counts,
                        Sampler.distribution(logits, options).dense(VOCAB));
            }
        }
    }

    @Test
    void theCutsKeepWhatTheyShould() {
        float[] logits = {(float) Math.log(0.5), (float) Math.log(0.2), (float) Math.log(0.2), (float) Math.log(0.06), (float) Math.log(0.04)};
        // top-k 2: token 0 and the lower of the tied 1 and 2
        assertArrayEquals(new int[] {0, 1}, Sampler.distribution(logits, new SamplingOptions(1f, 2, 1f, 0f, 0)).ids());
        // top-p 0.85: 0.5 + 0.2 + 0.2 reaches it at the third token
        assertArrayEquals(new int[] {0, 1, 2}, Sampler.distribution(logits, new SamplingOptions(1f, 0, 0.85f, 0f, 0)).ids());
        // min-p 0.1: tokens of at least 0.05 (a tenth of 0.5)
        Sampler.Distribution minP = Sampler.distribution(logits, new SamplingOptions(1f, 0, 1f, 0.1f, 0));
        assertArrayEquals(new int[] {0, 1, 2, 3}, minP.ids());
        assertEquals(0.5 / 0.96, minP.of(0), 1e-6);
        float[] holes = {Float.NaN, 1f, Float.NEGATIVE_INFINITY, 1f, Float.NaN};
        assertArrayEquals(new int[] {1, 3}, Sampler.distribution(holes, new SamplingOptions(1f, 0, 1f, 0f, 0)).ids(), "NaN and -inf never kept");
        // Nothing drawable: the argmax, as greedy picks it (NaN ignored, so the -inf).
        float[] nothing = {Float.NaN, Float.NEGATIVE_INFINITY};
        assertArrayEquals(new int[] {1}, Sampler.distribution(nothing, new SamplingOptions(1f, 0, 1f, 0f, 0)).ids());
        assertArrayEquals(new long[] {1, 1, 1}, draw(Backend.cpu(), nothing, new SamplingOptions(1f, 0, 1f, 0f, 0), 3));
    }

    @Test
    void theSameSeedAndOffsetDrawTheSameToken() {
        float[] logits = rows().getFirst();
        SamplingOptions options = new SamplingOptions(1.5f, 0, 1f, 0f, 0);
        assertArrayEquals(draw(Backend.cpu(), logits, options, 64), draw(Backend.cpu(), logits, options, 64));
    }

    @Test
    void badInputIsRefusedByName() {
        Backend cpu = Backend.cpu();
        try (Tensor logits = Tensor.allocateHost(DType.F32, 2, 5); Tensor ids = Tensor.allocateHost(DType.I32, 2);
             Tensor seeds = Tensor.allocateHost(DType.I64, 2); Tensor offsets = Tensor.allocateHost(DType.I64, 2);
             Tensor wrongIds = Tensor.allocateHost(DType.I64, 2); Tensor shortSeeds = Tensor.allocateHost(DType.I64, 1);
             Tensor halfLogits = Tensor.allocateHost(DType.BF16, 2, 5)) {
            SamplingOptions t1 = new SamplingOptions(1f, 0, 1f, 0f, 0);
            Expect.illegalArgument("greedy", () -> Sampling.sample(cpu, ids, null, logits, SamplingOptions.greedy(), seeds, offsets));
            Expect.illegalArgument("ids must be i32", () -> Sampling.sample(cpu, wrongIds, null, logits, t1, seeds, offsets));
            Expect.illegalArgument("seeds", () -> Sampling.sample(cpu, ids, null, logits, t1, shortSeeds, offsets));
            Expect.illegalArgument("logits must be f32", () -> Sampling.sample(cpu, ids, null, halfLogits, t1, seeds, offsets));
            Expect.illegalArgument("options is null", () -> Sampling.sample(cpu, ids, null, logits, null, seeds, offsets));
            Expect.illegalArgument("minP", () -> new SamplingOptions(1f, 0, 1f, 1.5f, 0));
        }
    }
}
