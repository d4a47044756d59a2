package dev.isthmus.cli;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.AttentionWorkspace;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@link Attention#attend} over a paged KV cache, as the prefill and the decode ops run it: the
 * cache must already hold every token of each sequence, the new ones included (rope-append
 * writes them). Decode has one new token per sequence and splits the KV length over blocks with
 * an {@link AttentionWorkspace}; prefill has new_tokens and no split, as the benchmark runs them.
 */
abstract class AttendOp implements Op {
    /** True for one new token per sequence (no new_tokens input, split-KV workspace). */
    abstract boolean decode();

    @Override
    public String description() {
        return "out = softmax(scale * q k^T + mask) v over each sequence's keys in the paged cache; lse = log-sum-exp of the scores";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = new ArrayList<>();
        specs.add(new TensorSpec("q", decode() ? "(S, Hq, d)" : "(T, Hq, d)", FLOATS, false,
                (decode() ? "one query per sequence" : "the new tokens' queries, packed by sequence") + "; Hkv divides Hq; its dtype is the op's"));
        specs.addAll(AttentionOpParts.cacheSpecs(!decode()));
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return AttentionOpParts.MASK;
    }

    @Override
    public List<TensorSpec> outputs() {
        String rows = decode() ? "S" : "T";
        return List.of(new TensorSpec("out", "(" + rows + ", Hq, d)", Set.of(), false, "q's dtype"),
                new TensorSpec("lse", "(" + rows + ", Hq)", Set.of(), false, "f32, natural log; -inf for a row that sees no key"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return AttentionOpParts.kernelDtypes(given);
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        AttentionOptions mask = AttentionOpParts.mask(options);
        AttentionOpParts.Layout layout = AttentionOpParts.layout(in, decode() ? null : in.get("new_tokens"));
        Tensor q = in.get("q"), keys = in.get("keys");
        Checks.rank("q", q, 3);
        long tokens = layout.totalNew(), qHeads = q.dim(1), kvHeads = keys.dim(2), headDim = keys.dim(3);
        Checks.shape("q", q, tokens, qHeads, headDim);
        if (qHeads % kvHeads != 0) throw new IllegalArgumentException("q has " + qHeads + " heads, not a multiple of the " + kvHeads + " kv heads of keys");

        DType dtype = q.dtype();
        // The lse is f32 but computed from scores of q's dtype with approximate exponentials on the
        // GPU: held to q's dtype's bound, as the attention tests hold it.
        List<Output> outputs = List.of(new Output("out", dtype, q.shape(), null),
                new Output("lse", DType.F32, new long[] {tokens, qHeads}, null, Compare.boundFor(dtype)));
        Kernel kernel = new Attend(new AttentionOpParts.Batches(layout), mask, decode(), (int) qHeads);
        // As AttentionBench counts: the K and V of every sequence read once, q read and out written,
        // here also the lse written; FLOPs 4 * d per visible query-key pair and query head (q.k, p.v).
        double bytes = 2.0 * layout.totalKv() * kvHeads * headDim * dtype.byteSize() + 2.0 * tokens * qHeads * headDim * dtype.byteSize()
                + 4.0 * tokens * qHeads;
        double flops = 4.0 * qHeads * headDim * layout.visiblePairs(mask);
        String shape = "b" + layout.cached().length + (decode() ? "-ctx" + layout.maxKv() : "-tokens" + tokens
                + (layout.totalKv() > tokens ? "-ctx" + layout.maxKv() : ""));
        return new Call(outputs, kernel, name(), shape, dtype, bytes, flops);
    }

    /** The attend call with each cache's batch (and, decoding, its workspace) kept between runs. */
    private record Attend(AttentionOpParts.Batches batches, AttentionOptions mask, boolean split, int qHeads,
                          Map<KvBatch, AttentionWorkspace> workspaces) implements Kernel {
        Attend(AttentionOpParts.Batches batches, AttentionOptions mask, boolean split, int qHeads) {
            this(batches, mask, split, qHeads, new IdentityHashMap<>());
        }

        @Override
        public void run(Backend backend, Map<String, Tensor> i, Map<String, Tensor> o) {
            KvBatch batch = batches.over(backend, i.get("keys"), i.get("values"));
            AttentionWorkspace workspace = split ? workspaces.computeIfAbsent(batch, b -> AttentionWorkspace.allocate(backend, b, qHeads)) : null;
            Attention.attend(backend, batch, i.get("q"), o.get("out"), o.get("lse"), mask, workspace);
        }

        @Override
        public void close() {
            workspaces.values().forEach(AttentionWorkspace::close);
            batches.close();
        }
    }
}
