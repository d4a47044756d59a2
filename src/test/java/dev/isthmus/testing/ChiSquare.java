package dev.isthmus.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Pearson's chi-square goodness-of-fit test of drawn counts against expected probabilities, at a
 * significance of 0.001 (a correct sampler fails one seed in a thousand; the seeds are fixed, so a
 * test either always passes or always fails). Categories expected fewer than 5 times are pooled
 * into one, as the test's approximation needs.
 */
public final class ChiSquare {
    private ChiSquare() {}

    /** Fails unless {@code counts} (of {@code draws} draws) fit {@code p}; a draw where p is 0 fails at once. */
    public static void assertFits(String what, long[] counts, double[] p) {
        long draws = 0;
        for (long c : counts) draws += c;
        double statistic = 0, pooledExpected = 0, pooledCount = 0;
        int categories = 0;
        for (int i = 0; i < p.length; i++) {
            double expected = p[i] * draws;
            if (p[i] == 0) {
                assertTrue(counts[i] == 0, what + ": drew category " + i + " " + counts[i] + " times; its probability is 0");
                continue;
            }
            if (expected < 5) {
                pooledExpected += expected;
                pooledCount += counts[i];
                continue;
            }
            statistic += (counts[i] - expected) * (counts[i] - expected) / expected;
            categories++;
        }
        if (pooledExpected > 0) {
            statistic += (pooledCount - pooledExpected) * (pooledCount - pooledExpected) / pooledExpected;
            categories++;
        }
        int df = Math.max(1, categories - 1);
        double critical = critical(df);
        assertTrue(statistic <= critical, what + ": chi-square " + statistic + " over " + critical + " (" + df + " degrees of freedom, "
                + draws + " draws)");
    }

    /** The 0.999 quantile of chi-square with df degrees of freedom (Wilson-Hilferty; within 1% from df 3 on, conservative below). */
    static double critical(int df) {
        if (df == 1) return 10.83;
        if (df == 2) return 13.82;
        double z = 3.0902, a = 2.0 / (9 * df);
        return df * Math.pow(1 - a + z * Math.sqrt(a), 3);
    }
}
