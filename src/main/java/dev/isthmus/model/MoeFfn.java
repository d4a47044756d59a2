package dev.isthmus.model;

import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.tensor.Tensor;

/**
 * A mixture-of-experts SwiGLU block run by {@link MoeLayer}: softmax router over the experts,
 * top-k, each token's experts weighted (renormalized over the chosen ones for Mixtral, not for
 * Jamba). Per-expert gate/up/down matrices of a checkpoint are stacked on load into the layer's
 * (E, 2I, H) gate-then-up and (E, H, I) down tensors; a GGUF file's stacked experts in a quantized
 * format stay quantized on CUDA for f16/bf16 (the quantized expert GEMMs).
 */
final class MoeFfn {
    private final MoeLayer.Weights weights;             // dense experts, or
    private final MoeLayer.QuantizedWeights quantized;  // experts kept quantized (a GGUF file's, on CUDA)
    private final RouterConfig router;
    private final int hidden;
    private final int intermediate;

    private MoeFfn(ModelConfig c, MoeLayer.Weights weights) {
        this(c, weights, null);
    }

    private MoeFfn(ModelConfig c, MoeLayer.Weights weights, MoeLayer.QuantizedWeights quantized) {
        this.weights = weights;
        this.quantized = quantized;
        this.hidden = c.hiddenSize();
        this.intermediate = c.expertIntermediateSize();
        this.router = RouterConfig.softmax(c.experts(), c.topK(), c.renormalize());
    }

    /** How a checkpoint names expert {@code e}'s gate (0), up (1) and down (2) matrices. */
    interface ExpertName {
        String of(int expert, int which);
    }

    /** Experts stored one module each; stacked here. */
    static MoeFfn perExpert(Weights w, ModelConfig c, String routerName, ExpertName name) {
        int experts = c.experts();
        long h = c.hiddenSize(), inter = c.expertIntermediateSize();
        Tensor router = w.load(routerName, experts, h);
        Tensor gateUp = Tensor.allocateHost(w.dtype(), experts, 2 * inter, h);
        Tensor down = Tensor.allocateHost(w.dtype(), experts, h, inter);
        try {
            for (int e = 0; e < experts; e++) {
                Tensor expertGateUp = gateUp.slice(0, e, e + 1).reshape(2 * inter, h);
                copyInto(w, expertGateUp.slice(0, 0, inter), name.of(e, 0));
                copyInto(w, expertGateUp.slice(0, inter, 2 * inter), name.of(e, 1));
                copyInto(w, down.slice(0, e, e + 1).reshape(h, inter), name.of(e, 2));
            }
        } catch (RuntimeException ex) {
            gateUp.close();
            down.close();
            throw ex;
        }
        return new MoeFfn(c, new MoeLayer.Weights(router, null, w.upload(gateUp), w.upload(down)));
    }

    /**
     * Experts already stacked: {@code prefix}gate_up_proj (E, 2I, H), gate rows first, and
     * {@code prefix}down_proj (E, H, I); kept quantized where the source offers both so.
     */
    static MoeFfn stacked(Weights w, ModelConfig c, String routerName, String prefix) {
        return stacked(w, c, routerName, prefix + "gate_up_proj", prefix + "down_proj");
    }

    /** As {@link #stacked(Weights, ModelConfig, String, String)} with the two stacks named in full (Granite: input_linear, output_linear). */
    static MoeFfn stacked(Weights w, ModelConfig c, String routerName, String gateUpName, String downName) {
        int experts = c.experts();
        long h = c.hiddenSize(), inter = c.expertIntermediateSize();
        QuantizedExperts gateUp = w.quantizedExperts(gateUpName, experts, 2 * inter, h);
        QuantizedExperts down = gateUp == null ? null : w.quantizedExperts(downName, experts, h, inter);
        if (down != null)
            return new MoeFfn(c, null, new MoeLayer.QuantizedWeights(w.load(routerName, experts, h), null, gateUp, down));
        return new MoeFfn(c, new MoeLayer.Weights(w.load(routerName, experts, h), null, w.load(gateUpName, experts, 2 * inter, h),
                w.load(downName, experts, h, inter)));
    }

    private static void copyInto(Weights w, Tensor dst, String name) {
        try (Tensor src = w.host(name, dst.dtype(), dst.shape())) {
            dst.copyFrom(src.toFloatArray());
        }
    }

    /** out = MoE(x) (+ shared, a shared expert's output added in the combine; may be null). */
    void forward(Step step, Tensor x, Tensor out, Tensor shared) {
        MoeLayer.Workspace ws = step.moeWorkspace(hidden, intermediate, x.dtype(), router);
        if (quantized != null) MoeLayer.forwardQuantized(step.backend, out, x, quantized, router, shared, null, ws);
        else MoeLayer.forward(step.backend, out, x, weights, router, shared, null, ws);
    }
}
