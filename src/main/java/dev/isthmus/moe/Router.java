package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The router's top-k: from logits (T, E) to weights (T, k, f32) and expert ids (T, k, i32), slot
 * 0 the best, as {@link RouterConfig} describes. The logits are usually x W_g^T from
 * {@link dev.isthmus.blas.Gemm} with an f32 output, so that the scores are fp32 throughout.
 */
public final class Router {
    private Router() {}

    /** Routes every token; {@code bias} (E, f32) is the choice-only bias, or null. */
    public static void topK(Backend backend, Tensor weights, Tensor ids, Tensor logits, Tensor bias, RouterConfig config) {
        MoeChecks.backend(backend);
        if (config == null) throw new IllegalArgumentException("config is null");
        MoeChecks.floats("logits", logits, backend, 2);
        if (logits.dim(1) != config.experts())
            throw new IllegalArgumentException("logits has " + logits.dim(1) + " columns but config.experts() is " + config.experts());
        long tokens = MoeChecks.rows("tokens", logits.dim(0));
        MoeChecks.tensor("weights", weights, backend, DType.F32, tokens, config.topK());
        MoeChecks.tensor("ids", ids, backend, DType.I32, tokens, config.topK());
        if (bias != null) MoeChecks.tensor("bias", bias, backend, DType.F32, config.experts());
        switch (backend) {
            case CpuBackend cpu -> MoeReference.topK(weights, ids, logits, bias, config);
            case CudaBackend cuda -> MoeCuda.topK(cuda, weights, ids, logits, bias, config);
        }
    }

    /**
     * Checks user-given routing: ids (T, k) i32 within [0, experts), weights (T, k) f32 finite.
     * A device tensor is copied to the host for this (the one call here that waits); routing
     * from {@link #topK} needs no check.
     */
    public static void checkRouting(Backend backend, Tensor weights, Tensor ids, long tokens, int topK, int experts) {
        MoeChecks.backend(backend);
        MoeChecks.tensor("weights", weights, backend, DType.F32, tokens, topK);
        MoeChecks.tensor("ids", ids, backend, DType.I32, tokens, topK);
        try (Tensor hostIds = ids.isHost() ? null : backend.toHost(ids);
             Tensor hostWeights = weights.isHost() ? null : backend.toHost(weights)) {
            long[] id = (hostIds == null ? ids : hostIds).toLongArray();
            for (int i = 0; i < id.length; i++)
                if (id[i] < 0 || id[i] >= experts)
                    throw new IllegalArgumentException("ids[" + i / topK + ", " + i % topK + "] = " + id[i]
                            + " is out of range for " + experts + " experts");
            float[] w = (hostWeights == null ? weights : hostWeights).toFloatArray();
            for (int i = 0; i < w.length; i++) Checks.finite("weights[" + i / topK + ", " + i % topK + "]", w[i]);
        }
    }
}
