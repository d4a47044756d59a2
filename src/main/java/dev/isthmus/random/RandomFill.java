package dev.isthmus.random;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * Random tensors made where they live: element i of a contiguous f32, f16 or bf16 tensor is a
 * function of (seed, i) alone (a counter-based generator, isthmus_fill_random in isthmus.h), so a
 * GPU fills gigabytes in milliseconds instead of the host drawing each value and copying it over,
 * and every backend produces the same tensor for the same seed: uniform values bit for bit,
 * normal ones to within the rounding of the logarithm and cosine.
 */
public final class RandomFill {
    private RandomFill() {}

    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    /**
     * The generator's uniform number in [0, 1) at counter {@code i} of {@code seed}: the top 24 bits
     * of its 64, exactly as the device draws it (uniform fills, and sampling's draw).
     */
    public static float unitFloat(long seed, long i) {
        return (RandomFillReference.bits(seed, i) >>> 40) * 0x1p-24f;
    }

    /** Fills {@code out} with values uniform in [low, high); low == high fills the constant low exactly. */
    public static void uniform(Backend backend, Tensor out, long seed, float low, float high) {
        check(backend, out, "low", low, "high", high);
        if (!(low <= high)) throw new IllegalArgumentException("low " + low + " must not exceed high " + high);
        fill(backend, out, seed, Distribution.UNIFORM, low, high);
    }

    /** Fills {@code out} with normal values of mean {@code mean} and standard deviation {@code std}. */
    public static void normal(Backend backend, Tensor out, long seed, float mean, float std) {
        check(backend, out, "mean", mean, "std", std);
        if (std < 0) throw new IllegalArgumentException("std must be >= 0, got " + std);
        fill(backend, out, seed, Distribution.NORMAL, mean, std);
    }

    /** A new tensor on the backend of normal values with mean 0 and standard deviation {@code std}. */
    public static Tensor normal(Backend backend, DType dtype, long seed, float std, long... shape) {
        Tensor t = allocate(backend, dtype, shape);
        try {
            normal(backend, t, seed, 0f, std);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** A new tensor on the backend of values uniform in [low, high). */
    public static Tensor uniform(Backend backend, DType dtype, long seed, float low, float high, long... shape) {
        Tensor t = allocate(backend, dtype, shape);
        try {
            uniform(backend, t, seed, low, high);
        } catch (RuntimeException e) {
            t.close();
            throw e;
        }
        return t;
    }

    /** The two distributions, with the codes of isthmus_random_distribution. */
    enum Distribution {
        UNIFORM(0), NORMAL(1);

        final int code;

        Distribution(int code) {
            this.code = code;
        }
    }

    private static Tensor allocate(Backend backend, DType dtype, long... shape) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (dtype == null || !DTYPES.contains(dtype)) throw new IllegalArgumentException("dtype must be f32, f16 or bf16, got " + dtype);
        return backend.allocate(dtype, shape);
    }

    private static void check(Backend backend, Tensor out, String aName, float a, String bName, float b) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        Checks.usable("out", out, backend.device());
        Checks.dtypeIn("out", out, DTYPES);
        Checks.contiguous("out", out);
        Checks.finite(aName, a);
        Checks.finite(bName, b);
    }

    private static void fill(Backend backend, Tensor out, long seed, Distribution distribution, float a, float b) {
        switch (backend) {
            case CpuBackend cpu -> RandomFillReference.fill(out, seed, distribution, a, b);
            case CudaBackend cuda -> RandomFillCuda.fill(cuda, out, seed, distribution, a, b);
        }
    }
}
