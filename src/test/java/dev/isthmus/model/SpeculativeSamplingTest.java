package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.testing.ChiSquare;
import org.junit.jupiter.api.Test;

/**
 * The acceptance rule leaves every emitted token distributed as the target's p, whatever the
 * drafter's q: chi-square tests over many rounds at fixed seeds, for a sampling drafter whose q is
 * far from p, for a drafter proposing without distributions, and at the second position.
 */
class SpeculativeSamplingTest {
    private static final int VOCAB = 7;
    /** Target distributions over 7 tokens: skewed with a tie, and one with a -inf logit (token 6 impossible). */
    private static final float[] P0 = {2.0f, 0.5f, 0.5f, -1f, 1.2f, 0f, -3f};
    private static final float[] P1 = {0f, 1.5f, -0.5f, 1.5f, 0.2f, -2f, Float.NEGATIVE_INFINITY};
    /** The drafter's, nearly opposite. */
    private static final float[] Q0 = {-2f, 1f, 0f, 2f, -1f, 0.5f, 1f};
    private static final float[] Q1 = {1f, -1f, 2f, 0f, 0f, 1f, 0f};

    private static final SamplingOptions T1 = new SamplingOptions(1f, 0, 1f, 17);

    @Test
    void aSamplingDrafterLeavesBothPositionsDistributedAsTheTarget() {
        Sampler target = new Sampler(T1, 0), drafter = new Sampler(T1, 99);
        Sampler.Distribution[] p = {target.distribution(P0), target.distribution(P1), target.distribution(P0)};
        Sampler.Distribution q0 = drafter.distribution(Q0), q1 = drafter.distribution(Q1);
        long[] first = new long[VOCAB], second = new long[VOCAB];
        int rounds = 60_000;
        for (int r = 0; r < rounds; r++) {
            Drafter.Draft draft = new Drafter.Draft(new int[] {drafter.draw(q0), drafter.draw(q1)}, new double[][] {q0.dense(VOCAB), q1.dense(VOCAB)});
            int[] out = SpeculativeSampling.verify(p, draft, target);
            first[out[0]]++;
            if (out.length > 1) second[out[1]]++;
        }
        ChiSquare.assertFits("first emitted token", first, p[0].dense(VOCAB));
        ChiSquare.assertFits("second emitted token", second, p[1].dense(VOCAB));
    }

    @Test
    void aDrafterWithoutDistributionsLeavesTheTargetsToo() {
        Sampler target = new Sampler(T1, 3);
        Sampler.Distribution[] p = {target.distribution(P0), target.distribution(P1)};
        for (int drafted : new int[] {0, 3, 6}) { // the mode, a token of small probability, an impossible one
            long[] first = new long[VOCAB];
            for (int r = 0; r < 40_000; r++) first[SpeculativeSampling.verify(p, new Drafter.Draft(new int[] {drafted}, null), target)[0]]++;
            ChiSquare.assertFits("first token after drafting " + drafted, first, p[0].dense(VOCAB));
        }
    }

    @Test
    void topKAndTopPRestrictTheTargetAndTheRuleKeepsTheRestriction() {
        Sampler target = new Sampler(new SamplingOptions(0.8f, 3, 0.9f, 5), 0), drafter = new Sampler(T1, 1);
        Sampler.Distribution[] p = {target.distribution(P0), target.distribution(P1)};
        Sampler.Distribution q = drafter.distribution(Q0);
        long[] first = new long[VOCAB];
        for (int r = 0; r < 40_000; r++)
            first[SpeculativeSampling.verify(p, new Drafter.Draft(new int[] {drafter.draw(q)}, new double[][] {q.dense(VOCAB)}), target)[0]]++;
        ChiSquare.assertFits("restricted target", first, p[0].dense(VOCAB));
    }

    /** At temperature 0 the rule is greedy decoding: drafts kept while they are the argmax, then the argmax. */
    @Test
    void temperatureZeroKeepsExactlyTheArgmaxPrefix() {
        Sampler greedy = new Sampler(SamplingOptions.greedy(), 0);
        Sampler.Distribution[] p = {greedy.distribution(P0), greedy.distribution(P1), greedy.distribution(P0)};
        // argmax(P0) = 0; argmax(P1) = 1 (the lower id of the tie with 3)
        double[][] anyQ = {new Sampler(T1, 0).distribution(Q0).dense(VOCAB), new Sampler(T1, 0).distribution(Q1).dense(VOCAB)};
        for (int r = 0; r < 50; r++) {
            assertArrayEquals(new int[] {0, 1, 0}, SpeculativeSampling.verify(p, new Drafter.Draft(new int[] {0, 1}, anyQ), greedy));
            assertArrayEquals(new int[] {0, 1}, SpeculativeSampling.verify(p, new Drafter.Draft(new int[] {0, 3}, null), greedy));
            assertArrayEquals(new int[] {0}, SpeculativeSampling.verify(p, new Drafter.Draft(new int[] {4, 1}, anyQ), greedy));
        }
    }

    @Test
    void theResidualIsWhatPHasAboveQ() {
        Sampler.Distribution p = new Sampler.Distribution(new int[] {2, 0, 1}, new double[] {0.5, 0.3, 0.2});
        Sampler.Distribution r = SpeculativeSampling.residual(p, new double[] {0.1, 0.4, 0.5}, 2);
        // max(0, p - q): token 2 0, token 0 0.2, token 1 0 -> all on token 0
        assertEquals(1.0, r.of(0), 1e-12);
        Sampler.Distribution pointMass = SpeculativeSampling.residual(p, null, 2);
        assertEquals(0.6, pointMass.of(0), 1e-12);
        assertEquals(0.0, pointMass.of(2), 1e-12);
        assertEquals(p, SpeculativeSampling.residual(p, new double[] {0.3, 0.2, 0.5}, 2), "p = q leaves p");
    }
}
