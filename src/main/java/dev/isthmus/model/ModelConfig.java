package dev.isthmus.model;

import dev.isthmus.attention.Rope;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The shape of a decoder model, read from a Hugging Face config.json. One record covers every
 * supported family; the fields a family does not use are 0. Which mixer and which FFN each layer
 * has follows from the family and, for the hybrid, the layer periods.
 *
 * @param family         which naming and layer pattern the checkpoint follows
 * @param headDim        per attention head (config head_dim, else hidden / heads)
 * @param qkvBias        q/k/v projections carry biases (Qwen2, Llama with attention_bias)
 * @param outputBias     the o projection carries a bias (Llama with attention_bias)
 * @param ropeTheta      RoPE base; 0 for attention without positions (Jamba)
 * @param ropeScale      RoPE position scale: 1 / factor of linear rope_scaling, else 1
 * @param ropeLlama3     Llama 3.1's RoPE frequency scaling (rope_type "llama3"), or null
 * @param slidingWindow  keys a query may see, itself included (Mistral), or 0 for all
 * @param mambaInner     Mamba channels D (expand * hidden)
 * @param dtRank         rank of the Mamba time-step projection
 * @param experts        routed experts of an MoE FFN; 0 for dense
 * @param renormalize    whether the top-k routing weights are divided by their sum (Mixtral yes, Jamba no; Qwen3-MoE norm_topk_prob)
 * @param expertPeriod   an MoE FFN in layer i when i % expertPeriod == expertOffset (Jamba; Qwen3-MoE's decoder_sparse_step,
 *                       offset step - 1)
 * @param expertIntermediateSize the width of each expert (Qwen3-MoE moe_intermediate_size; intermediateSize elsewhere)
 * @param denseLayers    layers whose FFN is dense although the period would make them MoE (Qwen3-MoE mlp_only_layers)
 * @param longRope       Phi-3's LongRoPE scaling (rope_type "longrope"), or null
 * @param mamba2         the Mamba-2 mixer's groups and time-step limits, or null for families without it; a
 *                       Mamba-2 model's SSD heads are {@code heads} of {@code headDim} channels
 * @param granite        Granite 4.0-H's layer pattern, SSD heads and multipliers, or null for other families
 */
public record ModelConfig(Family family, int vocabSize, int hiddenSize, int layers, int heads, int kvHeads, int headDim,
                          int intermediateSize, float normEps, float ropeTheta, float ropeScale, Rope.Llama3Scaling ropeLlama3,
                          boolean qkvBias, boolean outputBias,
                          int slidingWindow, boolean tieEmbeddings, int mambaInner, int stateSize, int convKernel, int dtRank,
                          boolean convBias, int experts, int topK, boolean renormalize, int attentionPeriod, int attentionOffset,
                          int expertPeriod, int expertOffset, List<Integer> eosTokens, int expertIntermediateSize, List<Integer> denseLayers,
                          Rope.LongRope longRope, Mamba2 mamba2, Granite granite) {

    /** Every family but Granite 4.0-H. */
    public ModelConfig(Family family, int vocabSize, int hiddenSize, int layers, int heads, int kvHeads, int headDim,
                       int intermediateSize, float normEps, float ropeTheta, float ropeScale, Rope.Llama3Scaling ropeLlama3,
                       boolean qkvBias, boolean outputBias,
                       int slidingWindow, boolean tieEmbeddings, int mambaInner, int stateSize, int convKernel, int dtRank,
                       boolean convBias, int experts, int topK, boolean renormalize, int attentionPeriod, int attentionOffset,
                       int expertPeriod, int expertOffset, List<Integer> eosTokens, int expertIntermediateSize, List<Integer> denseLayers,
                       Rope.LongRope longRope, Mamba2 mamba2) {
        this(family, vocabSize, hiddenSize, layers, heads, kvHeads, headDim, intermediateSize, normEps, ropeTheta, ropeScale, ropeLlama3,
                qkvBias, outputBias, slidingWindow, tieEmbeddings, mambaInner, stateSize, convKernel, dtRank, convBias, experts, topK,
                renormalize, attentionPeriod, attentionOffset, expertPeriod, expertOffset, eosTokens, expertIntermediateSize, denseLayers,
                longRope, mamba2, null);
    }

    /** Every family but Mamba-2 and Granite 4.0-H. */
    public ModelConfig(Family family, int vocabSize, int hiddenSize, int layers, int heads, int kvHeads, int headDim,
                       int intermediateSize, float normEps, float ropeTheta, float ropeScale, Rope.Llama3Scaling ropeLlama3,
                       boolean qkvBias, boolean outputBias,
                       int slidingWindow, boolean tieEmbeddings, int mambaInner, int stateSize, int convKernel, int dtRank,
                       boolean convBias, int experts, int topK, boolean renormalize, int attentionPeriod, int attentionOffset,
                       int expertPeriod, int expertOffset, List<Integer> eosTokens, int expertIntermediateSize, List<Integer> denseLayers,
                       Rope.LongRope longRope) {
        this(family, vocabSize, hiddenSize, layers, heads, kvHeads, headDim, intermediateSize, normEps, ropeTheta, ropeScale, ropeLlama3,
                qkvBias, outputBias, slidingWindow, tieEmbeddings, mambaInner, stateSize, convKernel, dtRank, convBias, experts, topK,
                renormalize, attentionPeriod, attentionOffset, expertPeriod, expertOffset, eosTokens, expertIntermediateSize, denseLayers,
                longRope, null);
    }

    /**
     * The Mamba-2 mixer beside {@link #heads} x {@link #headDim} = {@link #mambaInner}: B and C in
     * {@code groups} groups of {@link #stateSize} (config n_groups), dt' clamped to [dtMin, dtMax]
     * (config time_step_limit).
     */
    public record Mamba2(int groups, float dtMin, float dtMax) {}

    /**
     * Granite 4.0-H (GraniteMoeHybridForCausalLM) beside the Mamba-2 mixer of its other layers:
     * <pre>
     *   r = embed(tokens) * embeddingMultiplier
     *   per layer:  r += residualMultiplier * mixer(rmsnorm(r))              (attention or Mamba-2)
     *               r += residualMultiplier * (moe(x) + shared_mlp(x)),  x = rmsnorm(r)
     *   logits = lm_head(rmsnorm(r)) / logitsScaling
     * </pre>
     * with the attention scores scaled by attentionMultiplier instead of 1 / sqrt(head_dim).
     *
     * @param attentionLayers the layers that attend (layer_types "attention"); Mamba-2 in the others
     * @param ssdHeads        the Mamba-2 layers' SSD heads (mamba_n_heads), apart from the attention heads
     * @param ssdHeadDim      channels per SSD head (mamba_d_head)
     */
    public record Granite(List<Integer> attentionLayers, int ssdHeads, int ssdHeadDim, float embeddingMultiplier,
                          float attentionMultiplier, float residualMultiplier, float logitsScaling) {}

    /** The checkpoint families: their architecture names in config.json and their tensor naming. */
    public enum Family {
        LLAMA("LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"),
        MIXTRAL("MixtralForCausalLM"),
        MAMBA("MambaForCausalLM"),
        MAMBA2("Mamba2ForCausalLM"),
        JAMBA("JambaForCausalLM"),
        /** Llama-style with RMSNorm of each q and k head before RoPE. */
        QWEN3("Qwen3ForCausalLM"),
        /** Qwen3's attention; MoE FFNs by decoder_sparse_step and mlp_only_layers, dense ones elsewhere. */
        QWEN3_MOE("Qwen3MoeForCausalLM"),
        /** Llama-style with fused qkv_proj and gate_up_proj, and LongRoPE. */
        PHI3("Phi3ForCausalLM"),
        /** Granite 4.0-H: Mamba-2 or attention by layer_types, an MoE plus a shared MLP (or the shared MLP alone) in every layer. */
        GRANITE_HYBRID("GraniteMoeHybridForCausalLM");

        final List<String> architectures;

        Family(String... architectures) {
            this.architectures = List.of(architectures);
        }

        static Family of(String architecture) {
            for (Family f : values())
                if (f.architectures.contains(architecture)) return f;
            throw new IllegalArgumentException("unknown architecture " + architecture + "; supported: LlamaForCausalLM, MistralForCausalLM, "
                    + "Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, Phi3ForCausalLM, MixtralForCausalLM, MambaForCausalLM, "
                    + "Mamba2ForCausalLM, JambaForCausalLM, GraniteMoeHybridForCausalLM");
        }
    }

    /** Whether layer {@code i} mixes tokens by attention (else by a Mamba block). */
    public boolean isAttention(int i) {
        return switch (family) {
            case LLAMA, MIXTRAL, QWEN3, QWEN3_MOE, PHI3 -> true;
            case MAMBA, MAMBA2 -> false;
            case JAMBA -> i % attentionPeriod == attentionOffset;
            case GRANITE_HYBRID -> granite.attentionLayers().contains(i);
        };
    }

    /** Whether layer {@code i} has a feed-forward block after its mixer (Mamba's layers have none). */
    public boolean hasFfn(int i) {
        return family != Family.MAMBA && family != Family.MAMBA2;
    }

    /** Whether layer {@code i}'s feed-forward block is a mixture of experts. */
    public boolean isMoe(int i) {
        return switch (family) {
            case LLAMA, MAMBA, MAMBA2, QWEN3, PHI3 -> false;
            case MIXTRAL -> true;
            case JAMBA -> experts > 1 && i % expertPeriod == expertOffset;
            case QWEN3_MOE -> experts > 0 && i % expertPeriod == expertOffset && !denseLayers.contains(i);
            case GRANITE_HYBRID -> experts > 0;
        };
    }

    /**
     * Whether layer {@code i} has a dense SwiGLU FFN of {@link #intermediateSize}: the FFN of a
     * layer without experts, or Granite's shared MLP, which runs beside the experts.
     */
    public boolean hasDenseFfn(int i) {
        return hasFfn(i) && (!isMoe(i) || family == Family.GRANITE_HYBRID);
    }

    /** SSD heads of a Mamba-2 layer (Granite's mamba_n_heads; Mamba-2's heads). */
    public int ssdHeads() {
        return granite != null ? granite.ssdHeads() : heads;
    }

    /** Channels per SSD head of a Mamba-2 layer (Granite's mamba_d_head; Mamba-2's headDim). */
    public int ssdHeadDim() {
        return granite != null ? granite.ssdHeadDim() : headDim;
    }

    /** Whether each attention head's q and k go through their own RMSNorm (over head_dim) before RoPE (Qwen3). */
    public boolean qkNorm() {
        return family == Family.QWEN3 || family == Family.QWEN3_MOE;
    }

    /** Channels of a Mamba layer's causal conv: x alone (Mamba-1), or x, B and C (Mamba-2). */
    public int convChannels() {
        return mamba2 == null ? mambaInner : mambaInner + 2 * mamba2.groups() * stateSize;
    }

    /** Attention heads of the built-in configs: 64 wide, the smallest head the attention kernels take. */
    static final int HEAD_DIM = 64;

    /** Llama-style: attention (hidden / 64 query heads, GQA over {@code kvHeads}) and a dense SwiGLU FFN in every layer. */
    public static ModelConfig llama(int vocab, int hidden, int layers, int kvHeads, int intermediate) {
        return attentionConfig(Family.LLAMA, vocab, hidden, layers, kvHeads, intermediate, 0, 0);
    }

    /** Mixtral-style: attention and a softmax top-k MoE FFN of {@code experts} experts of {@code intermediate} each. */
    public static ModelConfig mixtral(int vocab, int hidden, int layers, int kvHeads, int intermediate, int experts, int topK) {
        return attentionConfig(Family.MIXTRAL, vocab, hidden, layers, kvHeads, intermediate, experts, topK);
    }

    private static ModelConfig attentionConfig(Family family, int vocab, int hidden, int layers, int kvHeads, int intermediate, int experts,
                                               int topK) {
        return new ModelConfig(family, vocab, hidden, layers, hidden / HEAD_DIM, kvHeads, HEAD_DIM, intermediate, 1e-5f, 10000f, 1f, null,
                false, false, 0, false, 0, 0, 0, 0, false, experts, topK, true, 1, 0, 1, 0, List.of(), intermediate, List.of(), null);
    }

    /** Mamba-1: D = 2 hidden channels, N states, a conv of 4 and time-step rank hidden / 16. */
    public static ModelConfig mamba(int vocab, int hidden, int layers, int stateSize) {
        return new ModelConfig(Family.MAMBA, vocab, hidden, layers, 0, 0, 0, 0, 1e-5f, 0, 1, null, false, false, 0, true, 2 * hidden, stateSize, 4,
                (hidden + 15) / 16, true, 0, 0, false, 1, 1, 1, 1, List.of(), 0, List.of(), null);
    }

    /** Mamba-2: D = 2 hidden channels in heads of 64, one group of N states, a conv of 4, no time-step limit. */
    public static ModelConfig mamba2(int vocab, int hidden, int layers, int stateSize) {
        int inner = 2 * hidden;
        return new ModelConfig(Family.MAMBA2, vocab, hidden, layers, inner / HEAD_DIM, 0, HEAD_DIM, 0, 1e-5f, 0, 1, null, false, false, 0, true,
                inner, stateSize, 4, 0, true, 0, 0, false, 1, 1, 1, 1, List.of(), 0, List.of(), null, new Mamba2(1, 0f, Float.POSITIVE_INFINITY));
    }

    /**
     * Jamba-style hybrid: attention in one layer of every {@code attentionPeriod} (at half the
     * period), Mamba in the others, an MoE FFN in every second layer and a dense one elsewhere.
     */
    public static ModelConfig jamba(int vocab, int hidden, int layers, int kvHeads, int intermediate, int experts, int topK,
                                    int attentionPeriod) {
        return new ModelConfig(Family.JAMBA, vocab, hidden, layers, hidden / HEAD_DIM, kvHeads, HEAD_DIM, intermediate, 1e-6f, 0, 1, null,
                false, false, 0, false, 2 * hidden, 16, 4, (hidden + 15) / 16, true, experts, topK, false, attentionPeriod, attentionPeriod / 2, 2,
                1, List.of(), intermediate, List.of(), null);
    }

    /**
     * Granite-4.0-H-style hybrid: attention (no RoPE, scores scaled by 1 / head_dim as Granite's
     * attention_multiplier is) in one layer of every {@code attentionPeriod} (at half the period),
     * Mamba-2 elsewhere (D = 2 hidden in heads of 64, one group of 128 states); in every layer an MoE
     * of {@code experts} x {@code expertIntermediate} top-{@code topK} beside a shared MLP of
     * {@code sharedIntermediate}; Granite-4.0-H-tiny's embedding (12), residual (0.22) and logits (6) multipliers.
     */
    public static ModelConfig graniteHybrid(int vocab, int hidden, int layers, int kvHeads, int expertIntermediate, int experts, int topK,
                                            int sharedIntermediate, int attentionPeriod) {
        int inner = 2 * hidden;
        List<Integer> attention = new java.util.ArrayList<>();
        for (int i = attentionPeriod / 2; i < layers; i += attentionPeriod) attention.add(i);
        return new ModelConfig(Family.GRANITE_HYBRID, vocab, hidden, layers, hidden / HEAD_DIM, kvHeads, HEAD_DIM, sharedIntermediate, 1e-5f, 0,
                1, null, false, false, 0, true, inner, 128, 4, 0, true, experts, topK, true, 1, 0, 1, 0, List.of(), expertIntermediate, List.of(),
                null, new Mamba2(1, 0f, Float.POSITIVE_INFINITY),
                new Granite(List.copyOf(attention), inner / HEAD_DIM, HEAD_DIM, 12f, 1f / HEAD_DIM, 0.22f, 6f));
    }

    /** Reads a parsed config.json; a missing or malformed field is an IllegalArgumentException naming it. */
    public static ModelConfig fromJson(Map<String, Object> json) {
        Fields f = new Fields(json);
        Object archs = json.get("architectures");
        if (!(archs instanceof List<?> list) || list.isEmpty() || !(list.getFirst() instanceof String arch))
            throw new IllegalArgumentException("config.json has no \"architectures\" list naming the model class");
        Family family = Family.of(arch);
        int vocab = f.integer("vocab_size");
        int hidden = f.integer("hidden_size");
        int layers = f.integer("num_hidden_layers");
        List<Integer> eos = f.integers("eos_token_id");
        refuseUnsupported(f);
        boolean positions = switch (family) {
            case MAMBA, MAMBA2, JAMBA -> false;
            case GRANITE_HYBRID -> graniteRope(f);
            default -> true;
        };
        Scaling scaling = positions ? ropeScaling(json) : null;
        if (scaling != null && scaling.type().equals("longrope") && family != Family.PHI3)
            throw new IllegalArgumentException("config.json: " + scaling.key() + " type longrope is read for Phi3ForCausalLM only "
                    + "(supported: default, linear, llama3)");
        ModelConfig config = switch (family) {
            case MAMBA -> {
                if (f.bool("use_bias", false)) throw new IllegalArgumentException("config.json: use_bias = true (biases on in_proj/out_proj) is not supported");
                int inner = f.integer("intermediate_size");
                yield new ModelConfig(family, vocab, hidden, layers, 0, 0, 0, 0, f.number("layer_norm_epsilon", 1e-5f), 0, 1, null,
                        false, false, 0, f.bool("tie_word_embeddings", true), inner, f.integer("state_size"), f.integer("conv_kernel"),
                        f.integer("time_step_rank"), f.bool("use_conv_bias", true), 0, 0, false, 1, 1, 1, 1, eos, 0, List.of(), null);
            }
            case MAMBA2 -> mamba2(f, family, vocab, hidden, layers, eos);
            case GRANITE_HYBRID -> granite(f, json, family, vocab, hidden, layers, eos);
            case LLAMA, MIXTRAL -> {
                int heads = f.integer("num_attention_heads");
                int kvHeads = f.integer("num_key_value_heads", heads);
                boolean qwen = arch.equals("Qwen2ForCausalLM");
                boolean attentionBias = f.bool("attention_bias", false);
                int window = slidingWindow(f, qwen, layers);
                int experts = family == Family.MIXTRAL ? f.integer("num_local_experts") : 0;
                int topK = family == Family.MIXTRAL ? f.integer("num_experts_per_tok") : 0;
                int intermediate = f.integer("intermediate_size");
                yield new ModelConfig(family, vocab, hidden, layers, heads, kvHeads, headDim(f, hidden, heads),
                        intermediate, f.number("rms_norm_eps", 1e-6f), ropeTheta(json), ropeScale(json), ropeLlama3(json),
                        qwen || attentionBias, attentionBias, window, f.bool("tie_word_embeddings", false), 0, 0, 0, 0, false, experts,
                        topK, true, 1, 0, 1, 0, eos, intermediate, List.of(), null);
            }
            case QWEN3, QWEN3_MOE, PHI3 -> newerAttentionFamily(family, f, json, vocab, hidden, layers, eos);
            case JAMBA -> {
                if (f.bool("mamba_proj_bias", false)) throw new IllegalArgumentException("config.json: mamba_proj_bias = true is not supported");
                int heads = f.integer("num_attention_heads");
                int stateSize = f.integer("mamba_d_state");
                long inner = (long) f.integer("mamba_expand") * hidden;
                if (inner > Integer.MAX_VALUE) throw new IllegalArgumentException("config.json: mamba_expand * hidden_size = " + inner + " is too large");
                yield new ModelConfig(family, vocab, hidden, layers, heads, f.integer("num_key_value_heads", heads),
                        heads < 1 ? 0 : hidden / heads, // heads < 1 is refused by name when the record is made
                        f.integer("intermediate_size"), f.number("rms_norm_eps", 1e-6f), 0, 1, null, false, false, 0,
                        f.bool("tie_word_embeddings", false), (int) inner, stateSize, f.integer("mamba_d_conv"),
                        jambaDtRank(f, hidden), f.bool("mamba_conv_bias", true), f.integer("num_experts", 1),
                        f.integer("num_experts_per_tok", 1), false, f.integer("attn_layer_period"), f.integer("attn_layer_offset"),
                        f.integer("expert_layer_period"), f.integer("expert_layer_offset"), eos, f.integer("intermediate_size"), List.of(), null);
            }
        };
        ConfigChecks.check(config);
        return config;
    }

    /**
     * Qwen3, Qwen3-MoE and Phi-3. Fields read for them, beyond the Llama ones: attention_bias (q, k,
     * v and o biases together; Phi-3 has none), head_dim, the sliding window (Qwen3 as Qwen2: with
     * use_sliding_window, by layer_types or max_window_layers; Qwen3-MoE: every layer with
     * use_sliding_window; Phi-3: every layer when sliding_window is set), Qwen3-MoE's
     * num_experts (or num_local_experts), num_experts_per_tok, moe_intermediate_size,
     * decoder_sparse_step, mlp_only_layers and norm_topk_prob, and Phi-3's LongRoPE. Training-only
     * fields (router_aux_loss_coef, output_router_logits, the dropouts) change no logits and are
     * not read.
     */
    private static ModelConfig newerAttentionFamily(Family family, Fields f, Map<String, Object> json, int vocab, int hidden, int layers,
                                                    List<Integer> eos) {
        int heads = f.integer("num_attention_heads");
        int kvHeads = f.integer("num_key_value_heads", heads);
        int headDim = headDim(f, hidden, heads);
        boolean bias = family != Family.PHI3 && f.bool("attention_bias", false);
        Object partial = json.get("partial_rotary_factor");
        if (partial != null && !(partial instanceof Number n && n.doubleValue() == 1))
            throw new IllegalArgumentException("config.json: partial_rotary_factor " + partial + " is not supported (only 1)");
        int window = switch (family) {
            case QWEN3_MOE -> f.bool("use_sliding_window", false) && json.get("sliding_window") != null ? positiveWindow(f) : 0;
            default -> slidingWindow(f, family == Family.QWEN3, layers);
        };
        int intermediate = f.integer("intermediate_size");
        int experts = 0, topK = 0, step = 1, expertIntermediate = intermediate;
        List<Integer> denseLayers = List.of();
        boolean renormalize = false;
        if (family == Family.QWEN3_MOE) {
            experts = f.integer(json.get("num_experts") != null ? "num_experts" : "num_local_experts");
            topK = f.integer("num_experts_per_tok");
            expertIntermediate = f.integer("moe_intermediate_size");
            step = f.integer("decoder_sparse_step", 1);
            if (step < 1) throw new IllegalArgumentException("config.json: decoder_sparse_step must be >= 1, is " + step);
            denseLayers = f.integers("mlp_only_layers");
            renormalize = f.bool("norm_topk_prob", false);
        }
        return new ModelConfig(family, vocab, hidden, layers, heads, kvHeads, headDim, intermediate, f.number("rms_norm_eps", 1e-6f),
                ropeTheta(json), ropeScale(json), ropeLlama3(json), bias, bias, window, f.bool("tie_word_embeddings", false), 0, 0, 0, 0,
                false, experts, topK, renormalize, 1, 0, step, step - 1, eos, expertIntermediate, denseLayers,
                longRope(json, headDim));
    }

    /**
     * Mamba2ForCausalLM: the mixer's in_proj gives z, x, B, C and dt; the gated RMSNorm normalises
     * each of n_groups groups. chunk_size is the reference kernel's tiling (the result does not
     * depend on it) and time_step_min/max/floor only initialise dt_bias: neither is read.
     * residual_in_fp32 is taken as the residual stream is kept: in the compute dtype.
     */
    private static ModelConfig mamba2(Fields f, Family family, int vocab, int hidden, int layers, List<Integer> eos) {
        if (f.bool("use_bias", false)) throw new IllegalArgumentException("config.json: use_bias = true (biases on in_proj/out_proj) is not supported");
        if (!f.bool("rms_norm", true)) throw new IllegalArgumentException("config.json: rms_norm = false (no gated RMSNorm before out_proj) is not supported");
        Object types = f.json.get("layer_types");
        if (types instanceof List<?> list && list.stream().anyMatch(t -> !"mamba".equals(t)))
            throw new IllegalArgumentException("config.json: layer_types " + types + " has layers other than mamba; not supported for Mamba2ForCausalLM");
        double inner = f.number("expand", 2f) * (double) hidden;
        if (inner != Math.rint(inner) || inner < 1 || inner > Integer.MAX_VALUE)
            throw new IllegalArgumentException("config.json: expand * hidden_size = " + inner + " is not a usable channel count");
        float[] limit = timeStepLimit(f);
        return new ModelConfig(family, vocab, hidden, layers, f.integer("num_heads"), 0, f.integer("head_dim"), 0,
                f.number("layer_norm_epsilon", 1e-5f), 0, 1, null, false, false, 0, f.bool("tie_word_embeddings", false), (int) inner,
                f.integer("state_size"), f.integer("conv_kernel"), 0, f.bool("use_conv_bias", true), 0, 0, false, 1, 1, 1, 1, eos, 0,
                List.of(), null, new Mamba2(f.integer("n_groups", 1), limit[0], limit[1]));
    }

    /** time_step_limit as [min, max]: dt' is clamped to it; (0, inf) when absent. */
    private static float[] timeStepLimit(Fields f) {
        Object limits = f.json.get("time_step_limit");
        if (limits == null) return new float[] {0f, Float.POSITIVE_INFINITY};
        if (!(limits instanceof List<?> l) || l.size() != 2)
            throw new IllegalArgumentException("config.json: time_step_limit must be a list of two numbers, is " + limits);
        return new float[] {pythonFloat("time_step_limit[0]", l.get(0)), pythonFloat("time_step_limit[1]", l.get(1))};
    }

    /** Whether Granite's attention rotates q and k: position_embedding_type "rope"; "nope" or absent (transformers' None) for none. */
    private static boolean graniteRope(Fields f) {
        Object type = f.json.get("position_embedding_type");
        if (type == null || "nope".equals(type)) return false;
        if ("rope".equals(type)) return true;
        throw new IllegalArgumentException("config.json: position_embedding_type " + type + " is not supported (rope, nope)");
    }

    /**
     * GraniteMoeHybridForCausalLM (Granite 4.0-H). layer_types names each layer's mixer ("mamba" or
     * "attention", or transformers 5's "linear_attention" and "full_attention"; all Mamba when
     * absent, as transformers has it). The Mamba layers are Mamba-2 (mamba_n_heads of mamba_d_head,
     * mamba_n_groups, mamba_d_state, mamba_d_conv, mamba_expand, mamba_conv_bias, time_step_limit;
     * mamba_chunk_size is the reference kernel's tiling and is not read; mamba_proj_bias is
     * refused). Every layer's FFN is the shared MLP (shared_intermediate_size) plus, with
     * num_local_experts > 0, a softmax top-k MoE of experts of intermediate_size: transformers
     * takes the softmax of the top-k router logits, which is the softmax renormalised over the top
     * k. The multipliers are {@link Granite}'s.
     */
    private static ModelConfig granite(Fields f, Map<String, Object> json, Family family, int vocab, int hidden, int layers,
                                       List<Integer> eos) {
        if (f.bool("mamba_proj_bias", false))
            throw new IllegalArgumentException("config.json: mamba_proj_bias = true (biases on in_proj/out_proj) is not supported");
        List<Integer> attentionLayers = new java.util.ArrayList<>();
        Object types = json.get("layer_types");
        if (types != null) {
            if (!(types instanceof List<?> list) || list.size() != layers)
                throw new IllegalArgumentException("config.json: layer_types must be a list of num_hidden_layers = " + layers + " names");
            for (int i = 0; i < layers; i++) {
                Object t = list.get(i);
                if ("attention".equals(t) || "full_attention".equals(t)) attentionLayers.add(i);
                else if (!"mamba".equals(t) && !"linear_attention".equals(t))
                    throw new IllegalArgumentException("config.json: layer_types entry " + t + " is not supported (mamba, attention)");
            }
        }
        int heads = f.integer("num_attention_heads");
        int headDim = headDim(f, hidden, heads);
        boolean bias = f.bool("attention_bias", false);
        boolean rope = graniteRope(f);
        double inner = f.integer("mamba_expand", 2) * (double) hidden;
        if (inner > Integer.MAX_VALUE) throw new IllegalArgumentException("config.json: mamba_expand * hidden_size = " + inner + " is too large");
        int ssdHeads = f.integer("mamba_n_heads");
        if (ssdHeads < 1) throw new IllegalArgumentException("config.json: mamba_n_heads must be >= 1, is " + ssdHeads);
        int ssdHeadDim = json.get("mamba_d_head") == null || "auto".equals(json.get("mamba_d_head")) ? (int) inner / ssdHeads
                : f.integer("mamba_d_head");
        int experts = f.integer("num_local_experts");
        float[] limit = timeStepLimit(f);
        Granite granite = new Granite(List.copyOf(attentionLayers), ssdHeads, ssdHeadDim, f.number("embedding_multiplier", 1f),
                f.number("attention_multiplier", 1f), f.number("residual_multiplier", 1f), f.number("logits_scaling", 1f));
        return new ModelConfig(family, vocab, hidden, layers, heads, f.integer("num_key_value_heads", heads), headDim,
                f.integer("shared_intermediate_size"), f.number("rms_norm_eps", 1e-6f), rope ? ropeTheta(json) : 0,
                rope ? ropeScale(json) : 1, rope ? ropeLlama3(json) : null, bias, bias, 0, f.bool("tie_word_embeddings", false), (int) inner,
                f.integer("mamba_d_state"), f.integer("mamba_d_conv", 4), 0, f.bool("mamba_conv_bias", true), experts,
                experts > 0 ? f.integer("num_experts_per_tok") : 0, true, 1, 0, 1, 0, eos, experts > 0 ? f.integer("intermediate_size") : 0,
                List.of(), null, new Mamba2(f.integer("mamba_n_groups", 1), limit[0], limit[1]), granite);
    }

    /**
     * A float as transformers saves it: a number (bare Infinity and NaN included), or, for a value
     * JSON has no number for, {"__float__": "Infinity"} (transformers 5 writes infinities so).
     */
    private static float pythonFloat(String key, Object v) {
        if (v instanceof Number n) return n.floatValue();
        if (v instanceof Map<?, ?> m && m.size() == 1 && m.get("__float__") instanceof String text)
            switch (text) {
                case "Infinity", "inf" -> { return Float.POSITIVE_INFINITY; }
                case "-Infinity", "-inf" -> { return Float.NEGATIVE_INFINITY; }
                default -> { }
            }
        throw new IllegalArgumentException("config.json: " + key + " must be a number, is " + v);
    }

    /**
     * Fields that change the computation in ways these layers do not implement: refused by name
     * rather than ignored, since ignoring them gives a model that loads and computes other logits.
     */
    private static void refuseUnsupported(Fields f) {
        Object act = f.json.get("hidden_act");
        if (act != null && !"silu".equals(act) && !"swish".equals(act))
            throw new IllegalArgumentException("config.json: hidden_act " + act + " is not supported (only silu)");
        if (f.bool("mlp_bias", false)) throw new IllegalArgumentException("config.json: mlp_bias = true (biases on the MLP projections) is not supported");
    }

    /**
     * Keys a query sees through the sliding window, itself included, or 0 for all; the same for
     * every layer, so a config whose layers differ is refused. Qwen2 slides only with
     * use_sliding_window, and then only in the layers from max_window_layers on; a layer_types list
     * says per layer ("full_attention" or "sliding_attention").
     */
    private static int slidingWindow(Fields f, boolean qwen, int layers) {
        Object types = f.json.get("layer_types");
        if (types != null) {
            if (!(types instanceof List<?> list) || list.size() != layers)
                throw new IllegalArgumentException("config.json: layer_types must be a list of num_hidden_layers = " + layers + " names");
            boolean sliding = false, full = false;
            for (Object t : list) {
                if ("sliding_attention".equals(t)) sliding = true;
                else if ("full_attention".equals(t)) full = true;
                else throw new IllegalArgumentException("config.json: layer_types entry " + t + " is not supported (full_attention, sliding_attention)");
            }
            if (sliding && full)
                throw new IllegalArgumentException("config.json: layer_types mixes full_attention and sliding_attention layers; not supported");
            return sliding ? positiveWindow(f) : 0;
        }
        if (f.json.get("sliding_window") == null) return 0;
        if (!qwen) return positiveWindow(f);
        if (!f.bool("use_sliding_window", false)) return 0;
        int firstSliding = f.integer("max_window_layers", 28); // transformers' Qwen2Config default
        if (firstSliding >= layers) return 0;
        if (firstSliding > 0)
            throw new IllegalArgumentException("config.json: max_window_layers " + firstSliding + " with use_sliding_window: layers below it attend "
                    + "fully and the others through the window, which is not supported (only all or none of the " + layers + " layers)");
        return positiveWindow(f);
    }

    private static int positiveWindow(Fields f) {
        int window = f.integer("sliding_window");
        if (window < 1) throw new IllegalArgumentException("config.json: sliding_window must be >= 1, is " + window);
        return window;
    }

    private static int headDim(Fields f, int hidden, int heads) {
        if (heads < 1) throw new IllegalArgumentException("config.json: num_attention_heads must be >= 1, is " + heads);
        if (f.json.get("head_dim") != null) return f.integer("head_dim");
        if (hidden % heads != 0) throw new IllegalArgumentException("config.json: hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        return hidden / heads;
    }

    private static int jambaDtRank(Fields f, int hidden) {
        Object rank = f.json.get("mamba_dt_rank");
        return rank == null || "auto".equals(rank) ? (hidden + 15) / 16 : f.integer("mamba_dt_rank");
    }

    /** rope_theta, at the top level or (newer transformers) inside rope_parameters; 10000 by default. */
    private static float ropeTheta(Map<String, Object> json) {
        if (json.get("rope_theta") != null) return new Fields(json).number("rope_theta", 10000f);
        if (json.get("rope_parameters") instanceof Map<?, ?> m && m.get("rope_theta") != null)
            return new Fields(Map.of("rope_parameters.rope_theta", m.get("rope_theta"))).number("rope_parameters.rope_theta", 10000f);
        return 10000f;
    }

    /** The RoPE of this model's attention layers, or null when they use no positions (Jamba). */
    public Rope rope() {
        return ropeTheta > 0 ? Rope.neox(ropeTheta).withPositionScale(ropeScale).withLlama3Scaling(ropeLlama3).withLongRope(longRope) : null;
    }

    /** RoPE scaling types this reader turns into a {@link Rope}. */
    private static final String SUPPORTED_SCALING = "default, linear, llama3, longrope (Phi-3)";

    /**
     * rope_scaling, or (newer transformers) rope_parameters, which also holds rope_theta; null for
     * no scaling (absent, or type "default"). Any type but linear and llama3 is refused by name.
     */
    private static Scaling ropeScaling(Map<String, Object> json) {
        String key = json.get("rope_scaling") != null ? "rope_scaling" : "rope_parameters";
        Object scaling = json.get(key);
        if (scaling == null) return null;
        if (!(scaling instanceof Map<?, ?> m)) throw new IllegalArgumentException("config.json: " + key + " is not an object");
        Map<String, Object> fields = new HashMap<>();
        m.forEach((name, value) -> fields.put(key + "." + name, value));
        Object partial = m.get("partial_rotary_factor");
        if (partial != null && !(partial instanceof Number n && n.doubleValue() == 1))
            throw new IllegalArgumentException("config.json: " + key + ".partial_rotary_factor " + partial + " is not supported (only 1)");
        Object type = m.get("rope_type") != null ? m.get("rope_type") : m.get("type");
        if (type == null || "default".equals(type)) return null;
        if (!"linear".equals(type) && !"llama3".equals(type) && !"longrope".equals(type))
            throw new IllegalArgumentException("config.json: " + key + " type " + type + " is not supported (supported: "
                    + SUPPORTED_SCALING + ")");
        return new Scaling(type.toString(), key, new Fields(fields));
    }

    /** 1 / factor for linear RoPE scaling, 1 otherwise. */
    private static float ropeScale(Map<String, Object> json) {
        Scaling scaling = ropeScaling(json);
        if (scaling == null || !scaling.type().equals("linear")) return 1f;
        float factor = scaling.number("factor");
        if (!(Float.isFinite(factor) && factor > 0))
            throw new IllegalArgumentException("config.json: " + scaling.key() + ".factor must be > 0, is " + factor);
        return 1f / factor;
    }

    /** Llama 3.1's scaling for rope_type llama3, null otherwise. */
    private static Rope.Llama3Scaling ropeLlama3(Map<String, Object> json) {
        Scaling scaling = ropeScaling(json);
        if (scaling == null || !scaling.type().equals("llama3")) return null;
        float factor = scaling.number("factor"), low = scaling.number("low_freq_factor"), high = scaling.number("high_freq_factor");
        int originalMax = scaling.integer("original_max_position_embeddings");
        try {
            return new Rope.Llama3Scaling(factor, low, high, originalMax);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("config.json: " + scaling.key() + ": " + e.getMessage(), e);
        }
    }

    /**
     * Phi-3's LongRoPE for rope_type longrope, null otherwise: short_factor and long_factor (head_dim / 2 each),
     * original_max_position_embeddings (in the scaling object, else at the top level), and the
     * attention factor: attention_factor when given, else from factor (when given, else
     * max_position_embeddings / original_max_position_embeddings) as sqrt(1 + ln(factor) / ln(original))
     * above 1 and 1 otherwise. Only Phi-3 reads it; other families refuse the type.
     */
    private static Rope.LongRope longRope(Map<String, Object> json, int headDim) {
        Scaling scaling = ropeScaling(json);
        if (scaling == null || !scaling.type().equals("longrope")) return null;
        Fields top = new Fields(json);
        int original = scaling.fields().json().get(scaling.key() + ".original_max_position_embeddings") != null
                ? scaling.integer("original_max_position_embeddings") : top.integer("original_max_position_embeddings");
        if (original < 1) throw new IllegalArgumentException("config.json: original_max_position_embeddings must be >= 1, is " + original);
        double factor = scaling.fields().json().get(scaling.key() + ".factor") != null ? scaling.number("factor")
                : (double) top.integer("max_position_embeddings") / original;
        double attention = scaling.fields().json().get(scaling.key() + ".attention_factor") != null ? scaling.number("attention_factor")
                : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
        float[] shortFactors = scaling.numbers("short_factor", headDim / 2), longFactors = scaling.numbers("long_factor", headDim / 2);
        try {
            return new Rope.LongRope(shortFactors, longFactors, original, (float) attention);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("config.json: " + scaling.key() + ": " + e.getMessage(), e);
        }
    }

    /** A rope_scaling (or rope_parameters) object: its type, its key, and its fields named key.field. */
    private record Scaling(String type, String key, Fields fields) {
        float number(String name) {
            String field = key + "." + name;
            if (fields.json().get(field) == null) throw new IllegalArgumentException("config.json: " + field + " is missing");
            return fields.number(field, 0f);
        }

        int integer(String name) {
            return fields.integer(key + "." + name);
        }

        /** A list of {@code count} numbers. */
        float[] numbers(String name, int count) {
            String field = key + "." + name;
            if (!(fields.json().get(field) instanceof List<?> list) || list.size() != count)
                throw new IllegalArgumentException("config.json: " + field + " must be a list of " + count + " numbers (head_dim / 2), is "
                        + fields.json().get(field));
            float[] out = new float[count];
            for (int i = 0; i < count; i++) out[i] = new Fields(Map.of(field, list.get(i))).number(field, 0f);
            return out;
        }
    }

    /** Typed access to config.json fields with errors that name the field. */
    private record Fields(Map<String, Object> json) {
        int integer(String key) {
            Object v = json.get(key);
            if (!(v instanceof Long l) || l < 0 || l > Integer.MAX_VALUE)
                throw new IllegalArgumentException("config.json: " + key + " must be a non-negative integer, is " + v);
            return (int) (long) l;
        }

        int integer(String key, int fallback) {
            return json.get(key) == null ? fallback : integer(key);
        }

        float number(String key, float fallback) {
            Object v = json.get(key);
            if (v == null) return fallback;
            if (!(v instanceof Number n)) throw new IllegalArgumentException("config.json: " + key + " must be a number, is " + v);
            return n.floatValue();
        }

        boolean bool(String key, boolean fallback) {
            Object v = json.get(key);
            if (v == null) return fallback;
            if (!(v instanceof Boolean b)) throw new IllegalArgumentException("config.json: " + key + " must be true or false, is " + v);
            return b;
        }

        /** An integer or a list of them (eos_token_id is either); empty when absent. */
        List<Integer> integers(String key) {
            Object v = json.get(key);
            if (v == null) return List.of();
            if (v instanceof List<?> list) return list.stream().map(x -> new Fields(Map.of(key, x)).integer(key)).toList();
            return List.of(integer(key));
        }
    }
}
