package dev.isthmus.model;

import java.util.Arrays;
import java.util.Random;

/** Draws tokens from logits as {@link SamplingOptions} say; one sampler per sequence, so a seed reproduces it. */
public final class Sampler {
    private final SamplingOptions options;
    private final Random random;

    public Sampler(SamplingOptions options, long seedOffset) {
        if (options == null) throw new IllegalArgumentException("options is null");
        this.options = options;
        this.random = new Random(options.seed() + seedOffset);
    }

    /**
     * The distribution this sampler draws from: softmax(logits / temperature) over the kept tokens
     * (the topK largest, then the shortest prefix reaching topP), {@code ids} largest first with
     * their probabilities {@code p} summing to one. Greedy: the argmax with probability one.
     */
    public record Distribution(int[] ids, double[] p) {
        /** The probability of {@code token} (0 outside the kept tokens). */
        public double of(int token) {
            for (int i = 0; i < ids.length; i++) if (ids[i] == token) return p[i];
            return 0;
        }

        /** As a dense row over a vocabulary of {@code vocab}. */
        public double[] dense(int vocab) {
            double[] row = new double[vocab];
            for (int i = 0; i < ids.length; i++) row[ids[i]] = p[i];
            return row;
        }
    }

    public Distribution distribution(float[] logits) {
        return distribution(logits, options);
    }

    /**
     * The distribution {@code options} say to draw from: softmax(logits / temperature), NaN logits
     * weighing nothing, restricted to the topK largest (ties to the lower id), then to the shortest
     * prefix of those, largest first, whose probability reaches topP, then to the tokens weighing at
     * least minP times the largest; renormalised. A row with no finite logit, and greedy options,
     * give one token with probability one: the argmax (NaN ignored; token 0 for a row of NaN).
     */
    public static Distribution distribution(float[] logits, SamplingOptions options) {
        if (logits.length == 0) throw new IllegalArgumentException("no logits to sample from");
        int best = argmax(logits);
        if (options.isGreedy() || !(logits[best] > Float.NEGATIVE_INFINITY)) return new Distribution(new int[] {best}, new double[] {1});
        int[] order = descending(logits);
        int keep = options.topK() == 0 ? order.length : Math.min(options.topK(), order.length);
        // softmax over the kept logits / temperature, largest first
        double[] p = new double[keep];
        double max = logits[order[0]] / (double) options.temperature(), sum = 0;
        for (int i = 0; i < keep; i++) {
            float l = logits[order[i]];
            sum += p[i] = Float.isNaN(l) ? 0 : Math.exp(l / (double) options.temperature() - max);
        }
        // nucleus: the shortest prefix whose probability reaches topP
        double cumulative = 0;
        int nucleus = keep;
        for (int i = 0; i < keep; i++) {
            cumulative += p[i] / sum;
            if (cumulative >= options.topP()) {
                nucleus = i + 1;
                break;
            }
        }
        // min-p: p[0] is the largest, weighing exp(0) = 1
        int n = 0;
        int[] ids = new int[nucleus];
        double[] kept = new double[nucleus];
        double total = 0;
        for (int i = 0; i < nucleus; i++) {
            if (p[i] < options.minP() || p[i] == 0) continue;
            ids[n] = order[i];
            total += kept[n++] = p[i];
        }
        for (int i = 0; i < n; i++) kept[i] /= total;
        return new Distribution(Arrays.copyOf(ids, n), Arrays.copyOf(kept, n));
    }

    public int sample(float[] logits) {
        if (logits.length == 0) throw new IllegalArgumentException("no logits to sample from");
        if (options.isGreedy()) return argmax(logits);
        return draw(distribution(logits));
    }

    /** A token drawn from {@code d} with this sampler's generator. */
    int draw(Distribution d) {
        double r = random.nextDouble();
        for (int i = 0; i < d.ids().length; i++) {
            r -= d.p()[i];
            if (r < 0) return d.ids()[i];
        }
        return d.ids()[d.ids().length - 1];
    }

    /** A uniform number in [0, 1) from this sampler's generator (speculative decoding's acceptance test). */
    double uniform() {
        return random.nextDouble();
    }

    /**
     * Token ids by decreasing logit, lower id first on ties, NaN last: each (logit, id) packed into one long
     * whose natural order is that order, so one primitive sort does it (a vocabulary of 10^5 in a
     * few milliseconds).
     */
    private static int[] descending(float[] logits) {
        long[] keys = new long[logits.length];
        for (int i = 0; i < logits.length; i++) {
            int bits = Float.floatToIntBits(Float.isNaN(logits[i]) ? Float.NEGATIVE_INFINITY : logits[i]);  // NaN after every number
            int ordered = bits ^ ((bits >> 31) & 0x7fffffff);  // ints ordered as the floats are
            keys[i] = ((long) ~ordered << 32) | i;               // ~ reverses the order without overflow
        }
        Arrays.sort(keys);
        int[] order = new int[keys.length];
        for (int i = 0; i < keys.length; i++) order[i] = (int) keys[i];
        return order;
    }

    /** The index of the largest value, the lowest on ties; NaNs are ignored (only NaNs: 0). */
    static int argmax(float[] logits) {
        int best = -1;
        for (int i = 0; i < logits.length; i++)
            if (!Float.isNaN(logits[i]) && (best < 0 || logits[i] > logits[best])) best = i;
        return Math.max(best, 0);
    }
}
