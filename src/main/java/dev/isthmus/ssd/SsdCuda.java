package dev.isthmus.ssd;

import static dev.isthmus.cuda.NativeLibrary.pointer;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * The FFM bindings of isthmus_ssd_scan, isthmus_ssd_state_update and isthmus_gated_rmsnorm
 * (native/isthmus.h). Arguments are checked by Ssd first.
 */
final class SsdCuda {
    private SsdCuda() {}

    private static final class Handle {
        // int isthmus_ssd_scan(void *y, float *final_states, const void *x, const void *dt, const void *b,
        //     const void *c, const float *a, const float *d, const float *dt_bias, const float *initial_states,
        //     const int32_t *seq_starts, int64_t sequences, int64_t batch, int64_t length, int64_t heads,
        //     int64_t head_dim, int64_t groups, int64_t nstate, int32_t dt_softplus, float dt_min, float dt_max,
        //     int32_t chunk, int32_t dtype, void *stream)
        static final MethodHandle SCAN = NativeLibrary.downcall("isthmus_ssd_scan", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, JAVA_INT, ADDRESS));
        // int isthmus_ssd_state_update(void *y, float *state, const int32_t *slots, int64_t pool, const void *x,
        //     const void *dt, const void *b, const void *c, const float *a, const float *d, const float *dt_bias,
        //     int64_t batch, int64_t heads, int64_t head_dim, int64_t groups, int64_t nstate, int32_t dt_softplus,
        //     float dt_min, float dt_max, int32_t dtype, void *stream)
        static final MethodHandle STEP = NativeLibrary.downcall("isthmus_ssd_state_update", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, ADDRESS));
        // int isthmus_gated_rmsnorm(void *out, const void *y, const void *z, const void *weight, int64_t rows,
        //     int64_t width, int64_t group_size, float eps, int32_t dtype, void *stream)
        static final MethodHandle NORM = NativeLibrary.downcall("isthmus_gated_rmsnorm", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_FLOAT, JAVA_INT, ADDRESS));
    }

    static void scan(CudaBackend backend, Tensor y, Tensor finalStates, Tensor x, Tensor dt, Tensor b, Tensor c,
                     SsdWeights w, Tensor initialStates, Tensor seqStarts, int chunk) {
        long stream = backend.prepareLaunch();
        long sequences = seqStarts == null ? 0 : seqStarts.dim(0) - 1;
        int status;
        try {
            status = (int) Handle.SCAN.invokeExact(pointer(y), pointer(finalStates), pointer(x), pointer(dt), pointer(b),
                    pointer(c), pointer(w.a()), pointer(w.d()), pointer(w.dtBias()), pointer(initialStates),
                    pointer(seqStarts), sequences, x.dim(0), x.dim(1), x.dim(2), x.dim(3), b.dim(2), b.dim(3),
                    w.dtSoftplus() ? 1 : 0, w.dtMin(), w.dtMax(), chunk, x.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_ssd_scan downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_ssd_scan");
    }

    static void step(CudaBackend backend, Tensor y, Tensor state, Tensor slots, Tensor x, Tensor dt, Tensor b, Tensor c,
                     SsdWeights w) {
        long stream = backend.prepareLaunch();
        int status;
        try {
            status = (int) Handle.STEP.invokeExact(pointer(y), pointer(state), pointer(slots), state.dim(0), pointer(x),
                    pointer(dt), pointer(b), pointer(c), pointer(w.a()), pointer(w.d()), pointer(w.dtBias()),
                    x.dim(0), x.dim(1), x.dim(2), b.dim(1), b.dim(2), w.dtSoftplus() ? 1 : 0, w.dtMin(), w.dtMax(),
                    x.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_ssd_state_update downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_ssd_state_update");
    }

    static void gatedRmsNorm(CudaBackend backend, Tensor out, Tensor y, Tensor z, Tensor weight, long groupSize, float eps) {
        long stream = backend.prepareLaunch();
        long width = y.dim(-1);
        int status;
        try {
            status = (int) Handle.NORM.invokeExact(pointer(out), pointer(y), pointer(z), pointer(weight),
                    y.elementCount() / width, width, groupSize, eps, y.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_gated_rmsnorm downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_gated_rmsnorm");
    }
}
