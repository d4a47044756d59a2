package dev.isthmus.norm;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM binding of isthmus_rmsnorm (native/isthmus.h). Arguments are checked by RmsNorm first. */
final class RmsNormCuda {
    private RmsNormCuda() {}

    private static final class Handle {
        // int isthmus_rmsnorm(void *out, void *residual_out, const void *x, const void *residual,
        //                     const void *weight, int64_t rows, int64_t cols, float eps, int32_t dtype, void *stream)
        static final MethodHandle RMSNORM = NativeLibrary.downcall("isthmus_rmsnorm", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    }

    static void launch(CudaBackend backend, Tensor out, Tensor residualOut, Tensor x, Tensor residual, Tensor weight, float eps) {
        long stream = backend.prepareLaunch();
        long cols = x.dim(-1);
        long rows = x.elementCount() / cols;
        int status;
        try {
            status = (int) Handle.RMSNORM.invokeExact(pointer(out), pointer(residualOut), pointer(x), pointer(residual),
                    pointer(weight), rows, cols, eps, x.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_rmsnorm downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_rmsnorm");
    }
}
