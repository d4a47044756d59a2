package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.quant.QuantGemv;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.Tensor;

/**
 * A projection y = x W^T with W (out, in) either dense in the compute dtype or kept quantized
 * (a GGUF file's Q8_0, Q4_0 or Q4_K matrix on CUDA): then {@link QuantGemv} takes all the rows in
 * one call for f16 and bf16 (the GEMV for decode steps, the tensor-core tiles for prompts) and f32
 * in slices of {@link QuantGemv#MAX_ROWS} rows (the GEMV).
 */
final class Linear {
    private final Tensor dense;
    private final QuantizedMatrix quantized;

    private Linear(Tensor dense, QuantizedMatrix quantized) {
        this.dense = dense;
        this.quantized = quantized;
    }

    static Linear dense(Tensor weight) {
        return new Linear(weight, null);
    }

    static Linear quantized(QuantizedMatrix weight) {
        return new Linear(null, weight);
    }

    /** Output features (W's rows). */
    long outFeatures() {
        return dense != null ? dense.dim(0) : quantized.rows();
    }

    /** out (T, out) = x (T, in) W^T, with the session's split-K workspace. */
    void apply(Step step, Tensor out, Tensor x) {
        Backend backend = step.backend;
        if (dense != null) {
            Gemm.gemm(backend, out, x, false, dense, true, 1f, 0f, step.session.gemmWorkspace());
            return;
        }
        long rows = x.dim(0), perCall = QuantGemv.maxRows(x.dtype());
        for (long r = 0; r < rows; r += perCall) {
            long end = Math.min(rows, r + perCall);
            QuantGemv.apply(backend, out.slice(0, r, end), x.slice(0, r, end), quantized, step.session.gemmWorkspace());
        }
    }
}
