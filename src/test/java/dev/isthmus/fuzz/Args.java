package dev.isthmus.fuzz;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Storage;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * The arguments of one fuzzed call. Each argument a case asks for takes the next slot; the slot
 * numbered {@code victim} gets the {@link Mutation}, all others are valid. Whether the mutation
 * made the call one that must be refused is recorded in {@link #mustRefuse}; a victim beyond the
 * case's slots leaves a valid call, which must succeed.
 */
final class Args implements AutoCloseable {
    final Backend backend;
    final Random random;
    private final int victim;
    private final Mutation mutation;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private int slot;
    boolean mustRefuse;
    String corrupted = "nothing";

    Args(Backend backend, long seed, int victim, Mutation mutation) {
        this.backend = backend;
        this.random = new Random(seed);
        this.victim = victim;
        this.mutation = mutation;
    }

    /** A size in [min, max]; 0 only where the case allows it (empty tensors are legal there). */
    int dim(int min, int max) {
        return min + random.nextInt(max - min + 1);
    }

    DType floatType() {
        return new DType[] {DType.F32, DType.F16, DType.BF16}[random.nextInt(3)];
    }

    /** A required tensor of random values (integers: zeros) on the backend. */
    Tensor tensor(String name, DType dtype, long... shape) {
        return tensor(name, false, false, dtype, shape);
    }

    /** An argument of any dtype and shape (poison's): only null, closed and non-contiguous must be refused. */
    Tensor anyTensor(String name, DType dtype, long... shape) {
        return tensor(name, false, true, dtype, shape);
    }

    /** As {@link #tensor}, for a copy's end: a host tensor is legal there, and on the CPU a strided view is. */
    Tensor tensorOrHost(String name, DType dtype, long... shape) {
        return tensor(name, true, false, dtype, shape);
    }

    /** As {@link #tensorOrHost}, of any dtype and shape (the one tensor of toHost and copyOf). */
    Tensor anyTensorOrHost(String name, DType dtype, long... shape) {
        return tensor(name, true, true, dtype, shape);
    }

    /** An optional tensor: present or null at random; a null from the mutation is legal here. */
    Tensor optional(String name, DType dtype, long... shape) {
        boolean present = random.nextBoolean();
        if (slot == victim && mutation == Mutation.NULL) {
            slot++;
            return null;
        }
        if (!present) {
            slot++;
            return null;
        }
        return tensor(name, dtype, shape);
    }

    /** An i32 tensor holding {@code values}. */
    Tensor ints(String name, long[] values, long... shape) {
        Tensor t = tensor(name, DType.I32, shape);
        if (t != null && !t.isClosed() && t.dtype() == DType.I32 && Arrays.equals(t.shape(), shape) && t.isContiguous()) fill(t, values);
        return t;
    }

    /** {@code valid}, or {@code bad} when this slot is the victim. */
    <T> T value(String name, T valid, T bad) {
        if (slot++ != victim) return valid;
        return corrupt(name, bad);
    }

    /** A batch, workspace or config: the mutation may make it null or close it; both must be refused. */
    <T> T object(String name, T value) {
        if (slot++ != victim) return value;
        return switch (mutation) {
            case NULL -> corrupt(name, null);
            case CLOSED -> {
                if (value instanceof AutoCloseable c) closeQuietly(c);
                else yield value;
                yield corrupt(name, value);
            }
            default -> value;
        };
    }

    /** Keeps {@code resource} until the call is over. */
    <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    private Tensor tensor(String name, boolean hostOk, boolean anyShape, DType dtype, long... shape) {
        if (slot++ != victim) return random(dtype, shape);
        switch (mutation) {
            case NULL -> {
                return corrupt(name, null);
            }
            case CLOSED -> {
                Tensor t = random(dtype, shape);
                t.close();
                return corrupt(name, t);
            }
            case I8 -> {
                Tensor t = own(backend.allocate(DType.I8, shape));
                return anyShape ? t : corrupt(name, t);
            }
            case EXTRA_DIM -> {
                long[] longer = Arrays.copyOf(shape, shape.length + 1);
                longer[shape.length] = 3;
                Tensor t = random(dtype, longer);
                return anyShape ? t : corrupt(name, t);
            }
            case STRIDED -> {
                Tensor view = strided(dtype, shape);
                return view.isContiguous() || (hostOk && backend.device().isHost()) ? view : corrupt(name, view);
            }
            case HOST -> {
                Tensor t = own(Tensor.allocateHost(dtype, shape));
                return backend.device().isHost() || hostOk ? t : corrupt(name, t);
            }
            case HUGE -> {
                mustRefuse = true;
                corrupted = name + " (HUGE)";
                Storage small = own(backend.allocate(DType.I8, 64)).storage();
                return Tensor.of(small, dtype, 1L << 40, 1L << 30); // throws: the refusal is Tensor.of's
            }
            default -> {
                return random(dtype, shape);
            }
        }
    }

    private <T> T corrupt(String name, T value) {
        mustRefuse = true;
        corrupted = name + " (" + mutation + ")";
        return value;
    }

    /** A view of the right shape over a tensor twice as wide in its last dimension. */
    private Tensor strided(DType dtype, long[] shape) {
        if (shape.length == 0) return random(dtype, shape);
        long[] wide = shape.clone();
        wide[shape.length - 1] = Math.max(1, 2 * shape[shape.length - 1]);
        return random(dtype, wide).slice(-1, 0, shape[shape.length - 1]);
    }

    private Tensor random(DType dtype, long... shape) {
        Tensor t = own(backend.allocate(dtype, shape));
        if (t.elementCount() == 0) return t;
        try (Tensor host = Tensor.allocateHost(dtype, shape)) {
            if (dtype.isFloatingPoint()) {
                float[] v = new float[(int) host.elementCount()];
                for (int i = 0; i < v.length; i++) v[i] = (float) random.nextGaussian();
                host.copyFrom(v);
            }
            backend.copy(t, host);
        }
        return t;
    }

    private void fill(Tensor t, long[] values) {
        try (Tensor host = Tensor.fromLongs(DType.I32, values, t.shape())) {
            backend.copy(t, host);
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception e) {
            throw new IllegalStateException("closing a fuzz argument failed", e);
        }
    }

    @Override
    public void close() {
        for (AutoCloseable c : owned.reversed()) {
            try {
                c.close();
            } catch (Exception ignored) {
                // A tensor the call was given closed already, or a view: nothing to free twice.
            }
        }
    }
}
