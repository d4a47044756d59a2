package dev.isthmus.model;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.io.Json;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** GraniteMoeHybridForCausalLM's config.json: the fields read, the layer pattern in both spellings, and what is refused. */
class GraniteConfigTest {
    /** A Granite-4.0-H-shaped config.json (4 layers, attention in layer 2) with the fields of {@code extra} put over its own. */
    @SuppressWarnings("unchecked")
    private static ModelConfig granite(String extra) {
        String json = "{\"architectures\": [\"GraniteMoeHybridForCausalLM\"], \"vocab_size\": 100352, \"hidden_size\": 1536, "
                + "\"num_hidden_layers\": 4, \"layer_types\": [\"mamba\", \"mamba\", \"attention\", \"mamba\"], "
                + "\"num_attention_heads\": 12, \"num_key_value_heads\": 4, \"attention_bias\": false, "
                + "\"position_embedding_type\": \"nope\", \"rope_theta\": 10000, \"rms_norm_eps\": 1e-05, \"hidden_act\": \"silu\", "
                + "\"embedding_multiplier\": 12, \"attention_multiplier\": 0.0078125, \"residual_multiplier\": 0.22, "
                + "\"logits_scaling\": 6, \"num_local_experts\": 64, \"num_experts_per_tok\": 6, \"intermediate_size\": 512, "
                + "\"shared_intermediate_size\": 1024, \"mamba_n_heads\": 48, \"mamba_d_head\": 64, \"mamba_n_groups\": 1, "
                + "\"mamba_d_state\": 128, \"mamba_d_conv\": 4, \"mamba_expand\": 2, \"mamba_chunk_size\": 256, "
                + "\"mamba_conv_bias\": true, \"mamba_proj_bias\": false, \"tie_word_embeddings\": true, \"eos_token_id\": 100257}";
        Map<String, Object> fields = new HashMap<>((Map<String, Object>) Json.parseAsPythonWrites(json));
        fields.putAll((Map<String, Object>) Json.parseAsPythonWrites("{" + extra + "}"));
        return ModelConfig.fromJson(fields);
    }

    @Test
    void theShapeAndTheMultipliersAreRead() {
        ModelConfig c = granite("");
        assertEquals(ModelConfig.Family.GRANITE_HYBRID, c.family());
        assertEquals(new ModelConfig.Granite(List.of(2), 48, 64, 12f, 0.0078125f, 0.22f, 6f), c.granite());
        assertTrue(c.isAttention(2));
        assertFalse(c.isAttention(0));
        assertEquals(128, c.headDim());
        assertEquals(3072, c.mambaInner());
        assertEquals(48, c.ssdHeads());
        assertEquals(64, c.ssdHeadDim());
        assertEquals(3072 + 2 * 128, c.convChannels());
        assertEquals(new ModelConfig.Mamba2(1, 0f, Float.POSITIVE_INFINITY), c.mamba2());
        assertEquals(1024, c.intermediateSize());
        assertEquals(512, c.expertIntermediateSize());
        assertTrue(c.isMoe(0) && c.hasDenseFfn(0), "the experts and the shared MLP in every layer");
        assertTrue(c.renormalize(), "softmax over the top-k logits = the softmax renormalised over the top k");
        assertNull(c.rope(), "position_embedding_type nope: no RoPE");
        assertTrue(c.tieEmbeddings());
    }

    @Test
    void ropeTheTransformers5LayerNamesAndTheDenseVariant() {
        assertEquals(10000f, granite("\"position_embedding_type\": \"rope\"").rope().base());
        ModelConfig renamed = granite("\"layer_types\": [\"linear_attention\", \"full_attention\", \"linear_attention\", \"full_attention\"]");
        assertEquals(List.of(1, 3), renamed.granite().attentionLayers());
        ModelConfig dense = granite("\"num_local_experts\": 0");
        assertFalse(dense.isMoe(0));
        assertTrue(dense.hasDenseFfn(0), "without experts the shared MLP is the FFN");
        assertEquals(List.of(), granite("\"layer_types\": null").granite().attentionLayers(), "transformers' default: every layer Mamba");
        assertEquals(32, granite("\"mamba_d_head\": \"auto\", \"mamba_n_heads\": 96").ssdHeadDim());
    }

    @Test
    void fieldsThatChangeTheMathAreRefusedByName() {
        illegalArgument("mamba_proj_bias", () -> granite("\"mamba_proj_bias\": true"));
        illegalArgument("position_embedding_type", () -> granite("\"position_embedding_type\": \"alibi\""));
        illegalArgument("layer_types", () -> granite("\"layer_types\": [\"mamba\", \"moe\", \"attention\", \"mamba\"]"));
        illegalArgument("layer_types", () -> granite("\"layer_types\": [\"mamba\", \"attention\"]"));
        illegalArgument("mamba_n_groups", () -> granite("\"mamba_n_groups\": 5"));
        illegalArgument("mamba_d_head", () -> granite("\"mamba_d_head\": 32"));
        illegalArgument("logits_scaling", () -> granite("\"logits_scaling\": 0"));
        illegalArgument("num_experts_per_tok", () -> granite("\"num_experts_per_tok\": 65"));
        illegalArgument("hidden_act", () -> granite("\"hidden_act\": \"gelu\""));
        illegalArgument("rope_scaling", () -> granite("\"position_embedding_type\": \"rope\", \"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 2}"));
    }
}
