package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * out[t] = sum over slots s in order of slotOut[t * k + s] (+ shared[t]) (+ residual[t]), summed in
 * fp32 and rounded once, leaving out the slots {@code dropped} flags (from {@link Dispatch}; null:
 * none). Each output element is written by one thread in a fixed order, with no atomics, so the
 * same input gives bit-identical output on every run. out may be residual or shared.
 */
public final class Combine {
    private Combine() {}

    public static void apply(Backend backend, Tensor out, Tensor slotOut, Tensor dropped, Tensor shared, Tensor residual, int topK) {
        MoeChecks.backend(backend);
        MoeChecks.floats("out", out, backend, 2);
        if (topK < 1) throw new IllegalArgumentException("topK must be positive, got " + topK);
        int pairs = MoeChecks.pairs(out.dim(0), topK);
        MoeChecks.tensor("slotOut", slotOut, backend, out.dtype(), pairs, out.dim(1));
        if (dropped != null) MoeChecks.tensor("dropped", dropped, backend, DType.I32, pairs);
        if (shared != null) MoeChecks.tensor("shared", shared, backend, out.dtype(), out.shape());
        if (residual != null) MoeChecks.tensor("residual", residual, backend, out.dtype(), out.shape());
        if (out.elementCount() == 0) return; // no tokens or no columns (a zero-size device tensor has no address to launch on)
        switch (backend) {
            case CpuBackend cpu -> MoeReference.combine(out, slotOut, dropped, shared, residual, topK);
            case CudaBackend cuda -> MoeCuda.combine(cuda, out, slotOut, dropped, shared, residual, topK);
        }
    }
}
