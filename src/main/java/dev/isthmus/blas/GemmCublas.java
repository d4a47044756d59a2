package dev.isthmus.blas;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Map;
import java.util.WeakHashMap;
import jcuda.Pointer;
import jcuda.cudaDataType;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasComputeType;
import jcuda.jcublas.cublasGemmAlgo;
import jcuda.jcublas.cublasHandle;
import jcuda.jcublas.cublasOperation;
import jcuda.jcublas.cublasStatus;

/**
 * GEMM through JCublas (cublasGemmEx, fp32 compute). JCublas 12.6 needs libcublas.so.12; on a
 * machine with only CUDA 13 libraries it cannot load, and {@link #availability()} says so once.
 */
final class GemmCublas {
    private GemmCublas() {}

    private static volatile String availability;
    /** One cuBLAS handle per backend, bound to its stream and destroyed when the backend closes. */
    private static final Map<CudaBackend, cublasHandle> HANDLES = new WeakHashMap<>();

    static String availability() {
        String a = availability;
        if (a == null) availability = a = probe();
        return a;
    }

    static boolean available() {
        return availability().startsWith("cublas");
    }

    private static String probe() {
        if (HostEmulation.enabled()) return "unavailable under host emulation: cuBLAS needs a GPU";
        try {
            JCublas2.initialize();
            return "cublas (JCublas 12.6.0, cublasGemmEx with fp32 compute)";
        } catch (LinkageError | RuntimeException e) {
            return "unavailable: JCublas 12.6.0 could not load libcublas.so.12 (CUDA 12 cuBLAS) here: " + firstLine(e);
        }
    }

    /** The first line of the throwable's message, or its class name where it has none (JCuda throws some without one). */
    static String firstLine(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getName() : message.lines().findFirst().orElseThrow();
    }

    static void gemm(CudaBackend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                     float alpha, float beta, int m, int n, int k) {
        backend.prepareLaunch();
        if (m == 0 || n == 0) return;
        // cuBLAS is column-major. A row-major (R, C) matrix is the column-major (C, R) one, so the
        // row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T.
        int opA = transposeA ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int opB = transposeB ? cublasOperation.CUBLAS_OP_T : cublasOperation.CUBLAS_OP_N;
        int lda = (int) a.dim(1), ldb = (int) b.dim(1), ldc = n;
        int status = JCublas2.cublasGemmEx_new(handleFor(backend), opB, opA, n, m, k,
                Pointer.to(new float[] {alpha}), JCudaInterop.pointer(b), dataType(b.dtype()), ldb,
                JCudaInterop.pointer(a), dataType(a.dtype()), lda,
                Pointer.to(new float[] {beta}), JCudaInterop.pointer(c), dataType(c.dtype()), ldc,
                cublasComputeType.CUBLAS_COMPUTE_32F, cublasGemmAlgo.CUBLAS_GEMM_DEFAULT);
        check(status, "cublasGemmEx");
    }

    private static cublasHandle handleFor(CudaBackend backend) {
        synchronized (HANDLES) {
            cublasHandle handle = HANDLES.get(backend);
            if (handle != null) return handle;
            cublasHandle created = new cublasHandle();
            check(JCublas2.cublasCreate(created), "cublasCreate");
            check(JCublas2.cublasSetStream(created, backend.stream().jcuda()), "cublasSetStream");
            backend.closeWithBackend(() -> {
                synchronized (HANDLES) {
                    HANDLES.remove(backend);
                }
                check(JCublas2.cublasDestroy(created), "cublasDestroy");
            });
            HANDLES.put(backend, created);
            return created;
        }
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
            throw new dev.isthmus.cuda.CudaException(what + ": " + cublasStatus.stringFor(status), cublasStatus.stringFor(status));
    }
}
