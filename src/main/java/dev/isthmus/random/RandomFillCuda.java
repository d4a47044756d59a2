package dev.isthmus.random;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM binding of isthmus_fill_random. Arguments are checked by {@link RandomFill} first. */
final class RandomFillCuda {
    private RandomFillCuda() {}

    private static final class Handle {
        // int isthmus_fill_random(void *out, int64_t count, int32_t dtype, uint64_t seed, int32_t distribution,
        //                         float a, float b, void *stream)
        static final MethodHandle FILL = NativeLibrary.downcall("isthmus_fill_random", FunctionDescriptor.of(ValueLayout.JAVA_INT,
                ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT,
                ValueLayout.JAVA_FLOAT, ValueLayout.JAVA_FLOAT, ValueLayout.ADDRESS));
    }

    static void fill(CudaBackend backend, Tensor out, long seed, RandomFill.Distribution distribution, float a, float b) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handle.FILL.invokeExact(pointer(out), out.elementCount(), out.dtype().code(), seed, distribution.code, a, b, stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_fill_random downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_fill_random");
    }
}
