package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The two grouped expert GEMMs. Each gathers its rows through the aligned pair list (no permuted
 * copy), one tile of {@link #TILE_M} rows per expert segment tile; f16/bf16 on tensor cores
 * (mma.sync where H and I are multiples of 8), f32 on fp32 FMAs, fp32 accumulation throughout.
 */
public final class ExpertGemm {
    private ExpertGemm() {}

    /** The row-tile height the GEMMs need from {@link Dispatch} (isthmus.h ISTHMUS_MOE_TILE_M). */
    public static final int TILE_M = 128;

    /**
     * hidden[p, j] = silu(x[t] . gateUp[e, j]) * (x[t] . gateUp[e, I + j]) for each pair p = t * k + s
     * routed to expert e. x (T, H); gateUp (E, 2I, H): gate rows, then up rows; hidden (T * k, I).
     */
    public static void gateUp(Backend backend, Tensor hidden, Tensor x, Tensor gateUp, Dispatch.Buffers routing, int topK) {
        gateUp(backend, hidden, x, gateUp, routing, topK, null);
    }

    /** The same with a split-K workspace (or null): up to 64 routed pairs then split over H. */
    public static void gateUp(Backend backend, Tensor hidden, Tensor x, Tensor gateUp, Dispatch.Buffers routing, int topK,
                              GemmWorkspace ws) {
        MoeChecks.backend(backend);
        if (ws != null) ws.checkOn(backend, "ws");
        MoeChecks.floats("x", x, backend, 2);
        MoeChecks.floats("gateUp", gateUp, backend, 3);
        Checks.sameDtype("gateUp", gateUp, "x", x);
        if (topK < 1) throw new IllegalArgumentException("topK must be positive, got " + topK);
        checkRouting(backend, routing, MoeChecks.pairs(x.dim(0), topK), gateUp.dim(0));
        if (gateUp.dim(1) % 2 != 0) throw new IllegalArgumentException("gateUp has " + gateUp.dim(1) + " rows per expert; expected 2 * I");
        if (gateUp.dim(2) != x.dim(1))
            throw new IllegalArgumentException("gateUp has " + gateUp.dim(2) + " columns but x has hidden size " + x.dim(1));
        MoeChecks.tensor("hidden", hidden, backend, x.dtype(), x.dim(0) * topK, gateUp.dim(1) / 2);
        positive("x's hidden size", x.dim(1));
        positive("gateUp's intermediate size", gateUp.dim(1) / 2);
        switch (backend) {
            case CpuBackend cpu -> MoeReference.grouped(hidden, x, gateUp, routing, topK, true, null);
            case CudaBackend cuda -> MoeCuda.gateUp(cuda, hidden, x, gateUp, routing, topK, ws);
        }
    }

    /**
     * slotOut[p, n] = weights[p] * (hidden[p] . down[e, n]). hidden (T * k, I); down (E, H, I);
     * weights (T, k) f32 or null (all 1); slotOut (T * k, H).
     */
    public static void down(Backend backend, Tensor slotOut, Tensor hidden, Tensor down, Tensor weights, Dispatch.Buffers routing) {
        down(backend, slotOut, hidden, down, weights, routing, null);
    }

    /** The same with a split-K workspace (or null): up to 64 routed pairs then split over I. */
    public static void down(Backend backend, Tensor slotOut, Tensor hidden, Tensor down, Tensor weights, Dispatch.Buffers routing,
                            GemmWorkspace ws) {
        MoeChecks.backend(backend);
        if (ws != null) ws.checkOn(backend, "ws");
        MoeChecks.floats("hidden", hidden, backend, 2);
        MoeChecks.floats("down", down, backend, 3);
        Checks.sameDtype("down", down, "hidden", hidden);
        checkRouting(backend, routing, hidden.dim(0), down.dim(0));
        if (down.dim(2) != hidden.dim(1))
            throw new IllegalArgumentException("down has " + down.dim(2) + " columns but hidden has intermediate size " + hidden.dim(1));
        MoeChecks.tensor("slotOut", slotOut, backend, hidden.dtype(), hidden.dim(0), down.dim(1));
        positive("hidden's intermediate size", hidden.dim(1));
        positive("down's hidden size", down.dim(1));
        checkWeights(backend, weights, hidden.dim(0));
        switch (backend) {
            case CpuBackend cpu -> MoeReference.grouped(slotOut, hidden, down, routing, 1, false, weights);
            case CudaBackend cuda -> MoeCuda.down(cuda, slotOut, hidden, down, weights, routing, ws);
        }
    }

    /**
     * {@link #gateUp} with the experts' (2I, H) matrices quantized. On CUDA x is f16 or bf16 (the
     * tensor-core tiles dequantize the weights into that dtype in shared memory) and 16-byte aligned;
     * on the CPU the weights are dequantized by the format's definition and the reference runs.
     */
    public static void gateUpQuantized(Backend backend, Tensor hidden, Tensor x, QuantizedExperts gateUp, Dispatch.Buffers routing, int topK) {
        gateUpQuantized(backend, hidden, x, gateUp, routing, topK, null);
    }

    /** The same with a split-K workspace (or null): up to 64 routed pairs then split over H. */
    public static void gateUpQuantized(Backend backend, Tensor hidden, Tensor x, QuantizedExperts gateUp, Dispatch.Buffers routing, int topK,
                                       GemmWorkspace ws) {
        MoeChecks.backend(backend);
        if (ws != null) ws.checkOn(backend, "ws");
        MoeChecks.floats("x", x, backend, 2);
        checkQuantized("gateUp", gateUp, backend, x);
        if (topK < 1) throw new IllegalArgumentException("topK must be positive, got " + topK);
        checkRouting(backend, routing, MoeChecks.pairs(x.dim(0), topK), gateUp.experts());
        if (gateUp.rows() % 2 != 0) throw new IllegalArgumentException("gateUp has " + gateUp.rows() + " rows per expert; expected 2 * I");
        if (gateUp.cols() != x.dim(1))
            throw new IllegalArgumentException("gateUp has " + gateUp.cols() + " columns but x has hidden size " + x.dim(1));
        MoeChecks.tensor("hidden", hidden, backend, x.dtype(), x.dim(0) * topK, gateUp.rows() / 2);
        switch (backend) {
            case CpuBackend cpu -> {
                try (Tensor dense = dequantized(gateUp)) {
                    MoeReference.grouped(hidden, x, dense, routing, topK, true, null);
                }
            }
            case CudaBackend cuda -> MoeCuda.gateUpQuantized(cuda, hidden, x, gateUp, routing, topK, ws);
        }
    }

    /** {@link #down} with the experts' (H, I) matrices quantized; the dtypes as for {@link #gateUpQuantized}. */
    public static void downQuantized(Backend backend, Tensor slotOut, Tensor hidden, QuantizedExperts down, Tensor weights, Dispatch.Buffers routing) {
        downQuantized(backend, slotOut, hidden, down, weights, routing, null);
    }

    /** The same with a split-K workspace (or null): up to 64 routed pairs then split over I. */
    public static void downQuantized(Backend backend, Tensor slotOut, Tensor hidden, QuantizedExperts down, Tensor weights, Dispatch.Buffers routing,
                                     GemmWorkspace ws) {
        MoeChecks.backend(backend);
        if (ws != null) ws.checkOn(backend, "ws");
        MoeChecks.floats("hidden", hidden, backend, 2);
        checkQuantized("down", down, backend, hidden);
        checkRouting(backend, routing, hidden.dim(0), down.experts());
        if (down.cols() != hidden.dim(1))
            throw new IllegalArgumentException("down has " + down.cols() + " columns but hidden has intermediate size " + hidden.dim(1));
        MoeChecks.tensor("slotOut", slotOut, backend, hidden.dtype(), hidden.dim(0), down.rows());
        checkWeights(backend, weights, hidden.dim(0));
        switch (backend) {
            case CpuBackend cpu -> {
                try (Tensor dense = dequantized(down)) {
                    MoeReference.grouped(slotOut, hidden, dense, routing, 1, false, weights);
                }
            }
            case CudaBackend cuda -> MoeCuda.downQuantized(cuda, slotOut, hidden, down, weights, routing, ws);
        }
    }

    private static void checkQuantized(String name, QuantizedExperts w, Backend backend, Tensor activations) {
        if (w == null) throw new IllegalArgumentException(name + " is null");
        Checks.usable(name + ".bytes", w.bytes(), backend.device());
        if (backend instanceof CudaBackend) {
            if (activations.dtype() == DType.F32)
                throw new IllegalArgumentException("quantized experts on CUDA take f16 or bf16 activations (the tensor-core tiles), got f32");
            if (activations.address() % 16 != 0)
                throw new IllegalArgumentException("the activations must be 16-byte aligned for the quantized experts (a view at an odd offset is not)");
        }
    }

    private static Tensor dequantized(QuantizedExperts w) {
        return Tensor.fromFloats(DType.F32, w.dequantize(), w.experts(), w.rows(), w.cols());
    }

    private static void checkWeights(Backend backend, Tensor weights, long pairs) {
        if (weights == null) return;
        Checks.usable("weights", weights, backend.device());
        if (weights.dtype() != DType.F32 || weights.elementCount() != pairs || !weights.isContiguous())
            throw new IllegalArgumentException("weights must be a contiguous f32 tensor of " + pairs + " elements (T, k), got " + weights);
    }

    /** The kernels tile both matrix sides; an empty side has nothing to tile (and no address). */
    private static void positive(String what, long size) {
        if (size < 1) throw new IllegalArgumentException(what + " is " + size + "; the expert GEMMs need at least 1");
    }

    private static void checkRouting(Backend backend, Dispatch.Buffers routing, long pairs, long experts) {
        if (routing == null) throw new IllegalArgumentException("routing is null");
        routing.checkOn(backend, "routing");
        if (routing.tile() != TILE_M)
            throw new IllegalArgumentException("routing was aligned to tile " + routing.tile() + "; the expert GEMMs need " + TILE_M);
        if (routing.pairs() != pairs)
            throw new IllegalArgumentException("routing holds " + routing.pairs() + " pairs but the activations have " + pairs + " rows");
        if (routing.experts() != experts)
            throw new IllegalArgumentException("routing has " + routing.experts() + " experts but the weights have " + experts);
        routing.requireAligned();
    }
}
