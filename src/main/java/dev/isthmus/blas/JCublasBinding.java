package dev.isthmus.blas;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaException;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import jcuda.Pointer;
import jcuda.cudaDataType;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasComputeType;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;
import jcuda.jcublas.cublasStatus;

/** cuBLAS through JCublas 12.6, which links libcublas.so.12 (CUDA 12) and loads only where that does. */
final class JCublasBinding implements CublasBinding {
    static final String VERSION = "JCublas 12.6.0";

    private final BackendHandles<cublasHandle> handles = new BackendHandles<>(backend -> {
        cublasHandle h = create();
        check(JCublas2.cublasSetStream(h, backend.stream().jcuda()), "cublasSetStream");
        return h;
    }, h -> check(JCublas2.cublasDestroy(h), "cublasDestroy"));

    private JCublasBinding() {}

    /** Loads JCublas's native library; throws the loader's error where libcublas.so.12 is missing. */
    static JCublasBinding load() {
        JCublas2.initialize();
        return new JCublasBinding();
    }

    @Override
    public String description() {
        return "cuBLAS 12 through " + VERSION + " (libcublas.so.12; cublasGemmEx, fp32 compute)";
    }

    @Override
    public String trial() {
        try {
            check(JCublas2.cublasDestroy(create()), "cublasDestroy");
            return "";
        } catch (RuntimeException e) { // ours, or JCuda's own where its exceptions are enabled
            return e.getMessage();
        }
    }

    private static cublasHandle create() {
        cublasHandle h = new cublasHandle();
        check(JCublas2.cublasCreate(h), "cublasCreate");
        return h;
    }

    @Override
    public void gemmEx(CudaBackend backend, boolean transA, boolean transB, int m, int n, int k, float alpha,
                       Tensor a, int lda, Tensor b, int ldb, float beta, Tensor c, int ldc) {
        int status = JCublas2.cublasGemmEx_new(handles.get(backend), operation(transA), operation(transB), m, n, k,
                Pointer.to(new float[] {alpha}), JCudaInterop.pointer(a), dataType(a.dtype()), lda,
                JCudaInterop.pointer(b), dataType(b.dtype()), ldb,
                Pointer.to(new float[] {beta}), JCudaInterop.pointer(c), dataType(c.dtype()), ldc,
                cublasComputeType.CUBLAS_COMPUTE_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT);
        check(status, "cublasGemmEx");
    }

    private static int operation(boolean transpose) {
        return transpose ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
    }

    private static int dataType(DType t) {
        return switch (t) {
            case F32 -> cudaDataType.CUDA_R_32F;
            case F16 -> cudaDataType.CUDA_R_16F;
            case BF16 -> cudaDataType.CUDA_R_16BF;
            default -> throw new IllegalArgumentException("no cuBLAS type for " + t.label());
        };
    }

    private static void check(int status, String what) {
        if (status != cublasStatus.CUBLAS_STATUS_SUCCESS)
            throw new CudaException(what + ": " + cublasStatus.stringFor(status), cublasStatus.stringFor(status));
    }
}
