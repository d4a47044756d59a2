package dev.isthmus.blas;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * Dense matrix product, row-major: C = alpha * op(A) * op(B) + beta * C, where op(X) is X or its
 * transpose. op(A) is (M, K), op(B) is (K, N), C is (M, N). A and B share a dtype (f32, f16,
 * bf16); C has that dtype or f32; products are summed in fp32 (double on the CPU). With
 * beta = 0, C is only written, never read, so its old contents (even NaN) do not matter.
 *
 * <p>On CUDA this runs through cuBLAS: JCublas where its libcublas.so.12 (CUDA 12) loads, else
 * libcublas.so.13 or .so.12 bound through FFM (from {@code -Disthmus.cublas.path}, CUDA_HOME or
 * the loader's search path). Where no cuBLAS works (none found, a driver it cannot use, the host
 * emulation), the project's own kernel takes over: the MoE grouped GEMM with one group
 * (isthmus_gemm). {@link #cudaPath()} says which one runs, and why.
 */
public final class Gemm {
    private Gemm() {}

    static final Set<DType> INPUT_DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    /** C = alpha * A * B + beta * C. */
    public static void matmul(Backend backend, Tensor c, Tensor a, Tensor b, float alpha, float beta) {
        gemm(backend, c, a, false, b, false, alpha, beta);
    }

    /** C = alpha * op(A) * op(B) + beta * C; {@code transposeB} with B of shape (N, K) is x W^T for a PyTorch Linear. */
    public static void gemm(Backend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                            float alpha, float beta) {
        gemm(backend, c, a, transposeA, b, transposeB, alpha, beta, null);
    }

    /**
     * The same with a split-K workspace (or null) for the project's own kernel, which then splits
     * decode-sized products (at most 64 rows) over K; cuBLAS, where it runs, does not use it.
     */
    public static void gemm(Backend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                            float alpha, float beta, GemmWorkspace ws) {
        Shape s = check(backend, c, a, transposeA, b, transposeB, alpha, beta);
        if (ws != null) ws.checkOn(backend, "ws");
        if (s.m == 0 || s.n == 0) return; // C is empty
        switch (backend) {
            case CpuBackend cpu -> GemmReference.gemm(c, a, transposeA, b, transposeB, alpha, beta, s.m, s.n, s.k);
            case CudaBackend cuda -> {
                // k = 0 (C = beta * C) goes to the own kernel, which takes empty operands without an address.
                if (GemmCublas.available() && s.k > 0) GemmCublas.gemm(cuda, c, a, transposeA, b, transposeB, alpha, beta, s.m, s.n, s.k);
                else GemmKernel.gemm(cuda, c, a, transposeA, b, transposeB, alpha, beta, s.m, s.n, s.k, ws);
            }
        }
    }

    /**
     * The same product always through the project's own kernel (CUDA), or the CPU reference: for
     * comparing the two CUDA paths where cuBLAS loads.
     */
    public static void gemmOwnKernel(Backend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                                     float alpha, float beta) {
        gemmOwnKernel(backend, c, a, transposeA, b, transposeB, alpha, beta, null);
    }

    /** The own kernel with a split-K workspace (or null: no split). */
    public static void gemmOwnKernel(Backend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                                     float alpha, float beta, GemmWorkspace ws) {
        Shape s = check(backend, c, a, transposeA, b, transposeB, alpha, beta);
        if (ws != null) ws.checkOn(backend, "ws");
        if (s.m == 0 || s.n == 0) return;
        switch (backend) {
            case CpuBackend cpu -> GemmReference.gemm(c, a, transposeA, b, transposeB, alpha, beta, s.m, s.n, s.k);
            case CudaBackend cuda -> GemmKernel.gemm(cuda, c, a, transposeA, b, transposeB, alpha, beta, s.m, s.n, s.k, ws);
        }
    }

    /** Which implementation a GEMM on CUDA uses here, and why: one line for `info`. */
    public static String cudaPath() {
        String cublas = GemmCublas.availability();
        return GemmCublas.available() ? cublas : GemmKernel.DESCRIPTION + ", because cuBLAS is " + cublas;
    }

    record Shape(int m, int n, int k) {}

    private static void matrix(String name, Tensor t) {
        Checks.rank(name, t, 2);
        Checks.contiguous(name, t);
    }

    private static Shape check(Backend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                               float alpha, float beta) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        Checks.usable("a", a, backend.device());
        Checks.usable("b", b, backend.device());
        Checks.usable("c", c, backend.device());
        matrix("a", a);
        matrix("b", b);
        matrix("c", c);
        Checks.dtypeIn("a", a, INPUT_DTYPES);
        Checks.sameDtype("b", b, "a", a);
        if (c.dtype() != a.dtype() && c.dtype() != DType.F32)
            throw new IllegalArgumentException("c has dtype " + c.dtype().label() + "; expected " + a.dtype().label() + " (a's) or f32");
        Checks.finite("alpha", alpha);
        Checks.finite("beta", beta);
        long m = transposeA ? a.dim(1) : a.dim(0);
        long k = transposeA ? a.dim(0) : a.dim(1);
        long kb = transposeB ? b.dim(1) : b.dim(0);
        long n = transposeB ? b.dim(0) : b.dim(1);
        if (k != kb)
            throw new IllegalArgumentException("inner dimensions differ: op(a) is (" + m + ", " + k + "), op(b) is (" + kb + ", " + n + ")");
        Checks.shape("c", c, m, n);
        for (long d : new long[] {m, n, k})
            if (d > Integer.MAX_VALUE) throw new IllegalArgumentException("GEMM dimension " + d + " exceeds " + Integer.MAX_VALUE);
        return new Shape((int) m, (int) n, (int) k);
    }
}
