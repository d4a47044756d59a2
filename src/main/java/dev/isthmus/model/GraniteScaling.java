package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * Granite 4.0-H's embedding and residual multipliers folded into the weights on load, so that the
 * layers run unchanged: embed(t) * m_e is a lookup in (E * m_e), and each block's output scaled by
 * m_r before the residual add is the block with its last projection (and that projection's bias)
 * times m_r, as every block ends in one: attention's o_proj, Mamba's out_proj, the shared MLP's
 * output_linear and the experts' down projections (a weighted sum of them). With tied embeddings
 * the head reads the scaled table, which {@link DecoderModel} undoes in the logits GEMM's alpha
 * together with the division by logits_scaling.
 */
final class GraniteScaling {
    private GraniteScaling() {}

    /** Names ending so are the last projection of a block, scaled by residual_multiplier. */
    private static final String[] BLOCK_OUTPUTS = {"self_attn.o_proj.weight", "self_attn.o_proj.bias", "mamba.out_proj.weight",
            "shared_mlp.output_linear.weight", "block_sparse_moe.output_linear.weight", "block_sparse_moe.experts.down_proj"};

    /** {@code base} with the multipliers of a Granite 4.0-H config folded in; {@code base} itself for other families. */
    static WeightSource wrap(ModelConfig config, WeightSource base) {
        ModelConfig.Granite g = config.granite();
        if (g == null || g.embeddingMultiplier() == 1 && g.residualMultiplier() == 1) return base;
        return new WeightSource() {
            float factor(String name) {
                if (name.equals("model.embed_tokens.weight")) return g.embeddingMultiplier();
                for (String suffix : BLOCK_OUTPUTS)
                    if (name.endsWith(suffix)) return g.residualMultiplier();
                return 1f;
            }

            @Override
            public boolean contains(String name) {
                return base.contains(name);
            }

            @Override
            public Tensor tensor(String name, DType dtype, long... shape) {
                float f = factor(name);
                if (f == 1) return base.tensor(name, dtype, shape);
                float[] values;
                try (Tensor exact = base.tensor(name, DType.F32, shape)) {
                    values = exact.toFloatArray();
                }
                for (int i = 0; i < values.length; i++) values[i] *= f;
                return Tensor.fromFloats(dtype, values, shape);
            }

            @Override
            public Tensor onBackend(Backend backend, String name, DType dtype, long... shape) {
                if (factor(name) == 1) return base.onBackend(backend, name, dtype, shape);
                try (Tensor host = tensor(name, dtype, shape)) {
                    return backend.copyOf(host);
                }
            }

            // A scaled matrix is read through tensor(), dense: quantizing on load wraps this source, so it quantizes the scaled values.
            @Override
            public QuantizedMatrix quantized(Backend backend, String name, long rows, long cols) {
                return factor(name) == 1 ? base.quantized(backend, name, rows, cols) : null;
            }

            @Override
            public QuantizedExperts quantizedExperts(Backend backend, DType dtype, String name, long experts, long rows, long cols) {
                return factor(name) == 1 ? base.quantizedExperts(backend, dtype, name, experts, rows, cols) : null;
            }

            @Override
            public long storedBytes(String name, DType dtype, long[] shape) {
                return base.storedBytes(name, dtype, shape);
            }
        };
    }
}
