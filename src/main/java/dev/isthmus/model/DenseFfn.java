package dev.isthmus.model;

import dev.isthmus.tensor.Tensor;

/** The SwiGLU feed-forward block (Shazeer 2020): out = (silu(x Wg^T) * (x Wu^T)) Wd^T. */
final class DenseFfn {
    private final Linear gate, up, down;

    DenseFfn(Weights w, ModelConfig c, String prefix) {
        long h = c.hiddenSize(), i = c.intermediateSize();
        gate = w.linear(prefix + "gate_proj.weight", i, h);
        up = w.linear(prefix + "up_proj.weight", i, h);
        down = w.linear(prefix + "down_proj.weight", h, i);
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
