package dev.isthmus.cuda;

import jcuda.runtime.JCuda;
import jcuda.runtime.cudaStream_t;

/**
 * A CUDA stream: created here (and destroyed on close) or borrowed from the caller, for example
 * an engine's own JCuda stream, in which case close does nothing. Under {@link HostEmulation} it
 * is the null stream, with nothing to wait for: emulated launches finish before they return.
 */
public final class CudaStream implements AutoCloseable {
    private final int ordinal;
    private final cudaStream_t stream;
    private final boolean owned;
    private boolean closed;

    private CudaStream(int ordinal, cudaStream_t stream, boolean owned) {
        this.ordinal = ordinal;
        this.stream = stream;
        this.owned = owned;
    }

    /** A new non-blocking stream on device {@code ordinal}. */
    public static CudaStream create(int ordinal) {
        Cuda.setDevice(ordinal);
        if (HostEmulation.enabled()) return new CudaStream(ordinal, null, false);
        cudaStream_t s = new cudaStream_t();
        Cuda.check(JCuda.cudaStreamCreateWithFlags(s, jcuda.runtime.JCuda.cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        return new CudaStream(ordinal, s, true);
    }

    /** Borrows a JCuda stream of device {@code ordinal}; never destroyed here. */
    public static CudaStream wrap(int ordinal, cudaStream_t stream) {
        return new CudaStream(ordinal, stream, false);
    }

    public int ordinal() {
        return ordinal;
    }

    /** The raw cudaStream_t, as passed to libisthmus launchers. */
    public long handle() {
        requireOpen();
        return stream == null ? 0 : JCudaInterop.handle(stream);
    }

    /** The JCuda object, for JCuda or JCublas calls on the same stream. */
    public cudaStream_t jcuda() {
        requireOpen();
        if (stream == null) throw new UnsupportedOperationException("host emulation has no JCuda stream");
        return stream;
    }

    public void synchronize() {
        requireOpen();
        if (stream == null) return;
        Cuda.check(JCuda.cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    }

    private void requireOpen() {
        if (closed) throw new IllegalArgumentException("stream is closed");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (owned) Cuda.check(JCuda.cudaStreamDestroy(stream), "cudaStreamDestroy");
    }
}
