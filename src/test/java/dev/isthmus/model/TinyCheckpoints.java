package dev.isthmus.model;

import dev.isthmus.io.SafetensorsWriter;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Writes tiny randomly initialised checkpoints of each family (config.json + model.safetensors,
 * named as transformers names them) for tests that need no golden fixture. Attention heads are 64
 * wide, the smallest head size the attention kernels take.
 */
final class TinyCheckpoints {
    private TinyCheckpoints() {}

    static final int VOCAB = 61;
    static final int HIDDEN = 128;

    enum Kind { LLAMA, QWEN2, MIXTRAL, MAMBA, JAMBA, GRANITE }

    static Path write(Path dir, Kind kind, long seed) throws IOException {
        Files.createDirectories(dir);
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        Random random = new Random(seed);
        String config = switch (kind) {
            case LLAMA, QWEN2, MIXTRAL -> attentionModel(tensors, random, kind);
            case MAMBA -> mamba(tensors, random);
            case JAMBA -> jamba(tensors, random);
            case GRANITE -> granite(tensors, random);
        };
        Files.writeString(dir.resolve("config.json"), config);
        SafetensorsWriter.write(dir.resolve("model.safetensors"), tensors);
        tensors.values().forEach(Tensor::close);
        writeTokenizer(dir);
        return dir;
    }

    /** A word-level tokenizer.json whose words are "w0" .. "w60": token id i is the word "w" + i. */
    static void writeTokenizer(Path dir) throws IOException {
        StringBuilder vocab = new StringBuilder();
        for (int i = 0; i < VOCAB; i++) vocab.append(i == 0 ? "" : ", ").append("\"w").append(i).append("\": ").append(i);
        Files.writeString(dir.resolve("tokenizer.json"), "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, "
                + "\"added_tokens\": [], \"normalizer\": null, \"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"post_processor\": null, "
                + "\"decoder\": null, \"model\": {\"type\": \"WordLevel\", \"vocab\": {" + vocab + "}, \"unk_token\": \"w0\"}}");
    }

    private static void put(Map<String, Tensor> t, Random random, String name, float scale, long... shape) {
        t.put(name, RandomTensors.normal(random, DType.F32, scale, shape));
    }

    /** Norm weights near one, as trained models have them. */
    private static void norm(Map<String, Tensor> t, Random random, String name, long size) {
        t.put(name, RandomTensors.uniform(random, DType.F32, 0.8f, 1.2f, size));
    }

    private static void attention(Map<String, Tensor> t, Random random, String p, boolean bias) {
        put(t, random, p + "q_proj.weight", 0.08f, 128, HIDDEN);
        put(t, random, p + "k_proj.weight", 0.08f, 64, HIDDEN);
        put(t, random, p + "v_proj.weight", 0.08f, 64, HIDDEN);
        put(t, random, p + "o_proj.weight", 0.08f, HIDDEN, 128);
        if (bias)
            for (String n : new String[] {"q", "k", "v"}) put(t, random, p + n + "_proj.bias", 0.1f, n.equals("q") ? 128 : 64);
    }

    /** A router over 4 experts of intermediate 48 and each expert's gate, up and down matrices, under the given names. */
    private static void experts(Map<String, Tensor> t, Random random, String p, String router, String gate, String up, String down) {
        put(t, random, p + router, 0.3f, 4, HIDDEN);
        for (int e = 0; e < 4; e++) {
            String x = p + "experts." + e + ".";
            put(t, random, x + gate + ".weight", 0.08f, 48, HIDDEN);
            put(t, random, x + up + ".weight", 0.08f, 48, HIDDEN);
            put(t, random, x + down + ".weight", 0.1f, HIDDEN, 48);
        }
    }

    private static String attentionModel(Map<String, Tensor> t, Random random, Kind kind) {
        put(t, random, "model.embed_tokens.weight", 1f, VOCAB, HIDDEN);
        for (int i = 0; i < 2; i++) {
            String p = "model.layers." + i + ".";
            norm(t, random, p + "input_layernorm.weight", HIDDEN);
            norm(t, random, p + "post_attention_layernorm.weight", HIDDEN);
            attention(t, random, p + "self_attn.", kind == Kind.QWEN2);
            if (kind == Kind.MIXTRAL) {
                experts(t, random, p + "block_sparse_moe.", "gate.weight", "w1", "w3", "w2");
            } else {
                put(t, random, p + "mlp.gate_proj.weight", 0.08f, 96, HIDDEN);
                put(t, random, p + "mlp.up_proj.weight", 0.08f, 96, HIDDEN);
                put(t, random, p + "mlp.down_proj.weight", 0.1f, HIDDEN, 96);
            }
        }
        norm(t, random, "model.norm.weight", HIDDEN);
        boolean tied = kind == Kind.QWEN2;
        if (!tied) put(t, random, "lm_head.weight", 0.1f, VOCAB, HIDDEN);
        String arch = switch (kind) {
            case QWEN2 -> "Qwen2ForCausalLM";
            case MIXTRAL -> "MixtralForCausalLM";
            default -> "LlamaForCausalLM";
        };
        String moe = kind == Kind.MIXTRAL ? "\"num_local_experts\": 4, \"num_experts_per_tok\": 2, " : "";
        return "{\"architectures\": [\"" + arch + "\"], \"vocab_size\": " + VOCAB + ", \"hidden_size\": " + HIDDEN
                + ", \"num_hidden_layers\": 2, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"intermediate_size\": "
                + (kind == Kind.MIXTRAL ? 48 : 96) + ", " + moe + "\"rms_norm_eps\": 1e-05, \"rope_theta\": 10000.0, \"tie_word_embeddings\": "
                + tied + ", \"eos_token_id\": 2}";
    }

    private static void mambaMixer(Map<String, Tensor> t, Random random, String p, boolean jamba) {
        int inner = 2 * HIDDEN, state = 8, rank = 8, width = 4;
        put(t, random, p + "in_proj.weight", 0.08f, 2 * inner, HIDDEN);
        put(t, random, p + "conv1d.weight", 0.3f, inner, 1, width);
        put(t, random, p + "conv1d.bias", 0.1f, inner);
        put(t, random, p + "x_proj.weight", 0.08f, rank + 2 * state, inner);
        put(t, random, p + "dt_proj.weight", 0.3f, inner, rank);
        t.put(p + "dt_proj.bias", RandomTensors.uniform(random, DType.F32, -4f, -2f, inner));
        float[] aLog = new float[inner * state];
        for (int d = 0; d < inner; d++)
            for (int n = 0; n < state; n++) aLog[d * state + n] = (float) Math.log(n + 1);
        t.put(p + "A_log", Tensor.fromFloats(DType.F32, aLog, inner, state));
        t.put(p + "D", RandomTensors.uniform(random, DType.F32, 0.5f, 1.5f, inner));
        put(t, random, p + "out_proj.weight", 0.06f, HIDDEN, inner);
        if (jamba) {
            norm(t, random, p + "dt_layernorm.weight", rank);
            norm(t, random, p + "b_layernorm.weight", state);
            norm(t, random, p + "c_layernorm.weight", state);
        }
    }

    private static String mamba(Map<String, Tensor> t, Random random) {
        put(t, random, "backbone.embeddings.weight", 1f, VOCAB, HIDDEN);
        for (int i = 0; i < 2; i++) {
            norm(t, random, "backbone.layers." + i + ".norm.weight", HIDDEN);
            mambaMixer(t, random, "backbone.layers." + i + ".mixer.", false);
        }
        norm(t, random, "backbone.norm_f.weight", HIDDEN);
        return "{\"architectures\": [\"MambaForCausalLM\"], \"vocab_size\": " + VOCAB + ", \"hidden_size\": " + HIDDEN
                + ", \"num_hidden_layers\": 2, \"intermediate_size\": " + 2 * HIDDEN + ", \"state_size\": 8, \"conv_kernel\": 4, "
                + "\"time_step_rank\": 8, \"layer_norm_epsilon\": 1e-05, \"use_bias\": false, \"use_conv_bias\": true, "
                + "\"tie_word_embeddings\": true, \"eos_token_id\": 0}";
    }

    /** Four layers: attention at 1 (period 2, offset 1), MoE at 1 and 3 (period 2, offset 1), Mamba and dense elsewhere. */
    private static String jamba(Map<String, Tensor> t, Random random) {
        put(t, random, "model.embed_tokens.weight", 1f, VOCAB, HIDDEN);
        for (int i = 0; i < 4; i++) {
            String p = "model.layers." + i + ".";
            norm(t, random, p + "input_layernorm.weight", HIDDEN);
            norm(t, random, p + "pre_ff_layernorm.weight", HIDDEN);
            if (i % 2 == 1) attention(t, random, p + "self_attn.", false);
            else mambaMixer(t, random, p + "mamba.", true);
            if (i % 2 == 1) {
                experts(t, random, p + "feed_forward.", "router.weight", "gate_proj", "up_proj", "down_proj");
            } else {
                put(t, random, p + "feed_forward.gate_proj.weight", 0.08f, 48, HIDDEN);
                put(t, random, p + "feed_forward.up_proj.weight", 0.08f, 48, HIDDEN);
                put(t, random, p + "feed_forward.down_proj.weight", 0.1f, HIDDEN, 48);
            }
        }
        norm(t, random, "model.final_layernorm.weight", HIDDEN);
        put(t, random, "lm_head.weight", 0.1f, VOCAB, HIDDEN);
        return "{\"architectures\": [\"JambaForCausalLM\"], \"vocab_size\": " + VOCAB + ", \"hidden_size\": " + HIDDEN
                + ", \"num_hidden_layers\": 4, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"intermediate_size\": 48, "
                + "\"num_experts\": 4, \"num_experts_per_tok\": 2, \"attn_layer_period\": 2, \"attn_layer_offset\": 1, "
                + "\"expert_layer_period\": 2, \"expert_layer_offset\": 1, \"mamba_d_state\": 8, \"mamba_d_conv\": 4, \"mamba_expand\": 2, "
                + "\"mamba_dt_rank\": 8, \"mamba_conv_bias\": true, \"mamba_proj_bias\": false, \"rms_norm_eps\": 1e-06, "
                + "\"tie_word_embeddings\": false, \"eos_token_id\": 2}";
    }

    /**
     * Granite 4.0-H in two layers: Mamba-2 in layer 0 (4 heads of 64, 2 groups of 8 states), RoPE
     * attention in layer 1; in both a stacked MoE of 4 experts of 48 (checkpoint names) beside a
     * shared MLP of 64; every multiplier away from 1.
     */
    private static String granite(Map<String, Tensor> t, Random random) {
        int inner = 2 * HIDDEN, heads = 4, groups = 2, state = 8, conv = inner + 2 * groups * state;
        put(t, random, "model.embed_tokens.weight", 0.3f, VOCAB, HIDDEN);
        for (int i = 0; i < 2; i++) {
            String p = "model.layers." + i + ".";
            norm(t, random, p + "input_layernorm.weight", HIDDEN);
            norm(t, random, p + "post_attention_layernorm.weight", HIDDEN);
            if (i == 1) {
                attention(t, random, p + "self_attn.", false);
            } else {
                String m = p + "mamba.";
                put(t, random, m + "in_proj.weight", 0.08f, inner + conv + heads, HIDDEN);
                put(t, random, m + "conv1d.weight", 0.3f, conv, 1, 4);
                put(t, random, m + "conv1d.bias", 0.1f, conv);
                t.put(m + "A_log", RandomTensors.uniform(random, DType.F32, 0f, 1.5f, heads));
                t.put(m + "D", RandomTensors.uniform(random, DType.F32, 0.5f, 1.5f, heads));
                t.put(m + "dt_bias", RandomTensors.uniform(random, DType.F32, -4f, -2f, heads));
                norm(t, random, m + "norm.weight", inner);
                put(t, random, m + "out_proj.weight", 0.06f, HIDDEN, inner);
            }
            put(t, random, p + "shared_mlp.input_linear.weight", 0.08f, 2 * 64, HIDDEN);
            put(t, random, p + "shared_mlp.output_linear.weight", 0.1f, HIDDEN, 64);
            put(t, random, p + "block_sparse_moe.router.layer.weight", 0.3f, 4, HIDDEN);
            put(t, random, p + "block_sparse_moe.input_linear.weight", 0.08f, 4, 2 * 48, HIDDEN);
            put(t, random, p + "block_sparse_moe.output_linear.weight", 0.1f, 4, HIDDEN, 48);
        }
        norm(t, random, "model.norm.weight", HIDDEN);
        return "{\"architectures\": [\"GraniteMoeHybridForCausalLM\"], \"vocab_size\": " + VOCAB + ", \"hidden_size\": " + HIDDEN
                + ", \"num_hidden_layers\": 2, \"layer_types\": [\"mamba\", \"attention\"], \"num_attention_heads\": 2, "
                + "\"num_key_value_heads\": 1, \"position_embedding_type\": \"rope\", \"rope_theta\": 10000.0, "
                + "\"intermediate_size\": 48, \"num_local_experts\": 4, \"num_experts_per_tok\": 2, \"shared_intermediate_size\": 64, "
                + "\"mamba_n_heads\": " + heads + ", \"mamba_d_head\": 64, \"mamba_n_groups\": " + groups + ", \"mamba_d_state\": " + state
                + ", \"mamba_d_conv\": 4, \"mamba_expand\": 2, \"embedding_multiplier\": 3, \"attention_multiplier\": 0.1, "
                + "\"residual_multiplier\": 0.6, \"logits_scaling\": 2, \"rms_norm_eps\": 1e-05, \"tie_word_embeddings\": true, "
                + "\"eos_token_id\": 2}";
    }
}
