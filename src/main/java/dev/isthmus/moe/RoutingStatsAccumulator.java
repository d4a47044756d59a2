package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * Routing statistics summed over many batches on the host: tokens per expert, the
 * token-weighted mean router probability and losses, and optionally, per caller-given token key
 * (a vocabulary id, a position bucket ...), how often each expert fired for it — the "which
 * expert fires for which tokens" table. Each {@code add} copies the batch's small tensors to the
 * host, so it waits for the batch.
 */
public final class RoutingStatsAccumulator {
    private final int experts;
    private final long[] pairsPerExpert;
    private final double[] probabilitySum;
    private final Map<Long, long[]> expertsByKey = new HashMap<>();
    private double zLossSum;
    private long tokens;
    private long pairs;
    private int batches;

    public RoutingStatsAccumulator(int experts) {
        if (experts < 1) throw new IllegalArgumentException("experts must be positive, got " + experts);
        this.experts = experts;
        this.pairsPerExpert = new long[experts];
        this.probabilitySum = new double[experts];
    }

    /** Adds one batch of {@code tokens} tokens: its aligned routing and its {@link RouterStats}. */
    public void add(Backend backend, Dispatch.Buffers routing, RouterStats.Result stats, long tokens) {
        if (routing.experts() != experts) throw new IllegalArgumentException("routing has " + routing.experts() + " experts, expected " + experts);
        if (tokens < 0 || routing.pairs() % Math.max(tokens, 1) != 0)
            throw new IllegalArgumentException("tokens " + tokens + " does not divide the " + routing.pairs() + " routed pairs");
        try (Tensor counts = host(backend, routing.expertCounts());
             Tensor mean = host(backend, stats.meanProbability());
             Tensor z = host(backend, stats.zLoss())) {
            long[] c = counts.toLongArray();
            float[] p = mean.toFloatArray();
            if (p.length != experts) throw new IllegalArgumentException("stats has " + p.length + " experts, expected " + experts);
            for (int e = 0; e < experts; e++) {
                pairsPerExpert[e] += c[e];
                probabilitySum[e] += (double) p[e] * tokens;
            }
            zLossSum += (double) z.toFloatArray()[0] * tokens;
        }
        this.tokens += tokens;
        this.pairs += routing.pairs();
        batches++;
    }

    /** Counts, for each key[t], the experts that token t's ids (T, k) chose. */
    public void addByKey(Backend backend, Tensor ids, long[] keys) {
        try (Tensor hostIds = host(backend, ids)) {
            long[] id = hostIds.toLongArray();
            if (keys.length == 0 || id.length % keys.length != 0)
                throw new IllegalArgumentException("keys has " + keys.length + " entries for " + id.length + " routed pairs");
            int k = id.length / keys.length;
            for (int t = 0; t < keys.length; t++) {
                long[] row = expertsByKey.computeIfAbsent(keys[t], key -> new long[experts]);
                for (int s = 0; s < k; s++) {
                    long e = id[t * k + s];
                    if (e < 0 || e >= experts) throw new IllegalArgumentException("ids[" + t + ", " + s + "] = " + e + " is out of range");
                    row[(int) e]++;
                }
            }
        }
    }

    public long[] pairsPerExpert() {
        return pairsPerExpert.clone();
    }

    /** P_e over every token added. */
    public double[] meanProbability() {
        double[] p = new double[experts];
        for (int e = 0; e < experts; e++) p[e] = tokens == 0 ? 0 : probabilitySum[e] / tokens;
        return p;
    }

    /** The load-balancing loss E * sum f_e P_e over everything added (balanced = 1). */
    public double auxLoss() {
        double[] p = meanProbability();
        double sum = 0;
        for (int e = 0; e < experts; e++) sum += pairs == 0 ? 0 : (double) pairsPerExpert[e] / pairs * p[e];
        return experts * sum;
    }

    public double zLoss() {
        return tokens == 0 ? 0 : zLossSum / tokens;
    }

    /** How often each expert fired for tokens with this key (zeros if never seen). */
    public long[] expertsFor(long key) {
        long[] row = expertsByKey.get(key);
        return row == null ? new long[experts] : row.clone();
    }

    public long tokens() {
        return tokens;
    }

    public int batches() {
        return batches;
    }

    @Override
    public String toString() {
        return "RoutingStatsAccumulator[batches=" + batches + ", tokens=" + tokens + ", pairsPerExpert="
                + Arrays.toString(pairsPerExpert) + ", auxLoss=" + auxLoss() + ", zLoss=" + zLoss() + "]";
    }

    private static Tensor host(Backend backend, Tensor t) {
        if (t.isHost()) return t.reshape(t.shape()); // a view: closing it leaves t open
        return backend.toHost(t);
    }
}
