package dev.isthmus.model;

import dev.isthmus.blas.Gemm;
import dev.isthmus.tensor.Tensor;

/** The SwiGLU feed-forward block (Shazeer 2020): out = (silu(x Wg^T) * (x Wu^T)) Wd^T. */
final class DenseFfn {
    private final Tensor gate, up, down;

    DenseFfn(Weights w, ModelConfig c, String prefix) {
        long h = c.hiddenSize(), i = c.intermediateSize();
        gate = w.load(prefix + "gate_proj.weight", i, h);
        up = w.load(prefix + "up_proj.weight", i, h);
        down = w.load(prefix + "down_proj.weight", h, i);
    }

    void forward(Step step, Tensor x, Tensor out) {
        long inter = gate.dim(0);
        Tensor g = step.allocate(x.dtype(), step.totalTokens, inter);
        Tensor u = step.allocate(x.dtype(), step.totalTokens, inter);
        Gemm.gemm(step.backend, g, x, false, gate, true, 1f, 0f);
        Gemm.gemm(step.backend, u, x, false, up, true, 1f, 0f);
        Elementwise.siluMul(step.backend, g, g, u);
        Gemm.gemm(step.backend, out, g, false, down, true, 1f, 0f);
    }
}
