package dev.isthmus.scan;

import static dev.isthmus.cuda.NativeLibrary.pointer;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/** The FFM bindings of isthmus_causal_conv1d and isthmus_causal_conv1d_update. Checked by CausalConv1d first. */
final class CausalConv1dCuda {
    private CausalConv1dCuda() {}

    private static final class Handle {
        // int isthmus_causal_conv1d(void *out, void *final_state, const void *x, const void *weight, const void *bias,
        //     const void *initial_state, int64_t batch, int64_t channels, int64_t length, int64_t width,
        //     int32_t silu, int32_t dtype, void *stream)
        static final MethodHandle APPLY = NativeLibrary.downcall("isthmus_causal_conv1d", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                JAVA_INT, JAVA_INT, ADDRESS));
        // int isthmus_causal_conv1d_update(void *out, void *conv_state, const void *x, const void *weight,
        //     const void *bias, int64_t batch, int64_t channels, int64_t width, int32_t silu, int32_t dtype, void *stream)
        static final MethodHandle UPDATE = NativeLibrary.downcall("isthmus_causal_conv1d_update", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS));
    }

    static void apply(CudaBackend backend, Tensor out, Tensor finalState, Tensor x, Tensor weight, Tensor bias,
                      Tensor initialState, boolean silu) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.APPLY.invokeExact(pointer(out), pointer(finalState), pointer(x), pointer(weight),
                    pointer(bias), pointer(initialState), x.dim(0), x.dim(1), x.dim(2), weight.dim(1), silu ? 1 : 0,
                    x.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_causal_conv1d downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_causal_conv1d");
    }

    static void update(CudaBackend backend, Tensor out, Tensor convState, Tensor x, Tensor weight, Tensor bias, boolean silu) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.UPDATE.invokeExact(pointer(out), pointer(convState), pointer(x), pointer(weight),
                    pointer(bias), x.dim(0), x.dim(1), weight.dim(1), silu ? 1 : 0, x.dtype().code(),
                    MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_causal_conv1d_update downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_causal_conv1d_update");
    }
}
