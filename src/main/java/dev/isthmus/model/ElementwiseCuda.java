package dev.isthmus.model;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM bindings of isthmus_embedding, isthmus_add_bias, isthmus_silu_mul and isthmus_argmax. Arguments are checked by Elementwise first. */
final class ElementwiseCuda {
    private ElementwiseCuda() {}

    private static final class Handle {
        static final ValueLayout P = ValueLayout.ADDRESS;
        static final ValueLayout L = ValueLayout.JAVA_LONG;
        static final ValueLayout I = ValueLayout.JAVA_INT;
        // int isthmus_embedding(void *out, const void *table, const int32_t *ids, int64_t tokens, int64_t vocab,
        //                       int64_t hidden, int32_t dtype, void *stream)
        static final MethodHandle EMBEDDING = NativeLibrary.downcall("isthmus_embedding",
                FunctionDescriptor.of(I, P, P, P, L, L, L, I, P));
        // int isthmus_add_bias(void *out, const void *x, const void *bias, int64_t rows, int64_t cols, int32_t dtype, void *stream)
        static final MethodHandle ADD_BIAS = NativeLibrary.downcall("isthmus_add_bias", FunctionDescriptor.of(I, P, P, P, L, L, I, P));
        // int isthmus_silu_mul(void *out, const void *gate, const void *up, int64_t count, int32_t dtype, void *stream)
        static final MethodHandle SILU_MUL = NativeLibrary.downcall("isthmus_silu_mul", FunctionDescriptor.of(I, P, P, P, L, I, P));
        // int isthmus_argmax(int32_t *out, const float *logits, int64_t rows, int64_t cols, void *stream)
        static final MethodHandle ARGMAX = NativeLibrary.downcall("isthmus_argmax", FunctionDescriptor.of(I, P, P, L, L, P));
    }

    static void embedding(CudaBackend backend, Tensor out, Tensor table, Tensor ids) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handle.EMBEDDING.invokeExact(pointer(out), pointer(table), pointer(ids), ids.dim(0), table.dim(0),
                    table.dim(1), table.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_embedding downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_embedding");
    }

    static void addBias(CudaBackend backend, Tensor out, Tensor x, Tensor bias) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handle.ADD_BIAS.invokeExact(pointer(out), pointer(x), pointer(bias), x.dim(0), x.dim(1), x.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_add_bias downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_add_bias");
    }

    static void siluMul(CudaBackend backend, Tensor out, Tensor gate, Tensor up) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handle.SILU_MUL.invokeExact(pointer(out), pointer(gate), pointer(up), gate.elementCount(), gate.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_silu_mul downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_silu_mul");
    }

    static void argmax(CudaBackend backend, Tensor out, Tensor logits) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handle.ARGMAX.invokeExact(pointer(out), pointer(logits), logits.dim(0), logits.dim(1), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_argmax downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_argmax");
    }
}
