package dev.isthmus.norm;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * RMSNorm over the last dimension (Zhang & Sennrich 2019), optionally with the residual add
 * fused in front, as a pre-norm transformer block uses it:
 *
 * <pre>
 *   h   = x + residual                      (rounded to the dtype; written to residualOut)
 *   out = h / sqrt(mean(h^2) + eps) * weight
 * </pre>
 *
 * The fused form gives exactly what the two unfused steps give with h stored in between. All
 * tensors share one dtype (f32, f16, bf16) and are contiguous; x is (..., cols), weight (cols).
 * out may be x itself, and residualOut may be residual itself (in-place update of the stream).
 */
public final class RmsNorm {
    private RmsNorm() {}

    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    /** out = rmsnorm(x) * weight. */
    public static void apply(Backend backend, Tensor out, Tensor x, Tensor weight, float eps) {
        check(backend, out, null, x, null, weight, eps);
        if (x.elementCount() == 0) return; // no rows (a zero-size device tensor has no address to launch on)
        switch (backend) {
            case CpuBackend cpu -> RmsNormReference.apply(out, null, x, null, weight, eps);
            case CudaBackend cuda -> RmsNormCuda.launch(cuda, out, null, x, null, weight, eps);
        }
    }

    /** residualOut = x + residual; out = rmsnorm(residualOut) * weight. */
    public static void applyWithResidual(Backend backend, Tensor out, Tensor residualOut, Tensor x, Tensor residual,
                                         Tensor weight, float eps) {
        if (residual == null || residualOut == null)
            throw new IllegalArgumentException("applyWithResidual needs residual and residualOut (use apply without a residual)");
        check(backend, out, residualOut, x, residual, weight, eps);
        if (x.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> RmsNormReference.apply(out, residualOut, x, residual, weight, eps);
            case CudaBackend cuda -> RmsNormCuda.launch(cuda, out, residualOut, x, residual, weight, eps);
        }
    }

    private static void check(Backend backend, Tensor out, Tensor residualOut, Tensor x, Tensor residual, Tensor weight, float eps) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        Checks.usable("x", x, backend.device());
        Checks.dtypeIn("x", x, DTYPES);
        Checks.rankAtLeast("x", x, 1);
        Checks.contiguous("x", x);
        long cols = x.dim(-1);
        if (cols == 0) throw new IllegalArgumentException("x has an empty last dimension; RMSNorm needs at least one column");
        checkLike("out", out, x, backend);
        checkLike("weight", weight, x, backend, cols);
        if (residual != null) {
            checkLike("residual", residual, x, backend);
            checkLike("residualOut", residualOut, x, backend);
        }
        Checks.finite("eps", eps);
        if (eps < 0) throw new IllegalArgumentException("eps must be >= 0, got " + eps);
        if (x.elementCount() / cols > Integer.MAX_VALUE)
            throw new IllegalArgumentException("x has " + x.elementCount() / cols + " rows; at most " + Integer.MAX_VALUE);
    }

    /** {@code t} is usable, contiguous, of x's dtype and of the given shape (x's by default). */
    private static void checkLike(String name, Tensor t, Tensor x, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.sameDtype(name, t, "x", x);
        Checks.shape(name, t, shape.length == 0 ? x.shape() : shape);
        Checks.contiguous(name, t);
    }
}
