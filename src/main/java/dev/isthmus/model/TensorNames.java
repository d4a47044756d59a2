package dev.isthmus.model;

/**
 * How each checkpoint family names its tensors (the module paths of the transformers classes).
 * MoE experts come either one module per expert (Mixtral: w1 gate, w3 up, w2 down; Jamba and
 * Qwen3-MoE: gate_proj, up_proj, down_proj) or, as newer transformers versions save them, stacked in
 * {@code experts.gate_up_proj} (E, 2I, H) and {@code experts.down_proj} (E, H, I); both are read.
 * Granite 4.0-H's checkpoints stack them as {@code block_sparse_moe.input_linear} and
 * {@code output_linear} with the router in {@code router.layer} (transformers 5 renames them to the
 * stacked names on load, {@code router.weight}); both are read.
 */
record TensorNames(String embedding, String finalNorm, String layerPrefix, String mixerNorm, String attention, String mambaMixer,
                   String ffnNorm, String denseFfn, String moePrefix) {

    static TensorNames of(ModelConfig config, Weights w) {
        return switch (config.family()) {
            // Phi-3 names its layers as Llama does; its projections are fused (qkv_proj, gate_up_proj), which the blocks read.
            case LLAMA, QWEN3, PHI3 -> new TensorNames("model.embed_tokens.weight", "model.norm.weight", "model.layers.", "input_layernorm.weight",
                    "self_attn.", null, "post_attention_layernorm.weight", "mlp.", null);
            case MIXTRAL -> new TensorNames("model.embed_tokens.weight", "model.norm.weight", "model.layers.", "input_layernorm.weight",
                    "self_attn.", null, "post_attention_layernorm.weight", null,
                    w.contains("model.layers.0.block_sparse_moe.gate.weight") ? "block_sparse_moe." : "mlp.");
            case MAMBA, MAMBA2 -> new TensorNames("backbone.embeddings.weight", "backbone.norm_f.weight", "backbone.layers.", "norm.weight", null,
                    "mixer.", null, null, null);
            case QWEN3_MOE -> new TensorNames("model.embed_tokens.weight", "model.norm.weight", "model.layers.", "input_layernorm.weight",
                    "self_attn.", null, "post_attention_layernorm.weight", "mlp.", "mlp.");
            case GRANITE_HYBRID -> new TensorNames("model.embed_tokens.weight", "model.norm.weight", "model.layers.", "input_layernorm.weight",
                    "self_attn.", "mamba.", "post_attention_layernorm.weight", "shared_mlp.", "block_sparse_moe.");
            case JAMBA -> new TensorNames("model.embed_tokens.weight", "model.final_layernorm.weight", "model.layers.", "input_layernorm.weight",
                    "self_attn.", "mamba.", "pre_ff_layernorm.weight", "feed_forward.", "feed_forward.");
        };
    }

    String layer(int i) {
        return layerPrefix + i + ".";
    }

    /** The MoE block of the layer whose names start with {@code p}. */
    MoeFfn moe(Weights w, ModelConfig config, String p) {
        String base = p + moePrefix;
        if (config.family() == ModelConfig.Family.GRANITE_HYBRID) {
            if (w.contains(base + "experts.gate_up_proj")) return MoeFfn.stacked(w, config, base + "router.weight", base + "experts.");
            return MoeFfn.stacked(w, config, base + "router.layer.weight", base + "input_linear.weight", base + "output_linear.weight");
        }
        boolean jamba = config.family() == ModelConfig.Family.JAMBA;
        String router = base + (jamba ? "router.weight" : "gate.weight");
        if (w.contains(base + "experts.gate_up_proj")) return MoeFfn.stacked(w, config, router, base + "experts.");
        String[] parts = config.family() == ModelConfig.Family.MIXTRAL ? new String[] {"w1", "w3", "w2"}
                : new String[] {"gate_proj", "up_proj", "down_proj"};
        return MoeFfn.perExpert(w, config, router, (e, which) -> base + "experts." + e + "." + parts[which] + ".weight");
    }
}
