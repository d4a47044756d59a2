package dev.isthmus.tensor;

import java.util.Arrays;

/**
 * Relative-error comparison of a result against a reference: ||actual - expected||_2 / ||expected||_2,
 * summed in double over all elements, with a bound per dtype. A NaN or infinity anywhere in
 * {@code actual} makes the error NaN, which is never within bounds, so unwritten (poisoned)
 * outputs fail.
 */
public final class Compare {
    private Compare() {}

    /** The outcome of one comparison, printable as one line. */
    public record Result(String name, double error, double bound) {
        public boolean withinBound() {
            return error <= bound; // false for NaN
        }

        @Override
        public String toString() {
            return String.format("%s: relative error %.3e (bound %.0e) %s", name, error, bound, withinBound() ? "ok" : "FAILED");
        }
    }

    /**
     * The bound a result stored in {@code dtype} is held to, for a kernel that accumulates in fp32:
     * a few units of the format's rounding error (fp32 2^-24, fp16 2^-11, bf16 2^-8).
     */
    public static double boundFor(DType dtype) {
        return switch (dtype) {
            case F32 -> 1e-5;
            case F16 -> 2e-3;
            case BF16 -> 1e-2;
            default -> 0.0; // integers must match exactly
        };
    }

    /** ||actual - expected|| / ||expected||; when the reference is all zeros, ||actual||. Host tensors. */
    public static double relativeError(Tensor actual, Tensor expected) {
        if (!Arrays.equals(actual.shape(), expected.shape()))
            throw new IllegalArgumentException("shapes differ: " + Arrays.toString(actual.shape()) + " vs " + Arrays.toString(expected.shape()));
        float[] a = actual.toFloatArray();
        float[] e = expected.toFloatArray();
        double diff = 0, ref = 0;
        for (int i = 0; i < a.length; i++) {
            double d = (double) a[i] - e[i];
            diff += d * d;
            ref += (double) e[i] * e[i];
        }
        if (Double.isNaN(diff) || Double.isInfinite(diff)) return Double.NaN;
        return ref == 0 ? Math.sqrt(diff) : Math.sqrt(diff / ref);
    }

    /** Compares with the bound of {@code actual}'s dtype. */
    public static Result check(String name, Tensor actual, Tensor expected) {
        return check(name, actual, expected, boundFor(actual.dtype()));
    }

    public static Result check(String name, Tensor actual, Tensor expected, double bound) {
        return new Result(name, relativeError(actual, expected), bound);
    }
}
