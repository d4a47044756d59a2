package dev.isthmus.moe;

import static dev.isthmus.testing.DeviceAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaGraph;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuShapes;
import dev.isthmus.testing.GpuTest;
import java.util.Arrays;
import java.util.Random;

/**
 * Every MoE kernel against the CPU reference: fresh random inputs of awkward sizes (tokens 1, 2,
 * 17, 1000; E = 1, 8, 64, 256 grouped; k = 1, 2, 8; H and I not multiples of the tiles), outputs
 * poisoned before each launch. Routing is compared exactly except where two choice scores are
 * so close that fp32 and double may order them differently.
 */
class MoeGpuTest {
    private static final CpuBackend CPU = Backend.cpu();
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};

    @GpuTest
    void routerMatchesTheReference() {
        Random random = new Random(31);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (RouterConfig c : MoeFixtures.configs())
                for (int tokens : MoeFixtures.TOKENS)
                    for (DType dtype : FLOATS) {
                        boolean bias = c.scoring() == RouterConfig.Scoring.SIGMOID;
                        try (Tensor logits = RandomTensors.normal(random, dtype, 2f, tokens, c.experts());
                             Tensor b = bias ? RandomTensors.normal(random, DType.F32, 0.1f, c.experts()) : null;
                             Tensor w = Tensor.allocateHost(DType.F32, tokens, c.topK());
                             Tensor ids = Tensor.allocateHost(DType.I32, tokens, c.topK());
                             Tensor dl = gpu.copyOf(logits); Tensor db = b == null ? null : gpu.copyOf(b);
                             Tensor dw = gpu.allocate(DType.F32, tokens, c.topK());
                             Tensor dids = gpu.allocate(DType.I32, tokens, c.topK())) {
                            gpu.poison(dw);
                            gpu.poison(dids);
                            Router.topK(CPU, w, ids, logits, b, c);
                            Router.topK(gpu, dw, dids, dl, db, c);
                            try (Tensor aw = gpu.toHost(dw); Tensor aids = gpu.toHost(dids)) {
                                compareRouting(c + " T=" + tokens + " " + dtype.label(), logits, b, c, ids, w, aids, aw);
                            }
                        }
                    }
        }
    }

    /** Ids equal and weights within fp32 bounds, skipping tokens whose k-th and (k+1)-th choices nearly tie. */
    private static void compareRouting(String what, Tensor logits, Tensor bias, RouterConfig c, Tensor ids, Tensor w,
                                       Tensor actualIds, Tensor actualW) {
        int tokens = (int) logits.dim(0), k = c.topK(), e = c.experts();
        long[] expected = ids.toLongArray(), actual = actualIds.toLongArray();
        float[] ew = w.toFloatArray(), aw = actualW.toFloatArray(), z = logits.toFloatArray();
        float[] b = bias == null ? null : bias.toFloatArray();
        int compared = 0;
        for (int t = 0; t < tokens; t++) {
            if (nearTie(Arrays.copyOfRange(z, t * e, (t + 1) * e), b, c)) continue;
            compared++;
            for (int s = 0; s < k; s++) {
                assertEquals(expected[t * k + s], actual[t * k + s], what + ": token " + t + " slot " + s);
                assertEquals(ew[t * k + s], aw[t * k + s], 1e-5 * Math.max(1, Math.abs(ew[t * k + s])), what + ": weight " + t + "," + s);
            }
        }
        assertTrue(compared >= tokens * 0.75, what + ": only " + compared + " of " + tokens + " tokens compared");
    }

    /**
     * True when fp32 and double could decide this row differently: the choice values around the
     * k-th pick (or the group scores around the last kept group) are within 1e-5 of each other.
     */
    private static boolean nearTie(float[] row, float[] bias, RouterConfig c) {
        int e = c.experts();
        double[] choice = new double[e];
        for (int i = 0; i < e; i++)
            choice[i] = c.scoring() == RouterConfig.Scoring.SOFTMAX ? row[i] : 1 / (1 + Math.exp(-row[i])) + (bias == null ? 0 : bias[i]);
        if (c.groups() > 1) {
            int size = e / c.groups();
            double[] groups = new double[c.groups()];
            for (int g = 0; g < c.groups(); g++) {
                double[] members = Arrays.copyOfRange(choice, g * size, (g + 1) * size);
                Arrays.sort(members);
                groups[g] = members[size - 1] + (size > 1 ? members[size - 2] : 0);
            }
            if (closeAround(groups, c.topGroups())) return true;
        }
        return closeAround(choice, c.topK());
    }

    /**
     * Whether two of the top n + 1 values differ by less than 1e-5 without being equal. Equal
     * values come from equal inputs, which fp32 and double both resolve to the lower index.
     */
    private static boolean closeAround(double[] values, int n) {
        if (n >= values.length) return false;
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        for (int i = sorted.length - 1; i >= sorted.length - n; i--) {
            double gap = sorted[i] - sorted[i - 1];
            if (gap > 0 && gap < 1e-5) return true;
        }
        return false;
    }

    @GpuTest
    void alignIsExactlyTheReference() {
        Random random = new Random(32);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (int tokens : MoeFixtures.TOKENS)
                for (int[] ek : new int[][] {{1, 1}, {8, 2}, {64, 8}, {256, 8}})
                    for (int tile : new int[] {1, 16, 32})
                        for (int expertCapacity : new int[] {0, 1, 7}) {
                        int e = ek[0], k = ek[1];
                        long[] id = new long[tokens * k];
                        boolean skewed = tokens == 1000;
                        for (int p = 0; p < id.length; p++) id[p] = skewed ? (random.nextInt(4) == 0 ? random.nextInt(e) : e - 1) : random.nextInt(e);
                        try (Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k); Tensor dids = gpu.copyOf(ids);
                             Dispatch.Buffers expected = Dispatch.Buffers.allocate(CPU, tokens, k, e, tile);
                             Dispatch.Buffers actual = Dispatch.Buffers.allocate(gpu, tokens, k, e, tile)) {
                            for (Tensor t : new Tensor[] {actual.sortedPairs(), actual.tileExperts(), actual.paddedTotal(), actual.expertCounts()})
                                gpu.poison(t);
                            gpu.poison(actual.dropped());
                            Dispatch.align(CPU, expected, ids, expertCapacity);
                            Dispatch.align(gpu, actual, dids, expertCapacity);
                            String what = "T=" + tokens + " E=" + e + " k=" + k + " tile=" + tile + " capacity=" + expertCapacity;
                            assertIntsEqual(what + " dropped", expected.dropped(), actual.dropped(), gpu);
                            assertIntsEqual(what + " sortedPairs", expected.sortedPairs(), actual.sortedPairs(), gpu);
                            assertIntsEqual(what + " tileExperts", expected.tileExperts(), actual.tileExperts(), gpu);
                            assertIntsEqual(what + " paddedTotal", expected.paddedTotal(), actual.paddedTotal(), gpu);
                            assertIntsEqual(what + " expertCounts", expected.expertCounts(), actual.expertCounts(), gpu);
                        }
                    }
        }
    }

    private static void assertIntsEqual(String what, Tensor expected, Tensor actual, CudaBackend gpu) {
        try (Tensor a = gpu.toHost(actual)) {
            assertArrayEquals(expected.toLongArray(), a.toLongArray(), what);
        }
    }

    /**
     * Align over several 2,048-pair chunks: the first chunk short (a single pair) or full, experts
     * up to the 1,024 maximum (a chunk's whole slice of dropped holds the counts), skewed so that
     * one expert spans every chunk. Exact against the reference, and a second run on re-poisoned
     * buffers is identical.
     */
    @GpuTest
    void alignAcrossManyChunksIsExactAndRepeats() {
        // {tokens, k, experts, tile, expert capacity}
        assertAlignExactAndRepeats(new Random(38), new int[][] {
                {8193, 1, 1024, 32, 0}, {8193, 1, 1024, 32, 3}, {2048, 2, 7, 16, 0}, {2048, 2, 7, 16, 100},
                {777, 8, 64, 1, 0}, {1025, 6, 1000, 1024, 5}});
    }

    /**
     * Align of at most one chunk (2,048 pairs) runs as one launch: a single pair, fewer pairs than
     * experts, decode batches up to 1,024 experts, with and without capacity, skewed; then exactly
     * 2,048 pairs (still one launch) and 2,049 (three launches, the first chunk a single pair).
     */
    @GpuTest
    void alignInOneLaunchIsExactAndRepeats() {
        // {tokens, k, experts, tile, expert capacity}
        assertAlignExactAndRepeats(new Random(39), new int[][] {
                {1, 1, 1, 1, 0}, {1, 8, 1024, 32, 0}, {3, 8, 1024, 16, 1}, {64, 8, 256, 16, 0}, {64, 8, 256, 16, 2},
                {33, 6, 64, 1024, 3}, {256, 8, 1024, 32, 0}, {256, 8, 1024, 32, 1}, {2048, 1, 8, 16, 100},
                {683, 3, 1024, 32, 0}, {683, 3, 1024, 32, 2}, {2049, 1, 7, 1024, 50}});
    }

    /** Each case's ids skewed to one expert (about two thirds of the pairs); exact, and a repeat on re-poisoned buffers identical. */
    private static void assertAlignExactAndRepeats(Random random, int[][] cases) {
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (int[] c : cases) {
                int tokens = c[0], k = c[1], e = c[2], tile = c[3], expertCapacity = c[4];
                long[] id = new long[tokens * k];
                for (int p = 0; p < id.length; p++) id[p] = random.nextInt(3) == 0 ? random.nextInt(e) : Math.min(e - 1, 3);
                String what = "T=" + tokens + " k=" + k + " E=" + e + " tile=" + tile + " capacity=" + expertCapacity;
                try (Tensor ids = Tensor.fromLongs(DType.I32, id, tokens, k); Tensor dids = gpu.copyOf(ids);
                     Dispatch.Buffers expected = Dispatch.Buffers.allocate(CPU, tokens, k, e, tile);
                     Dispatch.Buffers actual = Dispatch.Buffers.allocate(gpu, tokens, k, e, tile)) {
                    Dispatch.align(CPU, expected, ids, expertCapacity);
                    long[][] first = alignOnDevice(gpu, actual, dids, expertCapacity);
                    long[][] reference = {expected.sortedPairs().toLongArray(), expected.tileExperts().toLongArray(),
                                          expected.paddedTotal().toLongArray(), expected.expertCounts().toLongArray(),
                                          expected.dropped().toLongArray()};
                    String[] names = {"sortedPairs", "tileExperts", "paddedTotal", "expertCounts", "dropped"};
                    long[][] second = alignOnDevice(gpu, actual, dids, expertCapacity);
                    for (int b = 0; b < names.length; b++) {
                        assertArrayEquals(reference[b], first[b], what + " " + names[b]);
                        assertArrayEquals(first[b], second[b], what + " " + names[b] + ": the repeat differs");
                    }
                }
            }
        }
    }

    private static long[][] alignOnDevice(CudaBackend gpu, Dispatch.Buffers buffers, Tensor ids, int expertCapacity) {
        Tensor[] all = {buffers.sortedPairs(), buffers.tileExperts(), buffers.paddedTotal(), buffers.expertCounts(), buffers.dropped()};
        for (Tensor t : all) gpu.poison(t);
        Dispatch.align(gpu, buffers, ids, expertCapacity);
        long[][] out = new long[all.length][];
        for (int b = 0; b < all.length; b++)
            try (Tensor host = gpu.toHost(all[b])) {
                out[b] = host.toLongArray();
            }
        return out;
    }

    /**
     * The combine's element-wise path (an odd hidden size; views one element off 16-byte
     * alignment) and its vector path, k not a multiple of the four slots loaded together, slots
     * dropped, in place on the residual and on the shared-expert output.
     */
    @GpuTest
    void combineUnalignedOddAndInPlace() {
        Random random = new Random(39);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int h : new int[] {37, 64, 264})
                    for (boolean offset : new boolean[] {false, true})
                        for (int k : new int[] {1, 5, 8}) {
                            int tokens = 19, pairs = tokens * k;
                            String what = dtype.label() + " H=" + h + " k=" + k + (offset ? " misaligned" : "");
                            try (Tensor slots = RandomTensors.normal(random, dtype, 1f, pairs, h);
                                 Tensor shared = RandomTensors.normal(random, dtype, 1f, tokens, h);
                                 Tensor residual = RandomTensors.normal(random, dtype, 1f, tokens, h);
                                 Tensor dropped = Tensor.fromLongs(DType.I32, random.longs(pairs, 0, 3).map(v -> v == 0 ? 1 : 0).toArray(), pairs);
                                 Tensor expected = Tensor.allocateHost(dtype, tokens, h);
                                 Tensor dDropped = gpu.copyOf(dropped);
                                 Tensor slotBacking = gpu.allocate(dtype, pairs * h + 1);
                                 Tensor sharedBacking = gpu.allocate(dtype, tokens * h + 1);
                                 Tensor residualBacking = gpu.allocate(dtype, tokens * h + 1);
                                 Tensor outBacking = gpu.allocate(dtype, tokens * h + 1)) {
                                int o = offset ? 1 : 0;
                                Tensor dSlots = slotBacking.slice(0, o, o + pairs * h).reshape(pairs, h);
                                Tensor dShared = sharedBacking.slice(0, o, o + tokens * h).reshape(tokens, h);
                                Tensor dResidual = residualBacking.slice(0, o, o + tokens * h).reshape(tokens, h);
                                Tensor dOut = outBacking.slice(0, o, o + tokens * h).reshape(tokens, h);
                                gpu.poison(slotBacking);
                                gpu.copy(dSlots, slots);
                                gpu.copy(dShared, shared);
                                gpu.copy(dResidual, residual);
                                gpu.poison(outBacking);
                                Combine.apply(CPU, expected, slots, dropped, shared, residual, k);
                                Combine.apply(gpu, dOut, dSlots, dDropped, dShared, dResidual, k);
                                assertClose(what, gpu, dOut, expected);
                                Combine.apply(gpu, dShared, dSlots, dDropped, dShared, dResidual, k);
                                assertClose(what + " in place on shared", gpu, dShared, expected);
                                gpu.copy(dShared, shared);
                                Combine.apply(gpu, dResidual, dSlots, dDropped, dShared, dResidual, k);
                                assertClose(what + " in place on the residual", gpu, dResidual, expected);
                            }
                        }
        }
    }

    @GpuTest
    void expertGemmsAndCombineMatchTheReference() {
        Random random = new Random(33);
        int[][] sizes = {{24, 37}, {40, 96}, {136, 70}}; // (H, I): tails in every tile dimension
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int[] hi : sizes)
                    for (int tokens : MoeFixtures.TOKENS)
                        for (int[] ek : new int[][] {{1, 1}, {8, 2}, {64, 8}}) {
                            if (tokens >= 160 && hi[0] > 40) continue;
                            checkStages(gpu, random, dtype, tokens, hi[0], hi[1], ek[0], ek[1]);
                        }
        }
    }

    private static void checkStages(CudaBackend gpu, Random random, DType dtype, int tokens, int h, int inter, int e, int k) {
        String what = dtype.label() + " T=" + tokens + " H=" + h + " I=" + inter + " E=" + e + " k=" + k;
        int pairs = tokens * k;
        try (Tensor x = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor gateUp = RandomTensors.normal(random, dtype, (float) (1.5 / Math.sqrt(h)), e, 2L * inter, h);
             Tensor down = RandomTensors.normal(random, dtype, (float) (1 / Math.sqrt(inter)), e, h, inter);
             Tensor weights = RandomTensors.uniform(random, DType.F32, 0f, 1f, tokens, k);
             Tensor shared = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor residual = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor ids = MoeFixtures.distinctIds(random, tokens, e, k);
             Tensor dropped = Tensor.fromLongs(DType.I32, random.longs(pairs, 0, 4).map(v -> v == 0 ? 1 : 0).toArray(), pairs);
             Tensor dDropped = gpu.copyOf(dropped);
             Dispatch.Buffers routing = Dispatch.Buffers.allocate(CPU, tokens, k, e, ExpertGemm.TILE_M);
             Dispatch.Buffers dRouting = Dispatch.Buffers.allocate(gpu, tokens, k, e, ExpertGemm.TILE_M);
             Tensor hidden = Tensor.allocateHost(dtype, pairs, inter);
             Tensor slots = Tensor.allocateHost(dtype, pairs, h);
             Tensor out = Tensor.allocateHost(dtype, tokens, h);
             Tensor dx = gpu.copyOf(x); Tensor dGateUp = gpu.copyOf(gateUp); Tensor dDown = gpu.copyOf(down);
             Tensor dWeights = gpu.copyOf(weights); Tensor dShared = gpu.copyOf(shared); Tensor dResidual = gpu.copyOf(residual);
             Tensor dids = gpu.copyOf(ids);
             Tensor dHidden = gpu.allocate(dtype, pairs, inter);
             Tensor dSlots = gpu.allocate(dtype, pairs, h);
             Tensor dOut = gpu.allocate(dtype, tokens, h)) {
            Dispatch.align(CPU, routing, ids);
            Dispatch.align(gpu, dRouting, dids);
            gpu.poison(dHidden);
            ExpertGemm.gateUp(CPU, hidden, x, gateUp, routing, k);
            ExpertGemm.gateUp(gpu, dHidden, dx, dGateUp, dRouting, k);
            assertClose(what + " gateUp", gpu, dHidden, hidden);
            // The down GEMM and the combine each from the reference's own input, so errors do not compound.
            gpu.copy(dHidden, hidden);
            gpu.poison(dSlots);
            ExpertGemm.down(CPU, slots, hidden, down, weights, routing);
            ExpertGemm.down(gpu, dSlots, dHidden, dDown, dWeights, dRouting);
            assertClose(what + " down", gpu, dSlots, slots);
            gpu.copy(dSlots, slots);
            gpu.poison(dOut);
            Combine.apply(CPU, out, slots, dropped, shared, residual, k);
            Combine.apply(gpu, dOut, dSlots, dDropped, dShared, dResidual, k);
            assertClose(what + " combine", gpu, dOut, out);
            // In place: out is the residual, the residual add of a decoder layer.
            Combine.apply(gpu, dResidual, dSlots, dDropped, dShared, dResidual, k);
            assertClose(what + " combine in place on the residual", gpu, dResidual, out);
        }
    }

    @GpuTest
    void routerStatisticsMatchTheReference() {
        Random random = new Random(34);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (RouterConfig c : MoeFixtures.configs())
                for (int tokens : new int[] {1, 17, 1000}) {
                    try (Tensor logits = RandomTensors.normal(random, DType.F32, 2f, tokens, c.experts());
                         Tensor w = Tensor.allocateHost(DType.F32, tokens, c.topK());
                         Tensor ids = Tensor.allocateHost(DType.I32, tokens, c.topK());
                         Dispatch.Buffers routing = Dispatch.Buffers.allocate(CPU, tokens, c.topK(), c.experts(), 32);
                         RouterStats.Result expected = RouterStats.Result.allocate(CPU, c.experts());
                         Tensor dl = gpu.copyOf(logits);
                         Dispatch.Buffers dRouting = Dispatch.Buffers.allocate(gpu, tokens, c.topK(), c.experts(), 32);
                         RouterStats.Result actual = RouterStats.Result.allocate(gpu, c.experts())) {
                        Router.topK(CPU, w, ids, logits, null, c);
                        Dispatch.align(CPU, routing, ids);
                        try (Tensor dids = gpu.copyOf(ids)) {
                            Dispatch.align(gpu, dRouting, dids);
                        }
                        gpu.poison(actual.meanProbability());
                        gpu.poison(actual.auxLoss());
                        gpu.poison(actual.zLoss());
                        RouterStats.compute(CPU, expected, logits, routing, c);
                        RouterStats.compute(gpu, actual, dl, dRouting, c);
                        String what = c + " T=" + tokens;
                        // fp32 sums over up to 1000 tokens in token order against double: 1e-4, not 1e-5.
                        assertClose(what + " meanProbability", gpu, actual.meanProbability(), expected.meanProbability(), 1e-4);
                        assertClose(what + " auxLoss", gpu, actual.auxLoss(), expected.auxLoss(), 1e-4);
                        assertClose(what + " zLoss", gpu, actual.zLoss(), expected.zLoss(), 1e-4);
                    }
                }
        }
    }

    @GpuTest
    void theLayerMatchesTheReferenceAndRepeatsBitForBit() {
        Random random = new Random(35);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (RouterConfig c : MoeFixtures.configs())
                for (int tokens : MoeFixtures.TOKENS)
                    for (DType dtype : FLOATS)
                        checkLayer(gpu, random, c, tokens, dtype, 40, 70, 0);
            // Switch-style token dropping: capacity factor 1 drops pairs wherever the routing is uneven.
            for (int tokens : GpuShapes.choose(new int[] {17, 1000}, 17, 160)) checkLayer(gpu, random, RouterConfig.softmax(8, 2, true), tokens, DType.BF16, 40, 70, 1.0);
        }
    }

    /**
     * The GPU layer, stage by stage against the reference: the router logits (f32 GEMM), the
     * routing taken from those logits, then the output against the CPU layer run on the GPU's own
     * routing (so a near-tie cannot flip an expert between the two), then a bit-identical repeat.
     */
    private static void checkLayer(CudaBackend gpu, Random random, RouterConfig c, int tokens, DType dtype, int h, int inter,
                                   double capacityFactor) {
        String what = c + " T=" + tokens + " " + dtype.label() + (capacityFactor > 0 ? " capacity factor " + capacityFactor : "");
        boolean bias = c.scoring() == RouterConfig.Scoring.SIGMOID;
        try (MoeFixtures.Layer l = MoeFixtures.layer(random, dtype, tokens, h, inter, c, bias);
             Tensor residual = RandomTensors.normal(random, dtype, 1f, tokens, h);
             Tensor expected = Tensor.allocateHost(dtype, tokens, h);
             Tensor expectedLogits = Tensor.allocateHost(DType.F32, tokens, c.experts());
             Tensor dx = gpu.copyOf(l.x()); Tensor dResidual = gpu.copyOf(residual);
             Tensor dRouter = gpu.copyOf(l.weights().router());
             Tensor dBias = bias ? gpu.copyOf(l.weights().routerBias()) : null;
             Tensor dGateUp = gpu.copyOf(l.weights().gateUp()); Tensor dDown = gpu.copyOf(l.weights().down());
             Tensor dOut = gpu.allocate(dtype, tokens, h);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(gpu, tokens, h, inter, dtype, c, capacityFactor);
             MoeLayer.Workspace cpuWs = MoeLayer.Workspace.allocate(CPU, tokens, h, inter, dtype, c, capacityFactor)) {
            MoeLayer.Weights dw = new MoeLayer.Weights(dRouter, dBias, dGateUp, dDown);
            gpu.poison(dOut);
            MoeLayer.forward(gpu, dOut, dx, dw, c, null, dResidual, ws);
            dev.isthmus.blas.Gemm.gemm(CPU, expectedLogits, l.x(), false, l.weights().router(), true, 1f, 0f);
            try (Tensor logits = gpu.toHost(ws.logits()); Tensor ids = gpu.toHost(ws.ids()); Tensor w = gpu.toHost(ws.weights());
                 Tensor refIds = Tensor.allocateHost(DType.I32, tokens, c.topK());
                 Tensor refW = Tensor.allocateHost(DType.F32, tokens, c.topK());
                 Tensor first = gpu.toHost(dOut)) {
                Compare.Result lr = Compare.check(what + " logits", logits, expectedLogits, dtype == DType.F32 ? 1e-5 : 1e-4);
                assertTrue(lr.withinBound(), lr.toString());
                Router.topK(CPU, refW, refIds, logits, l.weights().routerBias(), c);
                compareRouting(what, logits, l.weights().routerBias(), c, refIds, refW, ids, w);
                MoeLayer.forwardRouted(CPU, expected, l.x(), l.weights(), w, ids, null, residual, cpuWs);
                Compare.Result r = Compare.check(what + " output", first, expected);
                assertTrue(r.withinBound(), r.toString());
                gpu.poison(dOut);
                MoeLayer.forward(gpu, dOut, dx, dw, c, null, dResidual, ws);
                try (Tensor second = gpu.toHost(dOut)) {
                    assertArrayEquals(first.toFloatArray(), second.toFloatArray(), what + ": repeat differs");
                }
            }
        }
    }

    @GpuTest
    void zeroTokensRunAndRouteNothing() {
        Random random = new Random(37);
        RouterConfig c = RouterConfig.softmax(8, 2, true);
        try (CudaBackend gpu = Backend.cuda(0);
             MoeFixtures.Layer l = MoeFixtures.layer(random, DType.BF16, 0, 16, 8, c, false);
             Tensor dRouter = gpu.copyOf(l.weights().router());
             Tensor dGateUp = gpu.copyOf(l.weights().gateUp()); Tensor dDown = gpu.copyOf(l.weights().down());
             Tensor dx = gpu.allocate(DType.BF16, 0, 16); Tensor dOut = gpu.allocate(DType.BF16, 0, 16);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(gpu, 0, 16, 8, DType.BF16, c);
             RouterStats.Result stats = RouterStats.Result.allocate(gpu, 8)) {
            gpu.poison(ws.routing().expertCounts());
            gpu.poison(ws.routing().paddedTotal());
            MoeLayer.forward(gpu, dOut, dx, new MoeLayer.Weights(dRouter, null, dGateUp, dDown), c, null, null, ws);
            RouterStats.compute(gpu, stats, ws.logits(), ws.routing(), c);
            try (Tensor counts = gpu.toHost(ws.routing().expertCounts()); Tensor total = gpu.toHost(ws.routing().paddedTotal());
                 Tensor aux = gpu.toHost(stats.auxLoss())) {
                assertArrayEquals(new long[8], counts.toLongArray());
                assertEquals(0, total.toLongArray()[0]);
                assertEquals(0f, aux.toFloatArray()[0]);
            }
        }
    }

    @GpuTest
    void theLayerIsCapturedInACudaGraphAndReplaysBitForBit() {
        Random random = new Random(36);
        RouterConfig c = RouterConfig.sigmoidGrouped(64, 8, 8, 4, 2.5f);
        int tokens = 17, h = 40, inter = 96;
        try (CudaBackend gpu = Backend.cuda(0);
             MoeFixtures.Layer l = MoeFixtures.layer(random, DType.BF16, tokens, h, inter, c, true);
             Tensor dx = gpu.copyOf(l.x()); Tensor dRouter = gpu.copyOf(l.weights().router());
             Tensor dBias = gpu.copyOf(l.weights().routerBias());
             Tensor dGateUp = gpu.copyOf(l.weights().gateUp()); Tensor dDown = gpu.copyOf(l.weights().down());
             Tensor dOut = gpu.allocate(DType.BF16, tokens, h);
             MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(gpu, tokens, h, inter, DType.BF16, c)) {
            MoeLayer.Weights w = new MoeLayer.Weights(dRouter, dBias, dGateUp, dDown);
            MoeLayer.forward(gpu, dOut, dx, w, c, null, null, ws); // direct run first (creates any library handles)
            try (Tensor direct = gpu.toHost(dOut)) {
                gpu.poison(dOut);
                try (CudaGraph graph = CudaGraph.capture(gpu.stream(), () -> MoeLayer.forward(gpu, dOut, dx, w, c, null, null, ws))) {
                    graph.launch();
                    try (Tensor replayed = gpu.toHost(dOut)) {
                        assertArrayEquals(direct.toFloatArray(), replayed.toFloatArray(), "graph replay differs from the direct run");
                    }
                }
            }
        }
    }
}
