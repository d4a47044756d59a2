package dev.isthmus.scan;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.Tensor;

/**
 * The causal depthwise conv1d of a Mamba block (the short convolution in front of the scan). Per
 * batch b, channel d and time t, with width W (1..8):
 *
 * <pre>
 *   out[b,d,t] = bias[d] + sum_{k&lt;W} weight[d,k] * x[b,d,t-(W-1)+k]     (then silu if asked)
 * </pre>
 *
 * where the W-1 inputs before t = 0 come from a conv state (B, D, W-1), oldest first, or are 0.
 * x, out (B, D, L), weight (D, W), bias (D) and the conv states share one dtype (f32, f16, bf16),
 * all contiguous.
 */
public final class CausalConv1d {
    private CausalConv1d() {}

    static final int MAX_WIDTH = 8;

    /**
     * out = conv(x) over whole sequences.
     *
     * @param finalState   (B, D, W-1) receiving the last W-1 inputs, or null; may be initialState
     * @param bias         (D), or null for none
     * @param initialState (B, D, W-1) inputs before t = 0, or null for zeros
     */
    public static void apply(Backend backend, Tensor out, Tensor finalState, Tensor x, Tensor weight, Tensor bias,
                             Tensor initialState, boolean silu) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        check("x", x, x, backend);
        Checks.rank("x", x, 3);
        long batch = x.dim(0), channels = x.dim(1);
        long width = checkWeights(x, weight, bias, backend, channels);
        check("out", out, x, backend, x.shape());
        // Later outputs read earlier inputs: out may not share a byte with x, not even as a shifted view.
        Checks.disjoint("out", out, "x", x);
        if (initialState != null) check("initialState", initialState, x, backend, batch, channels, width - 1);
        if (finalState != null) {
            check("finalState", finalState, x, backend, batch, channels, width - 1);
            Checks.disjoint("finalState", finalState, "x", x);
            Checks.disjoint("finalState", finalState, "out", out);
        }
        if (x.elementCount() == 0) { // no steps: the state passes through
            ScanStates.carry(backend, finalState, initialState);
            return;
        }
        switch (backend) {
            case CpuBackend cpu -> CausalConv1dReference.apply(out, finalState, x, weight, bias, initialState, silu);
            case CudaBackend cuda -> CausalConv1dCuda.apply(cuda, out, finalState, x, weight, bias, initialState, silu);
        }
    }

    /**
     * One token: x, out (B, D); out is the conv of (convState, x), then convState (B, D, W-1)
     * drops its oldest input and appends x, in place. out may be x itself. convState may be null
     * only for W = 1.
     */
    public static void update(Backend backend, Tensor out, Tensor convState, Tensor x, Tensor weight, Tensor bias, boolean silu) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        check("x", x, x, backend);
        Checks.rank("x", x, 2);
        long batch = x.dim(0), channels = x.dim(1);
        long width = checkWeights(x, weight, bias, backend, channels);
        check("out", out, x, backend, x.shape());
        if (convState != null) check("convState", convState, x, backend, batch, channels, width - 1);
        else if (width > 1) throw new IllegalArgumentException("convState is null; it is needed for width " + width);
        if (x.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> CausalConv1dReference.update(out, convState, x, weight, bias, silu);
            case CudaBackend cuda -> CausalConv1dCuda.update(cuda, out, convState, x, weight, bias, silu);
        }
    }

    private static long checkWeights(Tensor x, Tensor weight, Tensor bias, Backend backend, long channels) {
        check("weight", weight, x, backend);
        Checks.rank("weight", weight, 2);
        long width = weight.dim(1);
        Checks.shape("weight", weight, channels, width);
        if (width < 1 || width > MAX_WIDTH) throw new IllegalArgumentException("weight has width " + width + ", expected 1.." + MAX_WIDTH);
        if (bias != null) check("bias", bias, x, backend, channels);
        return width;
    }

    /** Usable, contiguous, of x's dtype (one of f32, f16, bf16) and, when given, of this shape. */
    private static void check(String name, Tensor t, Tensor x, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, SelectiveScan.DTYPES);
        Checks.sameDtype(name, t, "x", x);
        if (shape.length > 0) Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }
}
