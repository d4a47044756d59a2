package dev.isthmus.blas;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Tensor;

/**
 * One way of calling cuBLAS: JCublas, or libcublas bound directly through FFM. Calls are
 * column-major, as cuBLAS's own; {@link GemmCublas} turns the row-major product into one.
 */
interface CublasBinding {
    /** Which cuBLAS this is and how it is bound, for {@link Gemm#cudaPath()}. */
    String description();

    /**
     * Makes and destroys one handle on the calling thread's current device: "" where that works,
     * else why not (no driver, a driver too old for this cuBLAS). Never throws for such failures.
     */
    String trial();

    /**
     * cublasGemmEx with fp32 compute and the default algorithm on the backend's stream, with that
     * backend's handle (made on first use, destroyed with the backend). The backend's device is
     * current (its prepareLaunch ran); the tensors are on that device, f32/f16/bf16, checked by Gemm.
     */
    void gemmEx(CudaBackend backend, boolean transA, boolean transB, int m, int n, int k, float alpha,
                Tensor a, int lda, Tensor b, int ldb, float beta, Tensor c, int ldc);
}
