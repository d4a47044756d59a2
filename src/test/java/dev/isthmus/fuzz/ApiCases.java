package dev.isthmus.fuzz;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.KvCache;
import dev.isthmus.attention.Rope;
import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.model.Elementwise;
import dev.isthmus.moe.Combine;
import dev.isthmus.moe.Dispatch;
import dev.isthmus.moe.ExpertGemm;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.Router;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.moe.RouterStats;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.List;
import java.util.function.Consumer;

/**
 * Every public operation as a call with random valid shapes (empty ones included wherever the
 * math allows them), each argument taken from {@link Args} so that any one of them can be the
 * corrupted one.
 */
final class ApiCases {
    private ApiCases() {}

    record Case(String name, Consumer<Args> call) {
        @Override
        public String toString() {
            return name;
        }
    }

    static final List<Case> ALL = List.of(
            new Case("RmsNorm.apply", ApiCases::rmsNorm),
            new Case("RmsNorm.applyWithResidual", ApiCases::rmsNormResidual),
            new Case("Gemm.gemm", a -> gemm(a, false)),
            new Case("Gemm.gemmOwnKernel", a -> gemm(a, true)),
            new Case("Elementwise.embedding", ApiCases::embedding),
            new Case("Elementwise.addBias", ApiCases::addBias),
            new Case("Elementwise.siluMul", ApiCases::siluMul),
            new Case("Elementwise.argmax", ApiCases::argmax),
            new Case("CausalConv1d.apply", ApiCases::conv),
            new Case("CausalConv1d.update", ApiCases::convUpdate),
            new Case("SelectiveScan.scan", ApiCases::scan),
            new Case("SelectiveScan.scanPacked", ApiCases::scanPacked),
            new Case("SelectiveScan.step", ApiCases::step),
            new Case("Attention.append+attend", ApiCases::attention),
            new Case("Attention.merge", ApiCases::merge),
            new Case("KvCache.extend", ApiCases::kvCache),
            new Case("MoeLayer.forward", ApiCases::moeLayer),
            new Case("MoE stages", ApiCases::moeStages),
            new Case("Backend copies", ApiCases::copies),
            new Case("Tensor shapes", ApiCases::shapes));

    private static void rmsNorm(Args a) {
        DType t = a.floatType();
        int rows = a.dim(0, 3), cols = a.dim(1, 9);
        RmsNorm.apply(a.value("backend", a.backend, null), a.tensor("out", t, rows, cols), a.tensor("x", t, rows, cols),
                a.tensor("weight", t, cols), a.value("eps", 1e-5f, Float.NaN));
    }

    private static void rmsNormResidual(Args a) {
        DType t = a.floatType();
        int rows = a.dim(0, 3), cols = a.dim(1, 9);
        RmsNorm.applyWithResidual(a.backend, a.tensor("out", t, rows, cols), a.tensor("residualOut", t, rows, cols),
                a.tensor("x", t, rows, cols), a.tensor("residual", t, rows, cols), a.tensor("weight", t, cols), a.value("eps", 0f, -1f));
    }

    private static void gemm(Args a, boolean own) {
        DType t = a.floatType();
        int m = a.dim(0, 5), n = a.dim(0, 5), k = a.dim(0, 5);
        boolean ta = a.random.nextBoolean(), tb = a.random.nextBoolean();
        Tensor x = ta ? a.tensor("a", t, k, m) : a.tensor("a", t, m, k);
        Tensor y = tb ? a.tensor("b", t, n, k) : a.tensor("b", t, k, n);
        Tensor c = a.tensor("c", a.random.nextBoolean() ? t : DType.F32, m, n);
        float alpha = a.value("alpha", 1f, Float.POSITIVE_INFINITY), beta = a.value("beta", 0.5f, Float.NaN);
        if (own) Gemm.gemmOwnKernel(a.backend, c, x, ta, y, tb, alpha, beta);
        else Gemm.gemm(a.backend, c, x, ta, y, tb, alpha, beta);
    }

    private static void embedding(Args a) {
        DType t = a.floatType();
        int vocab = a.dim(1, 6), hidden = a.dim(0, 5), tokens = a.dim(0, 4);
        long[] ids = new long[tokens];
        for (int i = 0; i < tokens; i++) ids[i] = a.random.nextInt(vocab);
        // Ids out of the vocabulary are refused where Java can see them: on the host.
        if (tokens > 0 && a.backend.device().isHost()) ids[0] = a.value("ids[0]", ids[0], (long) vocab);
        Elementwise.embedding(a.backend, a.tensor("out", t, tokens, hidden), a.tensor("table", t, vocab, hidden), a.ints("ids", ids, tokens));
    }

    private static void addBias(Args a) {
        DType t = a.floatType();
        int rows = a.dim(0, 3), cols = a.dim(0, 6);
        Elementwise.addBias(a.backend, a.tensor("out", t, rows, cols), a.tensor("x", t, rows, cols), a.tensor("bias", t, cols));
    }

    private static void siluMul(Args a) {
        DType t = a.floatType();
        long[] shape = a.random.nextBoolean() ? new long[] {a.dim(0, 7)} : new long[] {a.dim(0, 3), a.dim(0, 4)};
        Elementwise.siluMul(a.backend, a.tensor("out", t, shape), a.tensor("gate", t, shape), a.tensor("up", t, shape));
    }

    private static void argmax(Args a) {
        int rows = a.dim(0, 3), cols = a.dim(1, 7);
        Elementwise.argmax(a.backend, a.tensor("out", DType.I32, rows), a.tensor("logits", DType.F32, rows, cols));
    }

    private static void conv(Args a) {
        DType t = a.floatType();
        int batch = a.dim(0, 2), channels = a.dim(0, 4), length = a.dim(0, 5), width = a.dim(1, 4);
        Tensor x = a.tensor("x", t, batch, channels, length);
        CausalConv1d.apply(a.backend, a.tensor("out", t, batch, channels, length), a.optional("finalState", t, batch, channels, width - 1), x,
                a.tensor("weight", t, channels, width), a.optional("bias", t, channels), a.optional("initialState", t, batch, channels, width - 1),
                a.random.nextBoolean());
    }

    private static void convUpdate(Args a) {
        DType t = a.floatType();
        int batch = a.dim(0, 3), channels = a.dim(0, 4), width = a.dim(2, 4);
        CausalConv1d.update(a.backend, a.tensor("out", t, batch, channels), a.tensor("convState", t, batch, channels, width - 1),
                a.tensor("x", t, batch, channels), a.tensor("weight", t, channels, width), a.optional("bias", t, channels), a.random.nextBoolean());
    }

    private static ScanWeights scanWeights(Args a, int channels, int nstate) {
        return a.object("weights", new ScanWeights(a.tensor("a", DType.F32, channels, nstate), a.optional("d", DType.F32, channels),
                a.optional("deltaBias", DType.F32, channels), a.random.nextBoolean()));
    }

    private static void scan(Args a) {
        DType t = a.floatType();
        int batch = a.dim(0, 2), channels = a.dim(0, 4), length = a.dim(0, 4), nstate = a.dim(1, 4);
        SelectiveScan.scan(a.backend, a.tensor("y", t, batch, channels, length), a.optional("finalState", DType.F32, batch, channels, nstate),
                a.tensor("u", t, batch, channels, length), a.tensor("delta", t, batch, channels, length), a.optional("z", t, batch, channels, length),
                a.tensor("b", t, batch, 1, nstate, length), a.tensor("c", t, batch, 1, nstate, length), scanWeights(a, channels, nstate),
                a.optional("initialState", DType.F32, batch, channels, nstate));
    }

    private static void scanPacked(Args a) {
        DType t = a.floatType();
        int channels = a.dim(1, 4), length = a.dim(0, 5), nstate = a.dim(1, 3), sequences = a.dim(1, 3);
        long[] starts = new long[sequences + 1];
        for (int i = 1; i < sequences; i++) starts[i] = Math.max(starts[i - 1], a.random.nextInt(length + 1));
        starts[sequences] = length;
        if (a.backend.device().isHost()) starts[0] = a.value("seqStarts[0]", 0L, -1L);
        SelectiveScan.scanPacked(a.backend, a.tensor("y", t, 1, channels, length),
                a.optional("finalStates", DType.F32, sequences, channels, nstate), a.tensor("u", t, 1, channels, length),
                a.tensor("delta", t, 1, channels, length), null, a.tensor("b", t, 1, 1, nstate, length), a.tensor("c", t, 1, 1, nstate, length),
                scanWeights(a, channels, nstate), a.ints("seqStarts", starts, sequences + 1), null);
    }

    private static void step(Args a) {
        DType t = a.floatType();
        int batch = a.dim(0, 3), channels = a.dim(1, 4), nstate = a.dim(1, 4), pool = batch + a.dim(1, 2); // larger than the batch: slots are required
        long[] slots = new long[batch];
        for (int i = 0; i < batch; i++) slots[i] = i;
        if (batch > 0 && a.backend.device().isHost()) slots[0] = a.value("slots[0]", 0L, (long) pool);
        SelectiveScan.step(a.backend, a.tensor("y", t, batch, channels), a.tensor("state", DType.F32, pool, channels, nstate),
                a.ints("slots", slots, batch), a.tensor("u", t, batch, channels), a.tensor("delta", t, batch, channels),
                a.optional("z", t, batch, channels), a.tensor("b", t, batch, 1, nstate), a.tensor("c", t, batch, 1, nstate),
                scanWeights(a, channels, nstate));
    }

    private static void attention(Args a) {
        DType t = a.floatType();
        int kvHeads = a.dim(1, 2), qHeads = kvHeads * a.dim(1, 2), headDim = 64, sequences = a.dim(0, 2);
        KvCache cache = a.own(KvCache.allocate(a.backend, t, 4, 4, kvHeads, headDim));
        int[] ids = new int[sequences], counts = new int[sequences];
        for (int i = 0; i < sequences; i++) {
            ids[i] = cache.newSequence();
            counts[i] = a.dim(0, 3);
        }
        KvBatch batch = a.own(cache.extend(ids, counts));
        int tokens = batch.totalNewTokens();
        Tensor q = a.tensor("q", t, tokens, qHeads, headDim);
        Attention.append(a.backend, a.object("batch", batch), q, a.tensor("k", t, tokens, kvHeads, headDim), a.tensor("v", t, tokens, kvHeads, headDim),
                a.random.nextBoolean() ? Rope.neox(10000f) : null, a.optional("positions", DType.I32, tokens));
        Attention.attend(a.backend, batch, q, a.tensor("out", t, tokens, qHeads, headDim), a.optional("lse", DType.F32, tokens, qHeads),
                a.object("options", AttentionOptions.decoder()), null);
    }

    private static void merge(Args a) {
        DType t = a.floatType();
        int parts = a.dim(1, 3), rows = a.dim(0, 3), heads = a.dim(1, 2), headDim = a.dim(1, 8);
        Attention.merge(a.backend, a.tensor("out", t, rows, heads, headDim), a.optional("lse", DType.F32, rows, heads),
                a.tensor("partOuts", t, parts, rows, heads, headDim), a.tensor("partLses", DType.F32, parts, rows, heads));
    }

    private static void kvCache(Args a) {
        KvCache cache = a.own(KvCache.allocate(a.backend, a.value("dtype", DType.F16, DType.I32), a.value("numBlocks", 3, 0), 4, 1, 64));
        int sequence = cache.newSequence();
        a.own(cache.extend(new int[] {a.value("sequence", sequence, sequence + 7)}, new int[] {a.value("newTokens", a.dim(0, 12), Integer.MAX_VALUE)}));
        a.own(cache.extendReusable(new int[] {sequence}, new int[] {0}, a.value("maxLength", 16, 0)));
    }

    private static RouterConfig routerConfig(Args a, int experts, int topK) {
        return a.object("config", RouterConfig.softmax(experts, topK, a.random.nextBoolean()));
    }

    private static void moeLayer(Args a) {
        DType t = a.floatType();
        int tokens = a.dim(0, 3), hidden = a.dim(1, 6), experts = a.dim(2, 4), topK = a.dim(1, 2), inter = a.dim(1, 5);
        RouterConfig config = routerConfig(a, experts, topK);
        MoeLayer.Weights w = a.object("w", new MoeLayer.Weights(a.tensor("router", t, experts, hidden), a.optional("routerBias", DType.F32, experts),
                a.tensor("gateUp", t, experts, 2L * inter, hidden), a.tensor("down", t, experts, hidden, inter)));
        MoeLayer.Workspace ws = a.own(MoeLayer.Workspace.allocate(a.backend, tokens, hidden, inter, a.value("dtype", t, DType.I8),
                RouterConfig.softmax(experts, topK, false)));
        MoeLayer.forward(a.backend, a.tensor("out", t, tokens, hidden), a.tensor("x", t, tokens, hidden), w, config,
                a.optional("shared", t, tokens, hidden), a.optional("residual", t, tokens, hidden), a.object("ws", ws));
    }

    private static void moeStages(Args a) {
        DType t = a.floatType();
        int tokens = a.dim(0, 3), hidden = a.dim(1, 5), experts = a.dim(2, 4), topK = a.dim(1, 2), inter = a.dim(1, 4);
        RouterConfig config = routerConfig(a, experts, topK);
        Tensor weights = a.tensor("weights", DType.F32, tokens, topK), ids = a.tensor("ids", DType.I32, tokens, topK);
        Tensor logits = a.tensor("logits", t, tokens, experts);
        Router.topK(a.backend, weights, ids, logits, a.optional("bias", DType.F32, experts), config);
        Dispatch.Buffers routing = a.own(Dispatch.Buffers.allocate(a.backend, tokens, topK, experts, a.value("tile", ExpertGemm.TILE_M, 0)));
        Dispatch.align(a.backend, a.object("routing", routing), ids, a.value("expertCapacity", a.dim(0, 2), -1));
        Tensor x = a.tensor("x", t, tokens, hidden), hiddenOut = a.tensor("hidden", t, (long) tokens * topK, inter);
        ExpertGemm.gateUp(a.backend, hiddenOut, x, a.tensor("gateUp", t, experts, 2L * inter, hidden), routing, a.value("topK", topK, 0));
        Tensor slotOut = a.tensor("slotOut", t, (long) tokens * topK, hidden);
        ExpertGemm.down(a.backend, slotOut, hiddenOut, a.tensor("down", t, experts, hidden, inter), a.optional("weights", DType.F32, tokens, topK),
                routing);
        Combine.apply(a.backend, a.tensor("out", t, tokens, hidden), slotOut, null, a.optional("shared", t, tokens, hidden),
                a.optional("residual", t, tokens, hidden), topK);
        try (RouterStats.Result stats = RouterStats.Result.allocate(a.backend, experts); Tensor f32 = a.tensor("logits32", DType.F32, tokens, experts)) {
            RouterStats.compute(a.backend, a.object("stats", stats), f32, routing, config);
        }
    }

    private static void copies(Args a) {
        DType t = a.random.nextBoolean() ? a.floatType() : DType.I32;
        long[] shape = {a.dim(0, 3), a.dim(0, 4)};
        a.backend.copy(a.tensorOrHost("dst", t, shape), a.tensorOrHost("src", t, shape));
        a.own(a.backend.toHost(a.anyTensorOrHost("toHost", t, shape)));
        a.own(a.backend.copyOf(a.anyTensorOrHost("copyOf", t, shape)));
        a.backend.poison(a.anyTensor("poison", t, shape));
        a.own(a.backend.allocate(a.value("dtype", t, null), a.value("shape", shape, new long[] {-1, 2})));
    }

    private static void shapes(Args a) {
        long[] shape = {a.dim(0, 3), a.dim(0, 4)};
        Tensor x = a.own(a.backend.allocate(a.floatType(), shape)); // the receiver: never the corrupted argument
        x.reshape(a.value("newShape", new long[] {shape[1], shape[0]}, new long[] {shape[0] * shape[1] + 1}));
        x.slice(a.value("dim", 0, 2), 0, a.value("end", shape[0], shape[0] + 1L));
        a.own(Tensor.allocateHost(DType.F32, a.value("hostShape", new long[] {2, 3}, new long[] {1L << 62})));
    }
}
