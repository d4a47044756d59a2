package dev.isthmus.cuda;

import jcuda.runtime.JCuda;
import jcuda.runtime.cudaEvent_t;

/** A CUDA event for timing work on a stream: record two, synchronize, read the milliseconds between. */
public final class CudaEvent implements AutoCloseable {
    private final cudaEvent_t event = new cudaEvent_t();
    private boolean closed;

    public CudaEvent(int ordinal) {
        Cuda.setDevice(ordinal);
        Cuda.check(JCuda.cudaEventCreate(event), "cudaEventCreate");
    }

    public void record(CudaStream stream) {
        Cuda.check(JCuda.cudaEventRecord(event, stream.jcuda()), "cudaEventRecord");
    }

    public void synchronize() {
        Cuda.check(JCuda.cudaEventSynchronize(event), "cudaEventSynchronize");
    }

    /** Milliseconds from {@code start} to this event; both must have completed. */
    public float millisSince(CudaEvent start) {
        float[] ms = {0};
        Cuda.check(JCuda.cudaEventElapsedTime(ms, start.event, event), "cudaEventElapsedTime");
        return ms[0];
    }

    public cudaEvent_t jcuda() {
        return event;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Cuda.check(JCuda.cudaEventDestroy(event), "cudaEventDestroy");
    }
}
