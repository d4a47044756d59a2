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
        // RoPE: Llama-style families rotate with base rope_theta > 1; Jamba's attention has no positions (0).
        boolean rope = attention && c.family() != ModelConfig.Family.JAMBA;
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
            default -> {}
        }
        if (c.family() == ModelConfig.Family.MIXTRAL || c.family() == ModelConfig.Family.JAMBA)
            atLeast("expertIntermediateSize (intermediate_size)", c.expertIntermediateSize(), 1);
        if (c.family() != ModelConfig.Family.MAMBA2 && c.mamba2() != null)
            throw new IllegalArgumentException("mamba2 is set for a " + c.family() + " model (only Mamba-2 has it)");
    }

    private static void checkMamba2(ModelConfig c) {
        ModelConfig.Mamba2 m = c.mamba2();
        if (m == null) throw new IllegalArgumentException("mamba2 (n_groups, time_step_limit) is null for a Mamba-2 model");
        range("heads (num_heads)", c.heads(), 1, Integer.MAX_VALUE);
        range("headDim (head_dim)", c.headDim(), 1, 256);
        if ((long) c.heads() * c.headDim() != c.mambaInner())
            throw new IllegalArgumentException("heads (num_heads) " + c.heads() + " x headDim (head_dim) " + c.headDim()
                    + " must be mambaInner (expand * hidden_size) " + c.mambaInner());
        range("stateSize (state_size)", c.stateSize(), 1, 256);
        range("convKernel (conv_kernel)", c.convKernel(), 2, 8);
        atLeast("mamba2.groups (n_groups)", m.groups(), 1);
        if (c.heads() % m.groups() != 0)
            throw new IllegalArgumentException("mamba2.groups (n_groups) " + m.groups() + " must divide heads (num_heads) " + c.heads());
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
