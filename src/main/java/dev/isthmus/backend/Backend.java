package dev.isthmus.backend;

import dev.isthmus.cuda.Cuda;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Tensor;

/**
 * Where operations run: the CPU (the plain-Java references) or one CUDA device (the kernels of
 * libisthmus.so, launched on this backend's stream). Every operation takes the backend first
 * and requires its tensors on {@link #device()}.
 */
public sealed interface Backend extends AutoCloseable permits CpuBackend, CudaBackend {

    /** The CPU backend; there is one, and closing it does nothing. */
    static CpuBackend cpu() {
        return CpuBackend.INSTANCE;
    }

    /**
     * A CUDA backend on device {@code ordinal} with a stream of its own (close it when done).
     * Throws a {@link dev.isthmus.cuda.CudaException} carrying the CUDA text when there is no
     * usable device, and an IllegalArgumentException for an ordinal out of range.
     */
    static CudaBackend cuda(int ordinal) {
        return CudaBackend.open(ordinal);
    }

    /** CUDA device 0 when CUDA is usable here, else the CPU. */
    static Backend best() {
        return Cuda.availability().available() ? cuda(0) : cpu();
    }

    Device device();

    /** One line: the backend and its device, e.g. "cpu (8 threads)" or "cuda:0 NVIDIA H100 ...". */
    String describe();

    /** An uninitialized (CPU: zeroed) contiguous tensor on this backend's device. */
    Tensor allocate(DType dtype, long... shape);

    /**
     * Copies {@code src} into {@code dst}: same dtype and shape, both contiguous, either on the
     * host or on this backend's device. Returns when {@code dst} may be read from the host.
     */
    void copy(Tensor dst, Tensor src);

    /** A new tensor on this backend's device holding a copy of {@code src}. */
    default Tensor copyOf(Tensor src) {
        Checks.notNull("src", src);
        Tensor dst = allocate(src.dtype(), src.shape());
        try {
            copy(dst, src.isContiguous() ? src : contiguousHostCopy(src));
        } catch (RuntimeException e) {
            dst.close();
            throw e;
        }
        return dst;
    }

    /** A new host tensor holding a copy of {@code src} (after all queued work on it finished). */
    default Tensor toHost(Tensor src) {
        Checks.notNull("src", src);
        Tensor dst = Tensor.allocateHost(src.dtype(), src.shape());
        try {
            copy(dst, src);
        } catch (RuntimeException e) {
            dst.close();
            throw e;
        }
        return dst;
    }

    /**
     * Fills {@code t} with all-ones bytes, which is NaN in f32, f16 and bf16 (and -1 in the
     * integer types): tests poison outputs this way so an element a kernel forgot to write fails.
     */
    void poison(Tensor t);

    /** Waits until all work queued on this backend has finished. */
    void synchronize();

    @Override
    void close();

    private static Tensor contiguousHostCopy(Tensor src) {
        if (!src.isHost()) throw new IllegalArgumentException("copy of a strided device tensor is not supported: " + src);
        return src.dtype().isFloatingPoint() ? Tensor.fromFloats(src.dtype(), src.toFloatArray(), src.shape())
                                             : Tensor.fromLongs(src.dtype(), src.toLongArray(), src.shape());
    }
}
