package dev.isthmus.tensor;

import java.util.Arrays;
import java.util.Set;

/**
 * Argument checks shared by every operation, run in Java before any native call. Each throws an
 * {@link IllegalArgumentException} that names the argument and says what was expected.
 */
public final class Checks {
    private Checks() {}

    /** Not null, not closed, on {@code device}. */
    public static void usable(String name, Tensor t, Device device) {
        if (t == null) throw new IllegalArgumentException(name + " is null");
        if (t.isClosed()) throw new IllegalArgumentException(name + " is closed");
        if (!t.device().equals(device))
            throw new IllegalArgumentException(name + " is on " + t.device() + " but the backend runs on " + device);
    }

    public static void contiguous(String name, Tensor t) {
        if (!t.isContiguous())
            throw new IllegalArgumentException(name + " must be contiguous, has shape " + Arrays.toString(t.shape())
                    + " and strides " + Arrays.toString(t.strides()));
    }

    public static void dtypeIn(String name, Tensor t, Set<DType> allowed) {
        if (!allowed.contains(t.dtype()))
            throw new IllegalArgumentException(name + " has dtype " + t.dtype().label() + ", expected one of " + labels(allowed));
    }

    public static void sameDtype(String name, Tensor t, String otherName, Tensor other) {
        if (t.dtype() != other.dtype())
            throw new IllegalArgumentException(name + " has dtype " + t.dtype().label() + " but " + otherName + " has "
                    + other.dtype().label() + "; they must match");
    }

    public static void shape(String name, Tensor t, long... expected) {
        if (!Arrays.equals(t.shape(), expected))
            throw new IllegalArgumentException(name + " has shape " + Arrays.toString(t.shape()) + ", expected " + Arrays.toString(expected));
    }

    public static void rankAtLeast(String name, Tensor t, int rank) {
        if (t.rank() < rank) throw new IllegalArgumentException(name + " must have rank >= " + rank + ", has shape " + Arrays.toString(t.shape()));
    }

    public static void rank(String name, Tensor t, int rank) {
        if (t.rank() != rank) throw new IllegalArgumentException(name + " must have rank " + rank + ", has shape " + Arrays.toString(t.shape()));
    }

    public static void finite(String name, float value) {
        if (!Float.isFinite(value)) throw new IllegalArgumentException(name + " must be finite, got " + value);
    }

    private static String labels(Set<DType> types) {
        return types.stream().sorted().map(DType::label).toList().toString();
    }
}
