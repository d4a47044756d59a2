package dev.isthmus.tensor;

import java.util.Arrays;
import java.util.Set;

/**
 * Argument checks shared by every operation, run in Java before any native call. Each throws an
 * {@link IllegalArgumentException} that names the argument and says what was expected.
 */
public final class Checks {
    private Checks() {}

    /** {@code value} is not null: an IllegalArgumentException naming it, never a NullPointerException later. */
    public static <T> T notNull(String name, T value) {
        if (value == null) throw new IllegalArgumentException(name + " is null");
        return value;
    }

    /**
     * {@code a} and {@code b} share no byte: an operation whose later outputs read earlier inputs
     * must not write over them, not even through a view shifted by a few elements. Empty tensors
     * overlap nothing (a zero-size device tensor has address 0, as many may).
     */
    public static void disjoint(String name, Tensor a, String otherName, Tensor b) {
        if (a.elementCount() == 0 || b.elementCount() == 0 || !a.device().equals(b.device())) return;
        long aStart = a.address(), bStart = b.address();
        if (aStart < bStart + span(b) && bStart < aStart + span(a))
            throw new IllegalArgumentException(name + " overlaps " + otherName + "; it must not share memory with it");
    }

    /** Bytes from a tensor's first element to the end of its last, whatever its strides. */
    private static long span(Tensor t) {
        long[] shape = t.shape(), strides = t.strides();
        long last = 0;
        for (int d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
        return (last + 1) * t.dtype().byteSize();
    }

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
