package dev.isthmus.ssd;

import dev.isthmus.tensor.Tensor;

/**
 * The per-layer parameters of a Mamba-2 SSD scan, in fp32 as Mamba-2 keeps them, one per head.
 *
 * @param a          (H) f32: the scalar state decay of each head (Mamba-2's -exp(A_log))
 * @param d          (H) f32 skip weight, or null for none
 * @param dtBias     (H) f32 added to dt before the softplus, or null for none
 * @param dtSoftplus whether dt' = softplus(dt + dtBias) (Mamba-2: yes) or dt + dtBias
 * @param dtMin      dt' is clamped to [dtMin, dtMax] after the softplus (the config's
 *                   time_step_limit; -inf and +inf for no clamp)
 * @param dtMax      see dtMin
 */
public record SsdWeights(Tensor a, Tensor d, Tensor dtBias, boolean dtSoftplus, float dtMin, float dtMax) {
    /** Without a time-step limit. */
    public SsdWeights(Tensor a, Tensor d, Tensor dtBias, boolean dtSoftplus) {
        this(a, d, dtBias, dtSoftplus, Float.NEGATIVE_INFINITY, Float.POSITIVE_INFINITY);
    }
}
