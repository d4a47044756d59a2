package dev.isthmus.cuda;

import jcuda.runtime.JCuda;
import jcuda.runtime.cudaEvent_t;

/**
 * A CUDA event for timing work on a stream: record two, synchronize, read the milliseconds between.
 * Under {@link HostEmulation} it records the host clock (the time of the emulation, not of a GPU).
 */
public final class CudaEvent implements AutoCloseable {
    private final cudaEvent_t event;
    private long recordedNanos;
    private boolean closed;

    public CudaEvent(int ordinal) {
        Cuda.setDevice(ordinal);
        event = HostEmulation.enabled() ? null : new cudaEvent_t();
        if (event != null) Cuda.check(JCuda.cudaEventCreate(event), "cudaEventCreate");
    }

    public void record(CudaStream stream) {
        if (event == null) recordedNanos = System.nanoTime();
        else Cuda.check(JCuda.cudaEventRecord(event, stream.jcuda()), "cudaEventRecord");
    }

    public void synchronize() {
        if (event != null) Cuda.check(JCuda.cudaEventSynchronize(event), "cudaEventSynchronize");
    }

    /** Milliseconds from {@code start} to this event; both must have completed. */
    public float millisSince(CudaEvent start) {
        if (event == null) return (recordedNanos - start.recordedNanos) / 1e6f;
        float[] ms = {0};
        Cuda.check(JCuda.cudaEventElapsedTime(ms, start.event, event), "cudaEventElapsedTime");
        return ms[0];
    }

    public cudaEvent_t jcuda() {
        if (event == null) throw new UnsupportedOperationException("host emulation has no JCuda event");
        return event;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        if (event != null) Cuda.check(JCuda.cudaEventDestroy(event), "cudaEventDestroy");
    }
}
