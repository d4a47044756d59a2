package dev.isthmus.model;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM binding of isthmus_sample. Arguments are checked by {@link Sampling} first. */
final class SamplingCuda {
    private SamplingCuda() {}

    private static final ValueLayout P = ValueLayout.ADDRESS, L = ValueLayout.JAVA_LONG, I = ValueLayout.JAVA_INT, F = ValueLayout.JAVA_FLOAT;
    // int isthmus_sample(int32_t *ids, float *probs, const float *logits, int64_t rows, int64_t cols, const uint64_t *seeds,
    //                    uint64_t *offsets, float temperature, int64_t top_k, float top_p, float min_p, void *stream)
    private static final MethodHandle SAMPLE = NativeLibrary.downcall("isthmus_sample", FunctionDescriptor.of(I, P, P, P, L, L, P, P, F, L, F, F, P));

    static void sample(CudaBackend backend, Tensor ids, Tensor probs, Tensor logits, SamplingOptions options, Tensor seeds, Tensor offsets) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) SAMPLE.invokeExact(pointer(ids), pointer(probs), pointer(logits), logits.dim(0), logits.dim(1), pointer(seeds),
                    pointer(offsets), options.temperature(), (long) options.topK(), options.topP(), options.minP(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_sample downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_sample");
    }
}
