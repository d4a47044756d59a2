package dev.isthmus.quant;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM binding of isthmus_quant_gemv (native/isthmus.h). Arguments are checked by QuantGemv first. */
final class QuantGemvCuda {
    private QuantGemvCuda() {}

    private static final class Handle {
        // int isthmus_quant_gemv(void *out, const void *x, const void *weights, int32_t format, int64_t rows,
        //                        int64_t n_out, int64_t k, int32_t dtype, void *workspace, int64_t workspace_bytes,
        //                        void *stream)
        static final MethodHandle GEMV = NativeLibrary.downcall("isthmus_quant_gemv", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG,
                ValueLayout.ADDRESS));
    }

    static void launch(CudaBackend backend, Tensor out, Tensor x, QuantizedMatrix w, GemmWorkspace ws) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.GEMV.invokeExact(pointer(out), pointer(x), pointer(w.bytes()), w.type().id(), x.dim(0), w.rows(), w.cols(),
                    x.dtype().code(), GemmWorkspace.pointer(ws), GemmWorkspace.byteSize(ws), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_quant_gemv downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_quant_gemv");
    }
}
