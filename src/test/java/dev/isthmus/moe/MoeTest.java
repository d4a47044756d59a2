package dev.isthmus.moe;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The MoE stages and layer on the CPU backend, against hand-worked cases and independent computations. */
class MoeTest {
    private static final Backend CPU = Backend.cpu();

    // ---- router ------------------------------------------------------------------------------------

    @Test
    void softmaxTopKRenormalizedIsTheSoftmaxOfTheChosenLogits() {
        try (Tensor logits = Tensor.fromFloats(DType.F32, new float[] {1, 2, 3, 0}, 1, 4);
             Tensor w = Tensor.allocateHost(DType.F32, 1, 2); Tensor ids = Tensor.allocateHost(DType.I32, 1, 2)) {
            Router.topK(CPU, w, ids, logits, null, RouterConfig.softmax(4, 2, true));
            assertArrayEquals(new long[] {2, 1}, ids.toLongArray());
            double e = Math.E;
            assertArrayEquals(new float[] {(float) (e / (e + 1)), (float) (1 / (e + 1))}, w.toFloatArray(), 1e-6f);
            Router.topK(CPU, w, ids, logits, null, RouterConfig.softmax(4, 2, false));
            double sum = Math.exp(1) + Math.exp(2) + Math.exp(3) + 1;
            assertArrayEquals(new float[] {(float) (Math.exp(3) / sum), (float) (Math.exp(2) / sum)}, w.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void tiesGoToTheLowerExpertAndTheLowerGroup() {
        try (Tensor logits = Tensor.fromFloats(DType.F32, new float[] {0, 5, 5, 0, 5, 5, 0, 0}, 1, 8);
             Tensor w = Tensor.allocateHost(DType.F32, 1, 3); Tensor ids = Tensor.allocateHost(DType.I32, 1, 3)) {
            Router.topK(CPU, w, ids, logits, null, RouterConfig.softmax(8, 3, true));
            assertArrayEquals(new long[] {1, 2, 4}, ids.toLongArray());
            // Groups {0,1} {2,3} {4,5} {6,7} score 5, 5, 10, 0 (softmax-space equivalents): group 2 first, then group 0 over 1.
            Router.topK(CPU, w, ids, logits, null, new RouterConfig(8, 3, RouterConfig.Scoring.SOFTMAX, true, 4, 2, 1f));
            assertArrayEquals(new long[] {1, 4, 5}, ids.toLongArray());
        }
    }

    @Test
    void sigmoidBiasChoosesButDoesNotWeigh() {
        float[] z = {2f, 0f, -1f, 1f};
        try (Tensor logits = Tensor.fromFloats(DType.F32, z, 1, 4);
             Tensor bias = Tensor.fromFloats(DType.F32, new float[] {0, 0.9f, 0, 0}, 4);
             Tensor w = Tensor.allocateHost(DType.F32, 1, 2); Tensor ids = Tensor.allocateHost(DType.I32, 1, 2)) {
            RouterConfig c = new RouterConfig(4, 2, RouterConfig.Scoring.SIGMOID, false, 1, 1, 2f);
            Router.topK(CPU, w, ids, logits, bias, c);
            // choice: sigmoid + bias = 0.881, 1.4, 0.269, 0.731 -> experts 1 then 0
            assertArrayEquals(new long[] {1, 0}, ids.toLongArray());
            assertArrayEquals(new float[] {(float) (2 * sigmoid(0)), (float) (2 * sigmoid(2))}, w.toFloatArray(), 1e-6f);
            Router.topK(CPU, w, ids, logits, bias, new RouterConfig(4, 2, RouterConfig.Scoring.SIGMOID, true, 1, 1, 2f));
            double total = sigmoid(0) + sigmoid(2);
            assertArrayEquals(new float[] {(float) (2 * sigmoid(0) / total), (float) (2 * sigmoid(2) / total)}, w.toFloatArray(), 1e-6f);
        }
    }

    @Test
    void groupedTopKKeepsOnlyTheBestGroups() {
        // Group 0 holds the single best expert but a weak second; groups score best + second.
        float[] z = {4f, -4f, 2f, 2f, 1.5f, 1.5f, -3f, -3f};
        try (Tensor logits = Tensor.fromFloats(DType.F32, z, 1, 8);
             Tensor w = Tensor.allocateHost(DType.F32, 1, 2); Tensor ids = Tensor.allocateHost(DType.I32, 1, 2)) {
            Router.topK(CPU, w, ids, logits, null, RouterConfig.sigmoidGrouped(8, 2, 4, 1, 1f));
            assertArrayEquals(new long[] {2, 3}, ids.toLongArray());
            Router.topK(CPU, w, ids, logits, null, RouterConfig.sigmoidGrouped(8, 2, 4, 2, 1f));
            assertArrayEquals(new long[] {2, 3}, ids.toLongArray(), "groups 1 and 2 (pairs of strong experts) beat group 0 (one strong, one weak)");
            Router.topK(CPU, w, ids, logits, null, RouterConfig.sigmoidGrouped(8, 2, 1, 1, 1f));
            assertArrayEquals(new long[] {0, 2}, ids.toLongArray(), "one group: plain top-k");
        }
    }

    @Test
    void renormalizedSoftmaxEqualsTheSoftmaxOverTheTopKLogitsOnRandomRows() {
        Random random = new Random(5);
        int tokens = 17, e = 64, k = 8;
        try (Tensor logits = RandomTensors.normal(random, DType.F32, 2f, tokens, e);
             Tensor w = Tensor.allocateHost(DType.F32, tokens, k); Tensor ids = Tensor.allocateHost(DType.I32, tokens, k)) {
            Router.topK(CPU, w, ids, logits, null, RouterConfig.softmax(e, k, true));
            float[] z = logits.toFloatArray(), ws = w.toFloatArray();
            long[] id = ids.toLongArray();
            for (int t = 0; t < tokens; t++) {
                float[] row = Arrays.copyOfRange(z, t * e, (t + 1) * e);
                float[] sorted = row.clone();
                Arrays.sort(sorted);
                double denominator = 0;
                for (int s = 0; s < k; s++) denominator += Math.exp(row[(int) id[t * k + s]]);
                for (int s = 0; s < k; s++) {
                    assertEquals(sorted[e - 1 - s], row[(int) id[t * k + s]], "slot " + s + " holds the " + s + "-th largest logit");
                    assertEquals(Math.exp(row[(int) id[t * k + s]]) / denominator, ws[t * k + s], 1e-6);
                }
            }
        }
    }

    // ---- dispatch ----------------------------------------------------------------------------------

    @Test
    void alignGroupsEveryPairOnceInPaddedAscendingSegments() {
        Random random = new Random(6);
        for (int tokens : MoeFixtures.TOKENS)
            for (int[] ek : new int[][] {{1, 1}, {8, 2}, {64, 8}, {256, 8}}) {
                int e = ek[0], k = ek[1], pairs = tokens * k, tile = 32;
                long[] id = new long[pairs];
                for (int p = 0; p < pairs; p++) id[p] = random.nextInt(e) / 2 * 2; // odd experts receive nothing
                try (Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k);
                     Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, tokens, k, e, tile)) {
                    Dispatch.align(CPU, d, ids);
                    checkAligned(id, e, tile, d);
                }
            }
    }

    /** Every invariant the GEMMs rely on, checked from the raw ids. */
    static void checkAligned(long[] id, int experts, int tile, Dispatch.Buffers d) {
        int pairs = id.length;
        long[] sorted = d.sortedPairs().toLongArray(), tiles = d.tileExperts().toLongArray(), counts = d.expertCounts().toLongArray();
        long total = d.paddedTotal().toLongArray()[0];
        assertEquals(Dispatch.Buffers.capacity(pairs, experts, tile), sorted.length);
        assertTrue(total <= sorted.length && total % tile == 0, "padded total " + total);
        int[] expected = new int[experts];
        for (long e : id) expected[(int) e]++;
        boolean[] seen = new boolean[pairs];
        for (int pos = 0; pos < sorted.length; pos++) {
            long expert = pos < total ? tiles[pos / tile] : -1;
            int pair = (int) sorted[pos];
            if (pair == pairs) continue;
            assertTrue(pos < total && pair >= 0 && pair < pairs && !seen[pair], "pair " + pair + " at " + pos);
            seen[pair] = true;
            assertEquals(id[pair], expert, "pair " + pair + " sits in expert " + expert + "'s segment");
            if (pos > 0 && sorted[pos - 1] != pairs && tiles[(pos - 1) / tile] == expert)
                assertTrue(sorted[pos - 1] < pair, "ascending within a segment");
        }
        for (int p = 0; p < pairs; p++) assertTrue(seen[p], "pair " + p + " listed");
        for (int e = 0; e < experts; e++) {
            assertEquals(expected[e], counts[e], "count of expert " + e);
            final long expert = e;
            long tilesOfE = Arrays.stream(tiles).filter(x -> x == expert).count();
            assertEquals((expected[e] + tile - 1) / tile, tilesOfE, "tiles of expert " + e);
        }
        for (int t = 0; t < tiles.length; t++) assertEquals(t * (long) tile < total, tiles[t] >= 0, "tile " + t);
    }

    // ---- the layer ---------------------------------------------------------------------------------

    @Test
    void theStagesComposeToThePlainLoopOnAwkwardShapes() {
        Random random = new Random(7);
        for (RouterConfig c : MoeFixtures.configs())
            for (int tokens : MoeFixtures.TOKENS)
                for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                    if (tokens == 1000 && dtype == DType.BF16 && c.experts() < 64) continue; // keep the suite fast
                    int hidden = 24, inter = 37; // neither a multiple of the 32-row tile
                    try (MoeFixtures.Layer l = MoeFixtures.layer(random, dtype, tokens, hidden, inter, c, c.scoring() == RouterConfig.Scoring.SIGMOID);
                         Tensor residual = RandomTensors.normal(random, dtype, 1f, tokens, hidden);
                         Tensor out = Tensor.allocateHost(dtype, tokens, hidden);
                         Tensor expected = Tensor.allocateHost(dtype, tokens, hidden);
                         MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, dtype, c)) {
                        CPU.poison(out);
                        MoeLayer.forward(CPU, out, l.x(), l.weights(), c, null, residual, ws);
                        MoeLayer.reference(expected, l.x(), l.weights(), c, null, residual);
                        Compare.Result r = Compare.check(c + " T=" + tokens + " " + dtype.label(), out, expected, dtype == DType.F32 ? 1e-6 : 1e-2);
                        assertTrue(r.withinBound(), r.toString());
                    }
                }
    }

    @Test
    void oneExpertTopOneIsADenseSwiGluFfn() {
        Random random = new Random(8);
        int tokens = 17, hidden = 24, inter = 37;
        RouterConfig c = RouterConfig.softmax(1, 1, true);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.F32, tokens, hidden, inter, c, false);
             Tensor out = Tensor.allocateHost(DType.F32, tokens, hidden);
             Tensor dense = Tensor.allocateHost(DType.F32, tokens, hidden);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, DType.F32, c)) {
            MoeLayer.forward(CPU, out, l.x(), l.weights(), c, null, null, ws);
            denseSwiGlu(dense, l.x(), l.weights().gateUp().reshape(2L * inter, hidden), l.weights().down().reshape(hidden, inter), 1f);
            Compare.Result r = Compare.check("E=1 k=1 vs dense", out, dense, 1e-6);
            assertTrue(r.withinBound(), r.toString());
            float[] w = ws.weights().toFloatArray();
            for (float v : w) assertEquals(1f, v, "the only expert's weight");
        }
    }

    /** y = scale * (silu(x W1^T) * (x W3^T)) W2^T through the dense GEMM: an independent SwiGLU FFN. */
    static void denseSwiGlu(Tensor y, Tensor x, Tensor gateUp, Tensor down, float scale) {
        int tokens = (int) x.dim(0), inter = (int) down.dim(1), hidden = (int) x.dim(1);
        try (Tensor gu = Tensor.allocateHost(DType.F32, tokens, 2L * inter);
             Tensor act = Tensor.allocateHost(DType.F32, tokens, inter)) {
            Gemm.gemm(CPU, gu, x, false, gateUp, true, 1f, 0f);
            float[] g = gu.toFloatArray(), a = new float[tokens * inter];
            for (int t = 0; t < tokens; t++)
                for (int j = 0; j < inter; j++) {
                    double gate = g[t * 2 * inter + j], up = g[t * 2 * inter + inter + j];
                    a[t * inter + j] = (float) (gate / (1 + Math.exp(-gate)) * up);
                }
            act.copyFrom(a);
            Gemm.gemm(CPU, y, act, false, down, true, scale, 0f);
        }
        assertEquals(hidden, y.dim(1));
    }

    @Test
    void allTokensToOneExpertAndExpertsThatReceiveNothing() {
        Random random = new Random(9);
        int tokens = 17, hidden = 24, inter = 37, e = 8, k = 1, chosen = 5;
        RouterConfig c = RouterConfig.softmax(e, k, true);
        long[] id = new long[tokens];
        Arrays.fill(id, chosen);
        float[] weight = new float[tokens];
        Arrays.fill(weight, 0.75f);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.F32, tokens, hidden, inter, c, false);
             Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k);
             Tensor weights = Tensor.fromFloats(DType.F32, weight, tokens, k);
             Tensor out = Tensor.allocateHost(DType.F32, tokens, hidden);
             Tensor dense = Tensor.allocateHost(DType.F32, tokens, hidden);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, DType.F32, c)) {
            MoeLayer.forwardRouted(CPU, out, l.x(), l.weights(), weights, ids, null, null, ws);
            Tensor gateUp = l.weights().gateUp().slice(0, chosen, chosen + 1).reshape(2L * inter, hidden);
            Tensor down = l.weights().down().slice(0, chosen, chosen + 1).reshape(hidden, inter);
            denseSwiGlu(dense, l.x(), gateUp, down, 0.75f);
            Compare.Result r = Compare.check("all to expert " + chosen, out, dense, 1e-6);
            assertTrue(r.withinBound(), r.toString());
            long[] counts = ws.routing().expertCounts().toLongArray();
            for (int x = 0; x < e; x++) assertEquals(x == chosen ? tokens : 0, counts[x], "expert " + x);
            checkAligned(id, e, ExpertGemm.TILE_M, ws.routing());
        }
    }

    @Test
    void combineSumsSlotsInOrderThenSharedThenResidualAndMayWriteInPlace() {
        try (Tensor slots = Tensor.fromFloats(DType.F32, new float[] {1, 2, 10, 20, 100, 200, 1000, 2000}, 4, 2);
             Tensor shared = Tensor.fromFloats(DType.F32, new float[] {0.5f, 0.25f, 3, 4}, 2, 2);
             Tensor residual = Tensor.fromFloats(DType.F32, new float[] {-1, -2, -3, -4}, 2, 2);
             Tensor dropped = Tensor.fromLongs(DType.I32, new long[] {0, 1, 1, 1}, 4);
             Tensor out = Tensor.allocateHost(DType.F32, 2, 2)) {
            Combine.apply(CPU, out, slots, dropped, shared, residual, 2); // token 1 fully dropped: shared + residual
            assertArrayEquals(new float[] {0.5f, 0.25f, 0, 0}, out.toFloatArray());
            Combine.apply(CPU, residual, slots, null, shared, residual, 2);
            assertArrayEquals(new float[] {10.5f, 20.25f, 1100, 2200}, residual.toFloatArray());
        }
    }

    @Test
    void anExpertCapacityServesTheEarliestTokensAndTheRestPassThroughTheResidual() {
        Random random = new Random(14);
        int tokens = 17, hidden = 24, inter = 37, e = 8, capacity = 5, chosen = 6;
        RouterConfig c = RouterConfig.softmax(e, 1, true);
        long[] id = new long[tokens];
        Arrays.fill(id, chosen);
        try (Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, 1);
             Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, tokens, 1, e, 32)) {
            Dispatch.align(CPU, d, ids, capacity);
            long[] dropped = d.dropped().toLongArray(), sorted = d.sortedPairs().toLongArray();
            for (int p = 0; p < tokens; p++) assertEquals(p < capacity ? 0 : 1, dropped[p], "pair " + p);
            for (int pos = 0; pos < 32; pos++) assertEquals(pos < capacity ? pos : tokens, sorted[pos], "position " + pos);
            assertEquals(32, d.paddedTotal().toLongArray()[0]);
            assertEquals(tokens, d.expertCounts().toLongArray()[chosen], "counts are of routed pairs, before the capacity");
        }
        // The layer: random routing, capacity factor 1 (C = ceil(17 * 2 / 8) = 5), against the plain loop.
        RouterConfig top2 = RouterConfig.softmax(e, 2, true);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.F32, tokens, hidden, inter, top2, false);
             Tensor residual = RandomTensors.normal(random, DType.F32, 1f, tokens, hidden);
             Tensor out = Tensor.allocateHost(DType.F32, tokens, hidden);
             Tensor expected = Tensor.allocateHost(DType.F32, tokens, hidden);
             Tensor dropless = Tensor.allocateHost(DType.F32, tokens, hidden);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, DType.F32, top2, 1.0)) {
            assertEquals(5, ws.expertCapacity());
            MoeLayer.forward(CPU, out, l.x(), l.weights(), top2, null, residual, ws);
            MoeLayer.reference(expected, l.x(), l.weights(), top2, null, residual, 5);
            MoeLayer.reference(dropless, l.x(), l.weights(), top2, null, residual);
            Compare.Result r = Compare.check("capacity 5", out, expected, 1e-6);
            assertTrue(r.withinBound(), r.toString());
            long droppedPairs = Arrays.stream(ws.routing().dropped().toLongArray()).sum();
            long excess = Arrays.stream(ws.routing().expertCounts().toLongArray()).map(n -> Math.max(0, n - 5)).sum();
            assertEquals(excess, droppedPairs, "every pair beyond an expert's capacity is dropped, and only those");
            assertTrue(droppedPairs == 0 || Compare.relativeError(out, dropless) > 1e-3, "dropping changes the output");
        }
        illegalArgument("capacityFactor", () -> Dispatch.expertCapacity(-1, 4, 2, 8));
        illegalArgument("expertCapacity", () -> {
            try (Tensor ids = Tensor.allocateHost(DType.I32, 1, 1); Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, 1, 1, 2, 32)) {
                Dispatch.align(CPU, d, ids, -1);
            }
        });
    }

    @Test
    void repeatedRunsAreBitIdentical() {
        Random random = new Random(10);
        RouterConfig c = RouterConfig.softmax(8, 2, true);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.BF16, 17, 24, 37, c, false);
             Tensor a = Tensor.allocateHost(DType.BF16, 17, 24); Tensor b = Tensor.allocateHost(DType.BF16, 17, 24);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, 17, 24, 37, DType.BF16, c)) {
            MoeLayer.forward(CPU, a, l.x(), l.weights(), c, null, null, ws);
            MoeLayer.forward(CPU, b, l.x(), l.weights(), c, null, null, ws);
            assertArrayEquals(a.toFloatArray(), b.toFloatArray());
        }
    }

    @Test
    void zeroTokensRunAndRouteNothing() {
        Random random = new Random(13);
        RouterConfig c = RouterConfig.softmax(8, 2, true);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.F32, 0, 16, 8, c, false);
             Tensor out = Tensor.allocateHost(DType.F32, 0, 16);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, 0, 16, 8, DType.F32, c);
             RouterStats.Result stats = RouterStats.Result.allocate(CPU, 8)) {
            MoeLayer.forward(CPU, out, l.x(), l.weights(), c, null, null, ws);
            RouterStats.compute(CPU, stats, ws.logits(), ws.routing(), c);
            assertArrayEquals(new long[8], ws.routing().expertCounts().toLongArray());
            assertEquals(0, ws.routing().paddedTotal().toLongArray()[0]);
            assertEquals(0f, stats.auxLoss().toFloatArray()[0]);
        }
    }

    // ---- statistics --------------------------------------------------------------------------------

    @Test
    void uniformLogitsAndABalancedRouteGiveTheTextbookValues() {
        int tokens = 8, e = 4, k = 2;
        long[] id = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3}; // every expert gets 4 of 16 pairs
        RouterConfig c = RouterConfig.softmax(e, k, true);
        try (Tensor logits = Tensor.allocateHost(DType.F32, tokens, e);
             Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k);
             Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, tokens, k, e, 32);
             RouterStats.Result stats = RouterStats.Result.allocate(CPU, e)) {
            Dispatch.align(CPU, d, ids);
            RouterStats.compute(CPU, stats, logits, d, c);
            assertArrayEquals(new float[] {0.25f, 0.25f, 0.25f, 0.25f}, stats.meanProbability().toFloatArray(), 1e-7f);
            assertEquals(1f, stats.auxLoss().toFloatArray()[0], 1e-6f, "balanced = 1");
            assertEquals((float) (Math.log(4) * Math.log(4)), stats.zLoss().toFloatArray()[0], 1e-6f);
        }
    }

    @Test
    void auxLossGrowsWithImbalanceAndTheAccumulatorWeighsBatchesByTokens() {
        Random random = new Random(11);
        int e = 8, k = 2;
        RouterConfig c = RouterConfig.softmax(e, k, true);
        RoutingStatsAccumulator acc = new RoutingStatsAccumulator(e);
        double probabilityMass = 0;
        double[] probSum = new double[e];
        long[] countSum = new long[e];
        for (int tokens : new int[] {3, 17}) {
            try (Tensor logits = RandomTensors.normal(random, DType.F32, 1f, tokens, e);
                 Tensor w = Tensor.allocateHost(DType.F32, tokens, k); Tensor ids = Tensor.allocateHost(DType.I32, tokens, k);
                 Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, tokens, k, e, 32);
                 RouterStats.Result stats = RouterStats.Result.allocate(CPU, e)) {
                Router.topK(CPU, w, ids, logits, null, c);
                Dispatch.align(CPU, d, ids);
                RouterStats.compute(CPU, stats, logits, d, c);
                acc.add(CPU, d, stats, tokens);
                long[] keys = new long[tokens];
                acc.addByKey(CPU, ids, keys); // every token under key 0
                float[] p = stats.meanProbability().toFloatArray();
                long[] counts = d.expertCounts().toLongArray();
                double aux = 0;
                for (int x = 0; x < e; x++) {
                    probSum[x] += p[x] * tokens;
                    countSum[x] += counts[x];
                    aux += counts[x] / (double) (tokens * k) * p[x];
                    probabilityMass += p[x];
                }
                assertEquals(e * aux, stats.auxLoss().toFloatArray()[0], 1e-5);
            }
        }
        assertEquals(2.0, probabilityMass, 1e-5, "each batch's mean probabilities sum to 1");
        assertArrayEquals(countSum, acc.pairsPerExpert());
        assertArrayEquals(countSum, acc.expertsFor(0));
        double aux = 0;
        for (int x = 0; x < e; x++) aux += countSum[x] / 40.0 * (probSum[x] / 20);
        assertEquals(e * aux, acc.auxLoss(), 1e-6);
        assertEquals(20, acc.tokens());
        // All pairs on one expert with all probability on it: the loss reaches E.
        try (Tensor logits = Tensor.fromFloats(DType.F32, new float[] {100, 0, 0, 0, 100, 0, 0, 0}, 2, 4);
             Tensor ids = Tensor.fromLongs(DType.I32, new long[] {0, 0}, 2, 1);
             Dispatch.Buffers d = Dispatch.Buffers.allocate(CPU, 2, 1, 4, 32);
             RouterStats.Result stats = RouterStats.Result.allocate(CPU, 4)) {
            Dispatch.align(CPU, d, ids);
            RouterStats.compute(CPU, stats, logits, d, RouterConfig.softmax(4, 1, true));
            assertEquals(4f, stats.auxLoss().toFloatArray()[0], 1e-5f);
        }
    }

    // ---- bad input -----------------------------------------------------------------------------------

    @Test
    void rejectsBadConfigurations() {
        illegalArgument("topK", () -> RouterConfig.softmax(4, 5, true));
        illegalArgument("groups", () -> RouterConfig.sigmoidGrouped(10, 2, 4, 2, 1f));
        illegalArgument("topK", () -> RouterConfig.sigmoidGrouped(8, 4, 4, 1, 1f));
        illegalArgument("topGroups", () -> RouterConfig.sigmoidGrouped(8, 2, 4, 5, 1f));
        illegalArgument("experts", () -> RouterConfig.softmax(0, 1, true));
        illegalArgument("routedScaling", () -> RouterConfig.sigmoidGrouped(8, 2, 4, 2, Float.NaN));
    }

    @Test
    void rejectsWeightShapesThatDisagreeAndBadRouting() {
        Random random = new Random(12);
        RouterConfig c = RouterConfig.softmax(8, 2, true);
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, DType.F32, 3, 16, 8, c, false);
             Tensor out = Tensor.allocateHost(DType.F32, 3, 16);
             Tensor wrongDown = Tensor.allocateHost(DType.F32, 8, 16, 9);
             Tensor wrongGateUp = Tensor.allocateHost(DType.F32, 8, 16, 15);
             Tensor wrongRouter = Tensor.allocateHost(DType.F32, 7, 16);
             Tensor bf16Down = Tensor.allocateHost(DType.BF16, 8, 16, 8);
             Tensor badIds = Tensor.fromLongs(DType.I32, new long[] {0, 1, 2, 8, 4, 5}, 3, 2);
             Tensor negativeIds = Tensor.fromLongs(DType.I32, new long[] {0, 1, 2, -1, 4, 5}, 3, 2);
             Tensor floatIds = Tensor.allocateHost(DType.F32, 3, 2);
             Tensor weights = Tensor.allocateHost(DType.F32, 3, 2);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, 3, 16, 8, DType.F32, c);
             Dispatch.Buffers tile16 = Dispatch.Buffers.allocate(CPU, 3, 2, 8, 16)) {
            MoeLayer.Weights w = l.weights();
            illegalArgument("down", () -> MoeLayer.forward(CPU, out, l.x(), new MoeLayer.Weights(w.router(), null, w.gateUp(), wrongDown), c, null, null, ws));
            illegalArgument("gateUp", () -> MoeLayer.forward(CPU, out, l.x(), new MoeLayer.Weights(w.router(), null, wrongGateUp, w.down()), c, null, null, ws));
            illegalArgument("router", () -> MoeLayer.forward(CPU, out, l.x(), new MoeLayer.Weights(wrongRouter, null, w.gateUp(), w.down()), c, null, null, ws));
            illegalArgument("down", () -> MoeLayer.forward(CPU, out, l.x(), new MoeLayer.Weights(w.router(), null, w.gateUp(), bf16Down), c, null, null, ws));
            illegalArgument("ws", () -> MoeLayer.forward(CPU, out, l.x(), w, RouterConfig.softmax(8, 1, true), null, null, ws));
            illegalArgument("ids[1, 1] = 8", () -> MoeLayer.forwardRouted(CPU, out, l.x(), w, weights, badIds, null, null, ws));
            illegalArgument("ids[1, 1] = -1", () -> MoeLayer.forwardRouted(CPU, out, l.x(), w, weights, negativeIds, null, null, ws));
            illegalArgument("ids", () -> MoeLayer.forwardRouted(CPU, out, l.x(), w, weights, floatIds, null, null, ws));
            illegalArgument("ids[3]", () -> Dispatch.align(CPU, ws.routing(), badIds));
            illegalArgument("tile", () -> ExpertGemm.gateUp(CPU, ws.hidden(), l.x(), w.gateUp(), tile16, 2));
            illegalArgument("logits", () -> Router.topK(CPU, ws.weights(), ws.ids(), l.x(), null, c));
            illegalArgument("shared", () -> Combine.apply(CPU, out, ws.slotOut(), null, wrongRouter, null, 2));
            illegalArgument("slotOut", () -> Combine.apply(CPU, out, ws.slotOut(), null, null, null, 1));
            illegalArgument("backend", () -> Combine.apply(null, out, ws.slotOut(), null, null, null, 2));
            illegalArgument("dropped", () -> Combine.apply(CPU, out, ws.slotOut(), floatIds, null, null, 2));
            try (Dispatch.Buffers fresh = Dispatch.Buffers.allocate(CPU, 3, 2, 8, ExpertGemm.TILE_M)) {
                illegalArgument("not been aligned", () -> ExpertGemm.gateUp(CPU, ws.hidden(), l.x(), w.gateUp(), fresh, 2));
                illegalArgument("not been aligned", () -> fresh.expertCounts(CPU));
            }
            Tensor closed = Tensor.allocateHost(DType.F32, 3, 16);
            closed.close();
            illegalArgument("closed", () -> MoeLayer.forward(CPU, out, closed, w, c, null, null, ws));
        }
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }
}
