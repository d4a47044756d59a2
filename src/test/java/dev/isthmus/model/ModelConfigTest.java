package dev.isthmus.model;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.Rope;
import dev.isthmus.io.Json;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** RoPE settings read from config.json: rope_scaling (older transformers) and rope_parameters (newer), and what is refused. */
class ModelConfigTest {
    private static final String LLAMA3 = "\"rope_type\": \"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1.0, "
            + "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192";

    /** A Llama-3.2-1B-shaped config.json with {@code rope} spliced in as its last fields. */
    @SuppressWarnings("unchecked")
    private static ModelConfig llama(String rope) {
        String json = "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 128256, \"hidden_size\": 2048, "
                + "\"num_hidden_layers\": 16, \"num_attention_heads\": 32, \"num_key_value_heads\": 8, \"intermediate_size\": 8192, "
                + "\"rms_norm_eps\": 1e-05" + (rope.isEmpty() ? "" : ", " + rope) + "}";
        return ModelConfig.fromJson((Map<String, Object>) Json.parse(json));
    }

    @Test
    void llama3ScalingFromRopeScaling() {
        ModelConfig c = llama("\"rope_theta\": 500000.0, \"rope_scaling\": {" + LLAMA3 + "}");
        assertEquals(new Rope(500000f, true, 1f, new Rope.Llama3Scaling(32f, 1f, 4f, 8192)), c.rope());
    }

    @Test
    void llama3ScalingFromRopeParametersWithTheta() {
        ModelConfig c = llama("\"rope_parameters\": {\"rope_theta\": 500000.0, " + LLAMA3 + "}");
        assertEquals(new Rope(500000f, true, 1f, new Rope.Llama3Scaling(32f, 1f, 4f, 8192)), c.rope());
    }

    @Test
    void linearScalingIsAPositionScale() {
        assertEquals(Rope.neox(10000f).withPositionScale(0.25f), llama("\"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}").rope());
        assertEquals(Rope.neox(1e6f).withPositionScale(0.5f),
                llama("\"rope_parameters\": {\"rope_type\": \"linear\", \"factor\": 2, \"rope_theta\": 1000000.0}").rope());
    }

    @Test
    void defaultOrAbsentScalingIsPlainRope() {
        assertEquals(Rope.neox(10000f), llama("").rope());
        assertEquals(Rope.neox(10000f), llama("\"rope_theta\": 10000.0, \"rope_scaling\": null").rope());
        assertEquals(Rope.neox(10000f), llama("\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 10000.0}").rope());
        assertEquals(Rope.neox(500000f), llama("\"rope_parameters\": {\"rope_theta\": 500000.0}").rope());
        assertNull(llama("\"rope_parameters\": {\"rope_type\": \"default\"}").rope().llama3());
    }

    @Test
    void otherScalingTypesAreRefusedByName() {
        for (String type : new String[] {"dynamic", "yarn", "longrope", "proportional"}) {
            var e = illegalArgument(type, () -> llama("\"rope_scaling\": {\"rope_type\": \"" + type + "\", \"factor\": 4.0}"));
            assertTrue(e.getMessage().contains("supported: default, linear, llama3"), e.getMessage());
            illegalArgument("rope_parameters type " + type,
                    () -> llama("\"rope_parameters\": {\"rope_type\": \"" + type + "\", \"factor\": 4.0, \"rope_theta\": 10000.0}"));
        }
        illegalArgument("partial_rotary_factor", () -> llama("\"rope_parameters\": {\"rope_type\": \"default\", \"partial_rotary_factor\": 0.5}"));
        illegalArgument("rope_scaling is not an object", () -> llama("\"rope_scaling\": 4.0"));
    }

    @Test
    void badLlama3FieldsAreNamed() {
        illegalArgument("rope_scaling.low_freq_factor is missing",
                () -> llama("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"high_freq_factor\": 4.0, "
                        + "\"original_max_position_embeddings\": 8192}"));
        illegalArgument("rope_scaling.original_max_position_embeddings",
                () -> llama("\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 1.0, "
                        + "\"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 8192.5}"));
        illegalArgument("highFreqFactor",
                () -> llama("\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8.0, \"low_freq_factor\": 4.0, "
                        + "\"high_freq_factor\": 1.0, \"original_max_position_embeddings\": 8192}"));
        illegalArgument("rope_scaling.factor is missing", () -> llama("\"rope_scaling\": {\"type\": \"linear\"}"));
    }
}
