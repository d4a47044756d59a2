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

/**
 * The FFM bindings of isthmus_selective_scan and isthmus_selective_state_update (native/isthmus.h).
 * Arguments are checked by SelectiveScan first.
 */
final class SelectiveScanCuda {
    private SelectiveScanCuda() {}

    private static final class Handle {
        // int isthmus_selective_scan(void *y, float *final_state, const void *u, const void *delta, const void *z,
        //     const void *b, const void *c, const float *a, const float *d, const float *delta_bias,
        //     const float *initial_state, const int32_t *seq_starts, int64_t sequences, int64_t batch,
        //     int64_t channels, int64_t length, int64_t groups, int64_t nstate, int32_t delta_softplus,
        //     int32_t dtype, void *stream)
        static final MethodHandle SCAN = NativeLibrary.downcall("isthmus_selective_scan", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS));
        // int isthmus_selective_state_update(void *y, float *state, const int32_t *slots, int64_t pool,
        //     const void *u, const void *delta, const void *z, const void *b, const void *c, const float *a,
        //     const float *d, const float *delta_bias, int64_t batch, int64_t channels, int64_t groups,
        //     int64_t nstate, int32_t delta_softplus, int32_t dtype, void *stream)
        static final MethodHandle STEP = NativeLibrary.downcall("isthmus_selective_state_update", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS));
    }

    static void scan(CudaBackend backend, Tensor y, Tensor finalState, Tensor u, Tensor delta, Tensor z, Tensor b,
                     Tensor c, ScanWeights w, Tensor initialState, Tensor seqStarts) {
        long stream = backend.prepareLaunch();
        long sequences = seqStarts == null ? 0 : seqStarts.dim(0) - 1;
        int status;
        try {
            status = (int) Handle.SCAN.invokeExact(pointer(y), pointer(finalState), pointer(u), pointer(delta), pointer(z),
                    pointer(b), pointer(c), pointer(w.a()), pointer(w.d()), pointer(w.deltaBias()), pointer(initialState),
                    pointer(seqStarts), sequences, u.dim(0), u.dim(1), u.dim(2), b.dim(1), b.dim(2),
                    w.deltaSoftplus() ? 1 : 0, u.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_selective_scan downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_selective_scan");
    }

    static void step(CudaBackend backend, Tensor y, Tensor state, Tensor slots, Tensor u, Tensor delta, Tensor z,
                     Tensor b, Tensor c, ScanWeights w) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.STEP.invokeExact(pointer(y), pointer(state), pointer(slots), state.dim(0), pointer(u),
                    pointer(delta), pointer(z), pointer(b), pointer(c), pointer(w.a()), pointer(w.d()), pointer(w.deltaBias()),
                    u.dim(0), u.dim(1), b.dim(1), b.dim(2), w.deltaSoftplus() ? 1 : 0, u.dtype().code(),
                    MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_selective_state_update downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_selective_state_update");
    }
}
