package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/** Argument checks shared by the MoE stages; each names the argument it rejects. */
final class MoeChecks {
    private MoeChecks() {}

    static final Set<DType> FLOATS = Set.of(DType.F32, DType.F16, DType.BF16);

    static void backend(Backend backend) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
    }

    /** Usable on the backend, contiguous, of the given dtype and shape. */
    static void tensor(String name, Tensor t, Backend backend, DType dtype, long... shape) {
        Checks.usable(name, t, backend.device());
        if (t.dtype() != dtype)
            throw new IllegalArgumentException(name + " has dtype " + t.dtype().label() + ", expected " + dtype.label());
        Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }

    /** A float activation or weight tensor: usable, contiguous, f32/f16/bf16, rank 2 or 3. */
    static void floats(String name, Tensor t, Backend backend, int rank) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, FLOATS);
        Checks.rank(name, t, rank);
        Checks.contiguous(name, t);
    }

    /**
     * tokens * topK, the (token, slot) pairs: align counts them in int32 on the device, so past
     * 2^31 - 1 they are refused here (also where the product would not fit in a long).
     */
    static int pairs(long tokens, int topK) {
        if (tokens < 0 || topK < 0) throw new IllegalArgumentException("tokens " + tokens + " and topK " + topK + " must be >= 0");
        if (topK > 0 && tokens > Integer.MAX_VALUE / topK)
            throw new IllegalArgumentException("tokens * topK = " + tokens + " * " + topK + " pairs exceeds " + Integer.MAX_VALUE);
        return (int) (tokens * topK);
    }

    /** Pair and row counts index int32 buffers on the device. */
    static int rows(String name, long rows) {
        if (rows > Integer.MAX_VALUE) throw new IllegalArgumentException(name + " " + rows + " exceeds " + Integer.MAX_VALUE);
        return (int) rows;
    }
}
