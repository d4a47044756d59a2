package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.testing.Expect;
import org.junit.jupiter.api.Test;

/** Sampling statistics with a seed: frequencies follow the softmax, and top-k / top-p cut where they should. */
class SamplerTest {
    static final float[] LOGITS = {(float) Math.log(0.5), (float) Math.log(0.3), (float) Math.log(0.15), (float) Math.log(0.05)};

    private static double[] frequencies(SamplingOptions options, float[] logits, int draws) {
        Sampler sampler = new Sampler(options, 0);
        double[] f = new double[logits.length];
        for (int i = 0; i < draws; i++) f[sampler.sample(logits)] += 1.0 / draws;
        return f;
    }

    @Test
    void temperatureOneFollowsTheSoftmax() {
        double[] f = frequencies(new SamplingOptions(1f, 0, 1f, 42), LOGITS, 40_000);
        double[] p = {0.5, 0.3, 0.15, 0.05};
        for (int i = 0; i < p.length; i++) assertEquals(p[i], f[i], 0.01, "token " + i);
    }

    @Test
    void temperatureSharpensTheDistribution() {
        // temperature 0.5 squares the probabilities before renormalising: 0.25, 0.09, 0.0225, 0.0025 over 0.365
        double[] f = frequencies(new SamplingOptions(0.5f, 0, 1f, 7), LOGITS, 40_000);
        assertEquals(0.25 / 0.365, f[0], 0.01);
        assertEquals(0.09 / 0.365, f[1], 0.01);
    }

    @Test
    void topKAndTopPCut() {
        double[] topK = frequencies(new SamplingOptions(1f, 2, 1f, 1), LOGITS, 20_000);
        assertEquals(0.5 / 0.8, topK[0], 0.015);
        assertEquals(0.0, topK[2] + topK[3]);
        // the nucleus reaching 0.79 is tokens 0 and 1 (0.5 + 0.3)
        double[] topP = frequencies(new SamplingOptions(1f, 0, 0.79f, 1), LOGITS, 20_000);
        assertEquals(0.5 / 0.8, topP[0], 0.015);
        assertEquals(0.0, topP[2] + topP[3]);
        assertEquals(1.0, frequencies(new SamplingOptions(1f, 0, 0.4f, 1), LOGITS, 100)[0], 1e-9);
    }

    /** Top-1 sampling is greedy whatever the temperature, negative logits and ties included. */
    @Test
    void topOneIsTheLargestLogitWithTheLowestId() {
        Sampler topOne = new Sampler(new SamplingOptions(2f, 1, 1f, 5), 0);
        float[] logits = {-3f, -0.5f, -7f, -0.5f, -1e-30f, -0.25f, Float.NEGATIVE_INFINITY};
        for (int i = 0; i < 20; i++) assertEquals(4, topOne.sample(logits));
        assertEquals(1, topOne.sample(new float[] {-2f, 5f, 5f, -1f}));
    }

    @Test
    void greedyTakesTheLowestIdOfTheLargestLogit() {
        Sampler greedy = new Sampler(SamplingOptions.greedy(), 0);
        assertEquals(2, greedy.sample(new float[] {0f, 1f, 3f, 3f, -1f}));
    }

    @Test
    void aSeedReproducesTheDrawsAndAnotherSeedDoesNot() {
        SamplingOptions options = new SamplingOptions(1.3f, 3, 0.95f, 99);
        int[] a = draws(new Sampler(options, 0)), b = draws(new Sampler(options, 0)), c = draws(new Sampler(options, 1));
        assertArrayEquals(a, b);
        org.junit.jupiter.api.Assertions.assertFalse(java.util.Arrays.equals(a, c));
    }

    private static int[] draws(Sampler s) {
        int[] out = new int[64];
        for (int i = 0; i < out.length; i++) out[i] = s.sample(LOGITS);
        return out;
    }

    @Test
    void badOptionsAreNamed() {
        Expect.illegalArgument("temperature", () -> new SamplingOptions(-1f, 0, 1f, 0));
        Expect.illegalArgument("topK", () -> new SamplingOptions(1f, -1, 1f, 0));
        Expect.illegalArgument("topP", () -> new SamplingOptions(1f, 0, 0f, 0));
    }
}
