package dev.isthmus.model;

import dev.isthmus.io.GgufFile;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file's model metadata ({@code general.architecture} and the {@code ARCH.*} keys llama.cpp
 * writes) translated into the config.json fields {@link ModelConfig#fromJson} reads, so that a GGUF
 * model goes through exactly the checks a Hugging Face checkpoint does. Architectures: llama
 * (Llama, Mistral; Mixtral when it has experts), qwen2 and mamba. Metadata that changes the math
 * in ways the layers do not implement is refused by name.
 */
final class GgufConfig {
    private GgufConfig() {}

    static final List<String> ARCHITECTURES = List.of("llama", "qwen2", "mamba");

    static Map<String, Object> toConfigJson(GgufFile f) {
        String arch = f.string("general.architecture");
        if (!ARCHITECTURES.contains(arch))
            throw new IllegalArgumentException(f.path() + ": GGUF architecture '" + arch + "' is not supported (supported: " + ARCHITECTURES + ")");
        refuseUnsupported(f, arch);
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("vocab_size", f.has(arch + ".vocab_size") ? f.integer(arch + ".vocab_size") : (long) f.array("tokenizer.ggml.tokens").size());
        json.put("hidden_size", f.integer(arch + ".embedding_length"));
        json.put("num_hidden_layers", f.integer(arch + ".block_count"));
        json.put("tie_word_embeddings", !f.contains("output.weight"));
        if (f.has("tokenizer.ggml.eos_token_id")) json.put("eos_token_id", f.integer("tokenizer.ggml.eos_token_id"));
        if (arch.equals("mamba")) {
            json.put("architectures", List.of("MambaForCausalLM"));
            json.put("intermediate_size", f.integer("mamba.ssm.inner_size"));
            json.put("state_size", f.integer("mamba.ssm.state_size"));
            json.put("conv_kernel", f.integer("mamba.ssm.conv_kernel"));
            json.put("time_step_rank", f.integer("mamba.ssm.time_step_rank"));
            json.put("layer_norm_epsilon", f.number("mamba.attention.layer_norm_rms_epsilon"));
            json.put("use_conv_bias", f.contains("blk.0.ssm_conv1d.bias"));
            json.put("use_bias", f.contains("blk.0.ssm_in.bias"));
            return json;
        }
        long experts = f.has(arch + ".expert_count") ? f.integer(arch + ".expert_count") : 0;
        json.put("architectures", List.of(arch.equals("qwen2") ? "Qwen2ForCausalLM" : experts > 0 ? "MixtralForCausalLM" : "LlamaForCausalLM"));
        long heads = f.integer(arch + ".attention.head_count");
        json.put("num_attention_heads", heads);
        json.put("num_key_value_heads", f.has(arch + ".attention.head_count_kv") ? f.integer(arch + ".attention.head_count_kv") : heads);
        json.put("intermediate_size", f.integer(arch + ".feed_forward_length"));
        json.put("rms_norm_eps", f.number(arch + ".attention.layer_norm_rms_epsilon"));
        json.put("rope_theta", f.has(arch + ".rope.freq_base") ? f.number(arch + ".rope.freq_base") : 10000.0);
        if (f.has(arch + ".attention.key_length")) {
            long key = f.integer(arch + ".attention.key_length");
            if (f.has(arch + ".attention.value_length") && f.integer(arch + ".attention.value_length") != key)
                throw new IllegalArgumentException(f.path() + ": " + arch + ".attention.value_length differs from key_length; not supported");
            json.put("head_dim", key);
        }
        if (f.has(arch + ".rope.dimension_count")) {
            long rotated = f.integer(arch + ".rope.dimension_count");
            long headDim = json.containsKey("head_dim") ? (long) json.get("head_dim") : (long) json.get("hidden_size") / Math.max(heads, 1);
            if (rotated != headDim)
                throw new IllegalArgumentException(f.path() + ": " + arch + ".rope.dimension_count " + rotated + " rotates part of the "
                        + headDim + "-wide heads; not supported");
        }
        if (f.has(arch + ".attention.sliding_window")) json.put("sliding_window", f.integer(arch + ".attention.sliding_window"));
        if (arch.equals("qwen2") && json.containsKey("sliding_window")) {
            json.put("use_sliding_window", true);
            json.put("max_window_layers", 0L);
        }
        if (experts > 0) {
            json.put("num_local_experts", experts);
            json.put("num_experts_per_tok", f.integer(arch + ".expert_used_count"));
        }
        if (arch.equals("llama")) json.put("attention_bias", f.contains("blk.0.attn_q.bias"));
        ropeScaling(f, arch, json);
        return json;
    }

    private static void ropeScaling(GgufFile f, String arch, Map<String, Object> json) {
        String key = arch + ".rope.scaling.type";
        if (!f.has(key) || f.string(key).equals("none")) return;
        if (!f.string(key).equals("linear"))
            throw new IllegalArgumentException(f.path() + ": " + key + " " + f.string(key) + " is not supported (none, linear)");
        json.put("rope_scaling", Map.of("rope_type", "linear", "factor", f.number(arch + ".rope.scaling.factor")));
    }

    /** Keys and tensors whose meaning the layers do not implement. */
    private static void refuseUnsupported(GgufFile f, String arch) {
        for (String key : List.of(arch + ".attention.layer_norm_epsilon", arch + ".expert_shared_count", arch + ".expert_weights_scale",
                arch + ".logit_scale", arch + ".attention.logit_softcapping", arch + ".final_logit_softcapping", arch + ".ssm.dt_b_c_rms",
                arch + ".attention.q_lora_rank"))
            if (f.has(key)) throw new IllegalArgumentException(f.path() + ": metadata " + key + " is not supported");
        if (f.has(arch + ".attention.causal") && !f.bool(arch + ".attention.causal"))
            throw new IllegalArgumentException(f.path() + ": " + arch + ".attention.causal = false (bidirectional attention) is not supported");
        if (f.contains("rope_freqs.weight"))
            throw new IllegalArgumentException(f.path() + ": tensor rope_freqs.weight (per-frequency RoPE factors, as Llama 3.1 files carry) "
                    + "is not supported");
        if (f.has(arch + ".expert_count") && f.integer(arch + ".expert_count") > 0 && f.contains("blk.0.ffn_gate.0.weight"))
            throw new IllegalArgumentException(f.path() + ": experts stored one tensor each (blk.N.ffn_gate.E.weight, an old layout) are not "
                    + "supported; convert with the stacked ffn_*_exps layout");
    }
}
