package dev.isthmus.blas;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The FFM binding of isthmus_gemm: the project's own GEMM, which is the MoE grouped GEMM with one
 * group (f16/bf16 views copyable in aligned 16-byte chunks on the mma.sync tile engine, split over K
 * for decode-sized products given a {@link GemmWorkspace}; f32 and other views on the exact kernel). Arguments are checked by Gemm first.
 */
final class GemmKernel {
    private GemmKernel() {}

    static final String DESCRIPTION = "isthmus_gemm (the project's own kernel: mma.sync tensor-core tiles for aligned f16/bf16, "
            + "fp32 FMA for f32, an exact element-wise kernel for other views)";

    private static final class Handle {
        // int isthmus_gemm(void *c, const void *a, const void *b, int64_t m, int64_t n, int64_t k, int32_t transpose_a,
        //                  int32_t transpose_b, float alpha, float beta, int32_t ab_dtype, int32_t c_dtype, void *workspace,
        //                  int64_t workspace_bytes, void *stream)
        static final MethodHandle GEMM = NativeLibrary.downcall("isthmus_gemm", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_FLOAT,
                ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS));
    }

    /** {@code ws}: the split-K workspace, or null (no split). */
    static void gemm(CudaBackend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                     float alpha, float beta, int m, int n, int k, GemmWorkspace ws) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.GEMM.invokeExact(pointer(c), pointer(a), pointer(b), (long) m, (long) n, (long) k,
                    transposeA ? 1 : 0, transposeB ? 1 : 0, alpha, beta, a.dtype().code(), c.dtype().code(),
                    GemmWorkspace.pointer(ws), GemmWorkspace.byteSize(ws), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_gemm downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_gemm");
    }
}
