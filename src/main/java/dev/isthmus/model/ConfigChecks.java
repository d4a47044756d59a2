package dev.isthmus.model;

/**
 * What a {@link ModelConfig} must satisfy before a model is built from it (checked by
 * {@link ModelConfig#fromJson} and by every model build, so also for a config made in code): every count the layers divide by, size arrays with or loop over is
 * in range, so a bad config is an IllegalArgumentException naming the field (the record
 * component, then the config.json key), never an ArithmeticException or an array size error
 * later.
 */
final class ConfigChecks {
    private ConfigChecks() {}

    static void check(ModelConfig c) {
        if (c.family() == null) throw new IllegalArgumentException("family is null");
        if (c.eosTokens() == null) throw new IllegalArgumentException("eosTokens (eos_token_id) is null");
        if (c.denseLayers() == null) throw new IllegalArgumentException("denseLayers (mlp_only_layers) is null");
        atLeast("vocabSize (vocab_size)", c.vocabSize(), 1);
        atLeast("hiddenSize (hidden_size)", c.hiddenSize(), 1);
        atLeast("layers (num_hidden_layers)", c.layers(), 1);
        if (!(Float.isFinite(c.normEps()) && c.normEps() >= 0))
            throw new IllegalArgumentException("normEps (rms_norm_eps) must be finite and >= 0, is " + c.normEps());
        atLeast("slidingWindow (sliding_window)", c.slidingWindow(), 0);
        boolean attention = c.family() != ModelConfig.Family.MAMBA && c.family() != ModelConfig.Family.MAMBA2;
        boolean mamba = c.family() == ModelConfig.Family.MAMBA || c.family() == ModelConfig.Family.JAMBA;
        if (attention) {
            atLeast("heads (num_attention_heads)", c.heads(), 1);
            atLeast("kvHeads (num_key_value_heads)", c.kvHeads(), 1);
            if (c.heads() % c.kvHeads() != 0)
                throw new IllegalArgumentException("heads (num_attention_heads) " + c.heads() + " is not a multiple of kvHeads (num_key_value_heads) "
                        + c.kvHeads());
            atLeast("headDim (head_dim)", c.headDim(), 1);
            atLeast("intermediateSize (intermediate_size)", c.intermediateSize(), 1);
        }
        // RoPE: Llama-style families rotate with base rope_theta > 1; Jamba's attention has no positions (0); Granite's either.
        boolean rope = attention && c.family() != ModelConfig.Family.JAMBA
                && !(c.family() == ModelConfig.Family.GRANITE_HYBRID && c.ropeTheta() == 0);
        if (rope ? !(Float.isFinite(c.ropeTheta()) && c.ropeTheta() > 1) : c.ropeTheta() != 0)
            throw new IllegalArgumentException("ropeTheta (rope_theta) must be " + (rope ? "finite and > 1" : "0 (no RoPE)") + " for "
                    + c.family() + ", is " + c.ropeTheta());
        if (!(Float.isFinite(c.ropeScale()) && c.ropeScale() > 0))
            throw new IllegalArgumentException("ropeScale (1 / rope_scaling.factor) must be finite and > 0, is " + c.ropeScale());
        if (c.longRope() != null) {
            if (c.family() != ModelConfig.Family.PHI3)
                throw new IllegalArgumentException("longRope (rope_scaling type longrope) is read for PHI3 only, not " + c.family());
            if (c.ropeLlama3() != null) throw new IllegalArgumentException("longRope and ropeLlama3 (rope_scaling) are exclusive");
            if (c.longRope().shortFactors().length != c.headDim() / 2)
                throw new IllegalArgumentException("longRope (rope_scaling.short_factor, long_factor) has " + c.longRope().shortFactors().length
                        + " factors; headDim (head_dim) " + c.headDim() + " needs " + c.headDim() / 2);
        }
        if (mamba) {
            atLeast("mambaInner (intermediate_size / mamba_expand * hidden_size)", c.mambaInner(), 1);
            range("stateSize (state_size / mamba_d_state)", c.stateSize(), 1, 256);
            range("convKernel (conv_kernel / mamba_d_conv)", c.convKernel(), 1, 8);
            atLeast("dtRank (time_step_rank / mamba_dt_rank)", c.dtRank(), 1);
        }
        switch (c.family()) {
            case MIXTRAL -> {
                atLeast("experts (num_local_experts)", c.experts(), 1);
                range("topK (num_experts_per_tok)", c.topK(), 1, c.experts());
            }
            case JAMBA -> {
                atLeast("experts (num_experts)", c.experts(), 1);
                if (c.experts() > 1) range("topK (num_experts_per_tok)", c.topK(), 1, c.experts());
                atLeast("attentionPeriod (attn_layer_period)", c.attentionPeriod(), 1);
                range("attentionOffset (attn_layer_offset)", c.attentionOffset(), 0, c.attentionPeriod() - 1);
                atLeast("expertPeriod (expert_layer_period)", c.expertPeriod(), 1);
                range("expertOffset (expert_layer_offset)", c.expertOffset(), 0, c.expertPeriod() - 1);
            }
            case QWEN3_MOE -> {
                atLeast("experts (num_experts)", c.experts(), 0);
                if (c.experts() > 0) {
                    range("topK (num_experts_per_tok)", c.topK(), 1, c.experts());
                    atLeast("expertIntermediateSize (moe_intermediate_size)", c.expertIntermediateSize(), 1);
                }
                atLeast("expertPeriod (decoder_sparse_step)", c.expertPeriod(), 1);
                if (c.expertOffset() != c.expertPeriod() - 1)
                    throw new IllegalArgumentException("expertOffset must be expertPeriod (decoder_sparse_step) - 1 = " + (c.expertPeriod() - 1)
                            + " for QWEN3_MOE, is " + c.expertOffset());
                for (Integer layer : c.denseLayers())
                    if (layer == null || layer < 0 || layer >= c.layers())
                        throw new IllegalArgumentException("denseLayers (mlp_only_layers) entry " + layer + " is not a layer in [0, " + c.layers() + ")");
            }
            case MAMBA2 -> checkMamba2(c);
            case GRANITE_HYBRID -> checkGranite(c);
            default -> {}
        }
        if (c.family() == ModelConfig.Family.MIXTRAL || c.family() == ModelConfig.Family.JAMBA)
            atLeast("expertIntermediateSize (intermediate_size)", c.expertIntermediateSize(), 1);
        if (c.family() != ModelConfig.Family.MAMBA2 && c.family() != ModelConfig.Family.GRANITE_HYBRID && c.mamba2() != null)
            throw new IllegalArgumentException("mamba2 is set for a " + c.family() + " model (only Mamba-2 and Granite 4.0-H have it)");
        if (c.family() != ModelConfig.Family.GRANITE_HYBRID && c.granite() != null)
            throw new IllegalArgumentException("granite is set for a " + c.family() + " model (only Granite 4.0-H has it)");
    }

    private static void checkGranite(ModelConfig c) {
        ModelConfig.Granite g = c.granite();
        if (g == null) throw new IllegalArgumentException("granite (layer_types, mamba_n_heads, the multipliers) is null for a Granite 4.0-H model");
        if (g.attentionLayers() == null) throw new IllegalArgumentException("granite.attentionLayers (layer_types) is null");
        for (Integer layer : g.attentionLayers())
            if (layer == null || layer < 0 || layer >= c.layers())
                throw new IllegalArgumentException("granite.attentionLayers (layer_types) entry " + layer + " is not a layer in [0, " + c.layers() + ")");
        atLeast("experts (num_local_experts)", c.experts(), 0);
        if (c.experts() > 0) {
            range("topK (num_experts_per_tok)", c.topK(), 1, c.experts());
            atLeast("expertIntermediateSize (intermediate_size)", c.expertIntermediateSize(), 1);
            if (!c.renormalize()) throw new IllegalArgumentException("renormalize must be true for Granite 4.0-H (softmax over the top-k router logits)");
        }
        positive("granite.embeddingMultiplier (embedding_multiplier)", g.embeddingMultiplier());
        positive("granite.attentionMultiplier (attention_multiplier)", g.attentionMultiplier());
        positive("granite.residualMultiplier (residual_multiplier)", g.residualMultiplier());
        positive("granite.logitsScaling (logits_scaling)", g.logitsScaling());
        if (g.attentionLayers().size() < c.layers()) checkMamba2(c);
    }

    /**
     * A multiplier folded into the weights or a GEMM's alpha: finite and > 0 (a zero or negative
     * one is no checkpoint's, and a zero logits_scaling would divide by zero).
     */
    private static void positive(String name, float value) {
        if (!(Float.isFinite(value) && value > 0)) throw new IllegalArgumentException(name + " must be finite and > 0, is " + value);
    }

    private static void checkMamba2(ModelConfig c) {
        ModelConfig.Mamba2 m = c.mamba2();
        if (m == null) throw new IllegalArgumentException("mamba2 (n_groups, time_step_limit) is null for a " + c.family() + " model");
        range("SSD heads (num_heads / mamba_n_heads)", c.ssdHeads(), 1, Integer.MAX_VALUE);
        range("SSD head dim (head_dim / mamba_d_head)", c.ssdHeadDim(), 1, 256);
        if ((long) c.ssdHeads() * c.ssdHeadDim() != c.mambaInner())
            throw new IllegalArgumentException("SSD heads (num_heads / mamba_n_heads) " + c.ssdHeads() + " x head dim (head_dim / mamba_d_head) "
                    + c.ssdHeadDim() + " must be mambaInner (expand * hidden_size) " + c.mambaInner());
        range("stateSize (state_size / mamba_d_state)", c.stateSize(), 1, 256);
        range("convKernel (conv_kernel / mamba_d_conv)", c.convKernel(), 2, 8);
        atLeast("mamba2.groups (n_groups / mamba_n_groups)", m.groups(), 1);
        if (c.ssdHeads() % m.groups() != 0)
            throw new IllegalArgumentException("mamba2.groups (n_groups / mamba_n_groups) " + m.groups() + " must divide the SSD heads "
                    + "(num_heads / mamba_n_heads) " + c.ssdHeads());
        if (!(m.dtMin() <= m.dtMax()))
            throw new IllegalArgumentException("mamba2 time_step_limit [" + m.dtMin() + ", " + m.dtMax() + "] is not an interval");
    }

    private static void atLeast(String name, int value, int min) {
        if (value < min) throw new IllegalArgumentException(name + " must be >= " + min + ", is " + value);
    }

    private static void range(String name, int value, int min, int max) {
        if (value < min || value > max) throw new IllegalArgumentException(name + " must be in [" + min + ", " + max + "], is " + value);
    }
}
