package dev.isthmus.model;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.Rope;
import dev.isthmus.backend.Backend;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.Tensor;

/**
 * Self-attention of a decoder layer: q/k/v projections (optional biases), Qwen3's RMSNorm of each
 * q and k head, RoPE on q and k, keys and values appended to the sequence's paged KV cache, causal
 * attention with GQA (query head h reads kv head h / (heads / kvHeads)), and the o projection.
 *
 * <pre>
 *   q = x Wq^T (+ bq),  k = x Wk^T (+ bk),  v = x Wv^T (+ bv)
 *   q_h = rmsnorm(q_h) * wqn,  k_h = rmsnorm(k_h) * wkn    (per head over head_dim; Qwen3 only)
 *   q, k = rope(q, k) at each token's position;  cache += (k, v)
 *   out = attention(q, cache) Wo^T (+ bo)
 * </pre>
 *
 * Phi-3 stores Wq, Wk, Wv as one qkv_proj (q rows, then k, then v), read as three views of it.
 */
final class AttentionBlock {
    private final int heads;
    private final int kvHeads;
    private final int headDim;
    private final Linear wq, wk, wv, wo;
    private final Tensor bq, bk, bv, bo;
    private final Tensor qNorm, kNorm;
    private final float normEps;
    private final Rope rope;
    private final AttentionOptions options;

    AttentionBlock(Weights w, ModelConfig c, String prefix) {
        heads = c.heads();
        kvHeads = c.kvHeads();
        headDim = c.headDim();
        long h = c.hiddenSize(), qDim = (long) heads * headDim, kvDim = (long) kvHeads * headDim;
        if (heads % kvHeads != 0) throw new IllegalArgumentException("config.json: num_attention_heads " + heads
                + " is not a multiple of num_key_value_heads " + kvHeads);
        if (c.family() == ModelConfig.Family.PHI3) {
            Linear[] qkv = w.fused(prefix + "qkv_proj.weight", h, qDim, kvDim, kvDim);
            wq = qkv[0];
            wk = qkv[1];
            wv = qkv[2];
        } else {
            wq = w.linear(prefix + "q_proj.weight", qDim, h);
            wk = w.linear(prefix + "k_proj.weight", kvDim, h);
            wv = w.linear(prefix + "v_proj.weight", kvDim, h);
        }
        wo = w.linear(prefix + "o_proj.weight", h, qDim);
        bq = w.optional(prefix + "q_proj.bias", c.qkvBias(), qDim);
        bk = w.optional(prefix + "k_proj.bias", c.qkvBias(), kvDim);
        bv = w.optional(prefix + "v_proj.bias", c.qkvBias(), kvDim);
        bo = w.optional(prefix + "o_proj.bias", c.outputBias(), h);
        qNorm = c.qkNorm() ? w.load(prefix + "q_norm.weight", headDim) : null;
        kNorm = c.qkNorm() ? w.load(prefix + "k_norm.weight", headDim) : null;
        normEps = c.normEps();
        rope = c.rope();
        // Granite scales the scores by attention_multiplier instead of 1 / sqrt(head_dim).
        AttentionOptions decoder = c.granite() != null ? AttentionOptions.decoder().withScale(c.granite().attentionMultiplier())
                : AttentionOptions.decoder();
        options = c.slidingWindow() > 0 ? decoder.withWindow(c.slidingWindow() - 1, -1) : decoder;
    }

    /** out (T, hidden) = attention block of x (T, hidden) for the step's sequences; appends to the layer's cache. */
    void forward(Step step, int layer, Tensor x, Tensor out) {
        var backend = step.backend;
        int tokens = step.totalTokens;
        Tensor q = project(step, x, wq, bq, heads);
        Tensor k = project(step, x, wk, bk, kvHeads);
        Tensor v = project(step, x, wv, bv, kvHeads);
        if (qNorm != null) {
            // One RMSNorm row per (token, head): the (T, heads, headDim) tensors viewed as (T * heads, headDim).
            normalizeHeads(backend, q, qNorm);
            normalizeHeads(backend, k, kNorm);
        }
        Tensor attended = step.allocate(x.dtype(), tokens, heads, headDim);
        KvBatch batch = step.kvBatch(layer);
        Attention.append(backend, batch, q, k, v, rope, null);
        Attention.attend(backend, batch, q, attended, null, options, step.attentionWorkspace(batch, heads));
        wo.apply(step, out, attended.reshape(tokens, (long) heads * headDim));
        if (bo != null) Elementwise.addBias(backend, out, out, bo);
    }

    private void normalizeHeads(Backend backend, Tensor heads, Tensor weight) {
        Tensor rows = heads.reshape(heads.dim(0) * heads.dim(1), headDim);
        RmsNorm.apply(backend, rows, rows, weight, normEps);
    }

    /** x W^T (+ b) as (T, heads, headDim). */
    private Tensor project(Step step, Tensor x, Linear weight, Tensor bias, int count) {
        Tensor y = step.allocate(x.dtype(), step.totalTokens, (long) count * headDim);
        weight.apply(step, y, x);
        if (bias != null) Elementwise.addBias(step.backend, y, y, bias);
        return y.reshape(step.totalTokens, count, headDim);
    }
}
