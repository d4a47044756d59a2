package dev.isthmus.model;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.io.Json;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Mamba2ForCausalLM's config.json: the fields read, the time-step limit in each form transformers writes, and what is refused. */
class Mamba2ConfigTest {
    /** A mamba2-2.7b-shaped config.json with {@code extra} spliced in as its last fields (later keys win). */
    @SuppressWarnings("unchecked")
    private static ModelConfig mamba2(String extra) {
        String json = "{\"architectures\": [\"Mamba2ForCausalLM\"], \"vocab_size\": 50288, \"hidden_size\": 2560, "
                + "\"num_hidden_layers\": 64, \"num_heads\": 80, \"head_dim\": 64, \"expand\": 2, \"n_groups\": 1, "
                + "\"state_size\": 128, \"conv_kernel\": 4, \"chunk_size\": 256, \"layer_norm_epsilon\": 1e-05, "
                + "\"residual_in_fp32\": true, \"rms_norm\": true, \"use_bias\": false, \"use_conv_bias\": true"
                + (extra.isEmpty() ? "" : ", " + extra) + "}";
        return ModelConfig.fromJson((Map<String, Object>) Json.parseAsPythonWrites(json));
    }

    @Test
    void theShapeIsRead() {
        ModelConfig c = mamba2("");
        assertEquals(ModelConfig.Family.MAMBA2, c.family());
        assertEquals(5120, c.mambaInner());
        assertEquals(80, c.heads());
        assertEquals(64, c.headDim());
        assertEquals(5120 + 2 * 128, c.convChannels());
        assertEquals(new ModelConfig.Mamba2(1, 0f, Float.POSITIVE_INFINITY), c.mamba2());
        assertEquals(false, c.tieEmbeddings());
    }

    @Test
    void theTimeStepLimitInEveryFormTransformersWrites() {
        assertEquals(Float.POSITIVE_INFINITY, mamba2("\"time_step_limit\": [0.0, Infinity]").mamba2().dtMax());
        assertEquals(Float.POSITIVE_INFINITY, mamba2("\"time_step_limit\": [0.0, {\"__float__\": \"Infinity\"}]").mamba2().dtMax());
        assertEquals(new ModelConfig.Mamba2(1, 0.001f, 0.1f), mamba2("\"time_step_limit\": [0.001, 0.1]").mamba2());
        illegalArgument("time_step_limit[1]", () -> mamba2("\"time_step_limit\": [0.0, \"big\"]"));
        illegalArgument("time_step_limit", () -> mamba2("\"time_step_limit\": [0.0]"));
        illegalArgument("time_step_limit", () -> mamba2("\"time_step_limit\": [0.5, 0.1]"));
    }

    @Test
    void fieldsThatChangeTheMathAreRefusedByName() {
        illegalArgument("use_bias", () -> mamba2("\"use_bias\": true"));
        illegalArgument("rms_norm", () -> mamba2("\"rms_norm\": false"));
        illegalArgument("n_groups", () -> mamba2("\"n_groups\": 3"));
        illegalArgument("head_dim", () -> mamba2("\"head_dim\": 32"));
        illegalArgument("hidden_act", () -> mamba2("\"hidden_act\": \"gelu\""));
        illegalArgument("layer_types", () -> mamba2("\"layer_types\": [\"mamba\", \"attention\"]"));
        illegalArgument("expand", () -> mamba2("\"expand\": 1.7"));
    }
}
