package dev.isthmus.model;

import dev.isthmus.tensor.Tensor;

/**
 * The SwiGLU feed-forward block (Shazeer 2020): out = (silu(x Wg^T) * (x Wu^T)) Wd^T. Phi-3 stores
 * Wg and Wu as one gate_up_proj (gate rows first), read as two views of it; Granite's shared MLP
 * as one input_linear (gate rows first) with Wd as output_linear.
 */
final class DenseFfn {
    private final Linear gate, up, down;

    DenseFfn(Weights w, ModelConfig c, String prefix) {
        long h = c.hiddenSize(), i = c.intermediateSize();
        boolean granite = c.family() == ModelConfig.Family.GRANITE_HYBRID;
        if (c.family() == ModelConfig.Family.PHI3 || granite) {
            Linear[] gateUp = w.fused(prefix + (granite ? "input_linear.weight" : "gate_up_proj.weight"), h, i, i);
            gate = gateUp[0];
            up = gateUp[1];
        } else {
            gate = w.linear(prefix + "gate_proj.weight", i, h);
            up = w.linear(prefix + "up_proj.weight", i, h);
        }
        down = w.linear(prefix + (granite ? "output_linear.weight" : "down_proj.weight"), h, i);
    }

    void forward(Step step, Tensor x, Tensor out) {
        long inter = gate.outFeatures();
        Tensor g = step.allocate(x.dtype(), step.totalTokens, inter);
        Tensor u = step.allocate(x.dtype(), step.totalTokens, inter);
        gate.apply(step, g, x);
        up.apply(step, u, x);
        Elementwise.siluMul(step.backend, g, g, u);
        down.apply(step, out, g);
    }
}
