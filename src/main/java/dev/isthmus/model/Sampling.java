package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * Sampling with a temperature on the backend, without copying the logits anywhere: ids[r] drawn
 * from row r of the logits by {@link Sampler#distribution(float[], SamplingOptions)} (temperature,
 * top-k, top-p, min-p; NaN never drawn) with the uniform number of the counter generator at
 * (seeds[r], offsets[r]) — {@link dev.isthmus.random.RandomFill#unitFloat} — taken in id order:
 * the first token whose running probability exceeds it. offsets[r] is then incremented on the
 * backend, so a decode step captured as a CUDA graph draws anew at every replay, and the CPU and
 * CUDA backends draw the same tokens from the same logits. probs, when given, gets the drawn
 * token's probability under that distribution.
 */
public final class Sampling {
    private Sampling() {}

    /** ids i32 (R), probs f32 (R) or null, logits f32 (R, C), seeds and offsets i64 (R); options with a temperature. */
    public static void sample(Backend backend, Tensor ids, Tensor probs, Tensor logits, SamplingOptions options, Tensor seeds, Tensor offsets) {
        if (options == null) throw new IllegalArgumentException("options is null");
        if (options.isGreedy()) throw new IllegalArgumentException("options are greedy (temperature 0): use Elementwise.argmax");
        Elementwise.checkLogits(backend, logits);
        long rows = logits.dim(0);
        vector("ids", ids, DType.I32, rows, backend);
        if (probs != null) vector("probs", probs, DType.F32, rows, backend);
        vector("seeds", seeds, DType.I64, rows, backend);
        vector("offsets", offsets, DType.I64, rows, backend);
        if (rows == 0) return;
        switch (backend) {
            case CpuBackend cpu -> SamplingReference.sample(ids, probs, logits, options, seeds, offsets);
            case CudaBackend cuda -> SamplingCuda.sample(cuda, ids, probs, logits, options, seeds, offsets);
        }
    }

    private static void vector(String name, Tensor t, DType dtype, long rows, Backend backend) {
        Checks.usable(name, t, backend.device());
        if (t.dtype() != dtype) throw new IllegalArgumentException(name + " must be " + dtype.label() + ", has " + t.dtype().label());
        Checks.shape(name, t, rows);
        Checks.contiguous(name, t);
    }
}
