package dev.isthmus.model;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.Rope;
import dev.isthmus.io.Json;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** Qwen3, Qwen3-MoE and Phi-3 config.json fields: what is read, and the refusals by name. */
class NewerFamiliesConfigTest {
    /** A config.json of {@code architecture} (4 layers, 2 heads over hidden 64: of 32 unless head_dim says) with {@code extra} spliced in. */
    @SuppressWarnings("unchecked")
    private static ModelConfig config(String architecture, String extra) {
        String json = "{\"architectures\": [\"" + architecture + "\"], \"vocab_size\": 128, \"hidden_size\": 64, "
                + "\"num_hidden_layers\": 4, \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"intermediate_size\": 96, "
                + "\"rms_norm_eps\": 1e-06" + (extra.isEmpty() ? "" : ", " + extra) + "}";
        return ModelConfig.fromJson((Map<String, Object>) Json.parse(json));
    }

    private static final String MOE = "\"num_experts\": 8, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 32";

    private static String factors(int n, double value) {
        return IntStream.range(0, n).mapToObj(i -> Double.toString(value + i)).collect(Collectors.joining(", ", "[", "]"));
    }

    private static String longRope(int pairs, String more) {
        return "\"max_position_embeddings\": 4096, \"rope_parameters\": {\"rope_type\": \"longrope\", \"rope_theta\": 10000.0, "
                + "\"short_factor\": " + factors(pairs, 1) + ", \"long_factor\": " + factors(pairs, 2) + more + "}";
    }

    @Test
    void qwen3ReadsHeadDimBiasAndNormsItsHeads() {
        ModelConfig c = config("Qwen3ForCausalLM", "\"head_dim\": 128");
        assertEquals(128, c.headDim(), "head_dim, not hidden / heads");
        assertTrue(c.qkNorm());
        assertFalse(c.qkvBias() || c.outputBias(), "no biases without attention_bias");
        ModelConfig biased = config("Qwen3ForCausalLM", "\"attention_bias\": true");
        assertTrue(biased.qkvBias() && biased.outputBias(), "attention_bias: q, k, v and o biases");
        assertFalse(config("LlamaForCausalLM", "").qkNorm());
        assertEquals(0, c.slidingWindow());
        assertEquals(16, config("Qwen3ForCausalLM", "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 0")
                .slidingWindow());
        illegalArgument("max_window_layers 2",
                () -> config("Qwen3ForCausalLM", "\"use_sliding_window\": true, \"sliding_window\": 16, \"max_window_layers\": 2"));
        illegalArgument("type yarn", () -> config("Qwen3ForCausalLM", "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}"));
    }

    @Test
    void qwen3MoeLayersFollowSparseStepAndMlpOnlyLayers() {
        ModelConfig every = config("Qwen3MoeForCausalLM", MOE + ", \"norm_topk_prob\": true");
        for (int i = 0; i < 4; i++) assertTrue(every.isMoe(i), "decoder_sparse_step 1: layer " + i);
        assertTrue(every.renormalize());
        assertEquals(32, every.expertIntermediateSize());
        assertEquals(96, every.intermediateSize(), "the dense MLP keeps intermediate_size");
        ModelConfig stepped = config("Qwen3MoeForCausalLM", MOE + ", \"decoder_sparse_step\": 2, \"mlp_only_layers\": [3]");
        assertFalse(stepped.renormalize(), "norm_topk_prob defaults to false");
        boolean[] moe = new boolean[4];
        for (int i = 0; i < 4; i++) moe[i] = stepped.isMoe(i);
        assertArrayEquals(new boolean[] {false, true, false, false}, moe, "(i + 1) % 2 == 0 and not in mlp_only_layers");
        assertEquals(8, config("Qwen3MoeForCausalLM", "\"num_local_experts\": 8, \"num_experts_per_tok\": 2, \"moe_intermediate_size\": 32")
                .experts(), "num_local_experts, as transformers 5 writes it");
        assertFalse(config("Qwen3MoeForCausalLM", "\"num_experts\": 0, \"num_experts_per_tok\": 0, \"moe_intermediate_size\": 32").isMoe(0),
                "no experts: dense everywhere");
        assertEquals(16, config("Qwen3MoeForCausalLM", MOE + ", \"use_sliding_window\": true, \"sliding_window\": 16").slidingWindow());
        assertEquals(0, config("Qwen3MoeForCausalLM", MOE + ", \"sliding_window\": 16").slidingWindow(), "only with use_sliding_window");
    }

    @Test
    void qwen3MoeRefusals() {
        illegalArgument("decoder_sparse_step must be >= 1", () -> config("Qwen3MoeForCausalLM", MOE + ", \"decoder_sparse_step\": 0"));
        illegalArgument("mlp_only_layers) entry 4", () -> config("Qwen3MoeForCausalLM", MOE + ", \"mlp_only_layers\": [1, 4]"));
        illegalArgument("mlp_only_layers", () -> config("Qwen3MoeForCausalLM", MOE + ", \"mlp_only_layers\": [0.5]"));
        illegalArgument("num_experts_per_tok", () -> config("Qwen3MoeForCausalLM",
                "\"num_experts\": 2, \"num_experts_per_tok\": 3, \"moe_intermediate_size\": 32"));
        illegalArgument("moe_intermediate_size", () -> config("Qwen3MoeForCausalLM", "\"num_experts\": 2, \"num_experts_per_tok\": 1"));
        illegalArgument("hidden_act gelu", () -> config("Qwen3MoeForCausalLM", MOE + ", \"hidden_act\": \"gelu\""));
    }

    @Test
    void phi3ReadsItsWindowAndLongRope() {
        ModelConfig plain = config("Phi3ForCausalLM", "\"sliding_window\": 2047, \"attention_bias\": true");
        assertEquals(2047, plain.slidingWindow());
        assertFalse(plain.qkvBias() || plain.qkNorm(), "Phi-3 has no attention biases");
        assertNull(plain.rope().longRope());
        // Phi-3-mini-128k: 131072 / 4096 = 32, attention factor sqrt(1 + ln 32 / ln 4096).
        ModelConfig c = config("Phi3ForCausalLM", longRope(16, "").replace("4096,", "131072,") + ", \"original_max_position_embeddings\": 4096");
        Rope.LongRope r = c.rope().longRope();
        assertEquals(4096, r.originalMaxPositions(), "the top-level original_max_position_embeddings");
        assertEquals(Math.sqrt(1 + Math.log(32) / Math.log(4096)), r.attentionFactor(), 1e-6);
        assertEquals(1f, r.shortFactors()[0]);
        assertEquals(17f, r.longFactors()[15]);
        ModelConfig inside = config("Phi3ForCausalLM", longRope(16, ", \"original_max_position_embeddings\": 1024, \"factor\": 2.0"));
        assertEquals(1024, inside.rope().longRope().originalMaxPositions(), "rope_parameters.original_max_position_embeddings");
        assertEquals(Math.sqrt(1 + Math.log(2) / Math.log(1024)), inside.rope().longRope().attentionFactor(), 1e-6, "factor given");
        ModelConfig given = config("Phi3ForCausalLM", longRope(16, ", \"original_max_position_embeddings\": 1024, \"attention_factor\": 1.5"));
        assertEquals(1.5f, given.rope().longRope().attentionFactor(), "attention_factor given");
        ModelConfig unscaled = config("Phi3ForCausalLM", longRope(16, ", \"original_max_position_embeddings\": 4096"));
        assertEquals(1f, unscaled.rope().longRope().attentionFactor(), "factor 1: attention factor 1");
    }

    @Test
    void phi3Refusals() {
        illegalArgument("short_factor must be a list of 16", () -> config("Phi3ForCausalLM", longRope(8, ", \"original_max_position_embeddings\": 1024")));
        illegalArgument("original_max_position_embeddings", () -> config("Phi3ForCausalLM", longRope(16, "")));
        illegalArgument("longrope factors must be finite and > 0", () -> config("Phi3ForCausalLM",
                longRope(16, ", \"original_max_position_embeddings\": 1024").replace("\"short_factor\": [1.0", "\"short_factor\": [-1.0")));
        illegalArgument("partial_rotary_factor", () -> config("Phi3ForCausalLM",
                "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0, \"partial_rotary_factor\": 0.75}"));
        illegalArgument("partial_rotary_factor 0.75", () -> config("Phi3ForCausalLM", "\"partial_rotary_factor\": 0.75"));
        illegalArgument("sliding_window must be >= 1", () -> config("Phi3ForCausalLM", "\"sliding_window\": 0"));
        illegalArgument("longrope is read for Phi3ForCausalLM only", () -> config("Qwen3ForCausalLM", longRope(16, ", \"original_max_position_embeddings\": 1024")));
        illegalArgument("hidden_act gelu_new", () -> config("Phi3ForCausalLM", "\"hidden_act\": \"gelu_new\""));
    }
}
