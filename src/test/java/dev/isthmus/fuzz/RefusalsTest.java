package dev.isthmus.fuzz;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.attention.KvCache;
import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.io.Json;
import dev.isthmus.model.Elementwise;
import dev.isthmus.model.ModelConfig;
import dev.isthmus.moe.Dispatch;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The inputs the hardening issue found accepted or crashing, each refused by name. */
class RefusalsTest {
    private static final CpuBackend CPU = Backend.cpu();

    @Test
    void sizesThatOverflow() {
        illegalArgument("more bytes than a long", () -> Tensor.allocateHost(DType.F32, 1L << 62));
        try (Tensor small = Tensor.allocateHost(DType.I8, 256)) {
            illegalArgument("more bytes than a long", () -> Tensor.of(small.storage(), DType.F32, 1L << 62));
        }
        illegalArgument("pairs exceeds", () -> Dispatch.Buffers.allocate(CPU, Long.MAX_VALUE / 3, 4, 8, 32));
        illegalArgument("pairs exceeds", () -> Dispatch.Buffers.allocate(CPU, 1L << 30, 4, 8, 32));
        try (KvCache cache = KvCache.allocate(CPU, DType.F16, 4, 16, 1, 64)) {
            int s = cache.newSequence();
            cache.extend(new int[] {s}, new int[] {5}).close();
            illegalArgument("more blocks", () -> cache.extend(new int[] {s}, new int[] {Integer.MAX_VALUE}));
        }
    }

    @Test
    void silentAcceptances() {
        try (Tensor scalar = Tensor.allocateHost(DType.F32)) {
            illegalArgument("gate must have rank >= 1", () -> Elementwise.siluMul(CPU, scalar, scalar, scalar));
        }
        illegalArgument("dtype must be f32, f16 or bf16", () -> MoeLayer.Workspace.allocate(CPU, 2, 8, 8, DType.I8, RouterConfig.softmax(4, 2, true)));
        illegalArgument("ws is null", () -> MoeLayer.forward(CPU, null, null, null, null, null, null, null));
        illegalArgument("src is null", () -> CPU.toHost(null));
        try (Tensor t = Tensor.allocateHost(DType.F32, 2)) {
            illegalArgument("values is null", () -> t.copyFrom((float[]) null));
        }
    }

    @Test
    void configFieldsRefusedByName() {
        illegalArgument("num_key_value_heads", () -> llama("num_key_value_heads", 0L));
        illegalArgument("num_hidden_layers", () -> llama("num_hidden_layers", -1L));
        illegalArgument("rope_theta", () -> llama("rope_theta", -5L));
        illegalArgument("rope_theta", () -> llama("rope_theta", Double.NaN));
        illegalArgument("hidden_act gelu_pytorch_tanh", () -> llama("hidden_act", "gelu_pytorch_tanh"));
        illegalArgument("mlp_bias", () -> llama("mlp_bias", true));
        illegalArgument("layer_types mixes", () -> llama("layer_types", List.of("full_attention", "sliding_attention")));
        Map<String, Object> qwen = base("Qwen2ForCausalLM");
        qwen.put("use_sliding_window", true);
        qwen.put("sliding_window", 4L);
        qwen.put("max_window_layers", 1L);
        illegalArgument("max_window_layers 1", () -> ModelConfig.fromJson(qwen));
        qwen.put("max_window_layers", 0L);
        assertEquals(4, ModelConfig.fromJson(qwen).slidingWindow(), "every layer slides: honoured");
        qwen.put("max_window_layers", 2L);
        assertEquals(0, ModelConfig.fromJson(qwen).slidingWindow(), "no layer slides: honoured");
        ModelConfig jamba = ModelConfig.jamba(64, 128, 4, 1, 256, 4, 2, 2);
        ModelConfig noPeriod = new ModelConfig(jamba.family(), 64, 128, 4, 2, 1, 64, 256, 1e-6f, 0, 1, null, false, false, 0, false, 256, 16, 4,
                8, true, 4, 2, false, 0, 0, 2, 1, List.of(), 256, List.of(), null);
        illegalArgument("attentionPeriod (attn_layer_period)", () -> dev.isthmus.model.DecoderModel.random(CPU, noPeriod, DType.F32, 1));
    }

    @Test
    void deepJsonIsRefusedNotAStackOverflow() {
        illegalArgument("nest deeper than", () -> Json.parse("[".repeat(100_000) + "]".repeat(100_000)));
    }

    private static ModelConfig llama(String key, Object value) {
        Map<String, Object> json = base("LlamaForCausalLM");
        json.put(key, value);
        return ModelConfig.fromJson(json);
    }

    private static Map<String, Object> base(String architecture) {
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("architectures", List.of(architecture));
        json.put("vocab_size", 64L);
        json.put("hidden_size", 128L);
        json.put("num_hidden_layers", 2L);
        json.put("num_attention_heads", 2L);
        json.put("num_key_value_heads", 1L);
        json.put("intermediate_size", 256L);
        return json;
    }
}
