package dev.isthmus.backend;

import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.CudaGraph;
import dev.isthmus.cuda.CudaException;
import dev.isthmus.cuda.CudaStream;
import dev.isthmus.cuda.DeviceMemory;
import dev.isthmus.cuda.DeviceProperties;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jcuda.Pointer;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaMemcpyKind;
import jcuda.runtime.cudaStream_t;

/**
 * One CUDA device and one stream: kernels are launched on that stream and never synchronize;
 * {@link #synchronize()}, {@link #toHost} and copies to the host wait for them. Resources tied
 * to the backend (its own stream, library handles such as cuBLAS) are released on close.
 */
public final class CudaBackend implements Backend {
    private final int ordinal;
    private final DeviceProperties properties;
    private final CudaStream stream;
    private final List<AutoCloseable> resources = new ArrayList<>();
    private boolean closed;

    private CudaBackend(int ordinal, CudaStream stream) {
        this.ordinal = ordinal;
        this.stream = stream;
        this.properties = NativeLibrary.deviceProperties(ordinal);
    }

    static CudaBackend open(int ordinal) {
        requireUsable(ordinal);
        CudaStream stream = CudaStream.create(ordinal);
        try {
            return new CudaBackend(ordinal, stream);
        } catch (RuntimeException e) {
            stream.close();
            throw e;
        }
    }

    /** Runs on an existing JCuda stream of device {@code ordinal} (an engine's own); the stream stays the caller's. */
    public static CudaBackend wrap(int ordinal, cudaStream_t stream) {
        requireUsable(ordinal);
        return new CudaBackend(ordinal, CudaStream.wrap(ordinal, stream));
    }

    private static void requireUsable(int ordinal) {
        Cuda.Availability a = Cuda.availability();
        if (!a.available()) throw new CudaException("CUDA backend unavailable: " + a.reason(), "isthmusNoDevice");
        if (ordinal < 0 || ordinal >= a.deviceCount())
            throw new IllegalArgumentException("CUDA device " + ordinal + " does not exist (" + a.deviceCount() + " visible)");
    }

    public int ordinal() {
        return ordinal;
    }

    public DeviceProperties properties() {
        return properties;
    }

    /** The stream kernels are launched on. */
    public CudaStream stream() {
        requireOpen();
        return stream;
    }

    /**
     * Makes this backend's device current on the calling thread (for JCuda and libisthmus) and
     * returns the raw stream handle to launch on. Every operation calls it first.
     */
    public long prepareLaunch() {
        requireOpen();
        Cuda.setDevice(ordinal);
        return stream.handle();
    }

    /** Keeps {@code resource} until the backend closes (a library handle bound to this stream). */
    public void closeWithBackend(AutoCloseable resource) {
        requireOpen();
        resources.add(resource);
    }

    @Override
    public Device device() {
        return Device.cuda(ordinal);
    }

    @Override
    public String describe() {
        return properties.toString();
    }

    @Override
    public Tensor allocate(DType dtype, long... shape) {
        requireOpen();
        return DeviceMemory.allocate(ordinal, dtype, shape);
    }

    @Override
    public void copy(Tensor dst, Tensor src) {
        requireOpen();
        checkCopyEnd("dst", dst);
        checkCopyEnd("src", src);
        if (dst.dtype() != src.dtype() || !Arrays.equals(dst.shape(), src.shape()))
            throw new IllegalArgumentException("copy: dst " + dst + " and src " + src + " differ in dtype or shape");
        long bytes = src.byteSize();
        if (bytes == 0) return;
        if (CudaGraph.capturing() && (dst.isHost() || src.isHost() || HostEmulation.enabled()))
            throw new IllegalStateException("copy " + src + " -> " + dst + " inside a CUDA graph capture: a copy with the host waits for "
                    + "the stream, and the host emulation records only launches; copy before the capture or before each launch");
        if (HostEmulation.enabled()) {
            HostEmulation.copy(dst, src);
            return;
        }
        Pointer to = pointerTo(dst), from = pointerTo(src);
        int kind = dst.isHost() ? (src.isHost() ? cudaMemcpyKind.cudaMemcpyHostToHost : cudaMemcpyKind.cudaMemcpyDeviceToHost)
                                : (src.isHost() ? cudaMemcpyKind.cudaMemcpyHostToDevice : cudaMemcpyKind.cudaMemcpyDeviceToDevice);
        prepareLaunch();
        Cuda.check(JCuda.cudaMemcpyAsync(to, from, bytes, kind, stream.jcuda()), "cudaMemcpyAsync");
        // Host memory here is pageable: wait, so the host side may be read or reused at once.
        if (dst.isHost() || src.isHost()) stream.synchronize();
    }

    private void checkCopyEnd(String name, Tensor t) {
        if (t == null || t.isClosed() || !(t.isHost() || t.device().equals(device())))
            throw new IllegalArgumentException("copy: " + name + " must be an open tensor on the host or on " + device() + ", got " + t);
        Checks.contiguous(name, t);
    }

    private static Pointer pointerTo(Tensor t) {
        return t.isHost() ? Pointer.to(t.segment().asByteBuffer()) : JCudaInterop.pointer(t);
    }

    @Override
    public void poison(Tensor t) {
        Checks.usable("tensor", t, device());
        Checks.contiguous("tensor", t);
        prepareLaunch();
        if (HostEmulation.enabled()) {
            HostEmulation.fill(t, (byte) 0xff);
            return;
        }
        Cuda.check(JCuda.cudaMemsetAsync(JCudaInterop.pointer(t), 0xff, t.byteSize(), stream.jcuda()), "cudaMemsetAsync");
    }

    @Override
    public void synchronize() {
        if (CudaGraph.capturing()) throw new IllegalStateException("synchronize inside a CUDA graph capture");
        stream().synchronize();
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        RuntimeException failure = null;
        for (AutoCloseable r : resources.reversed()) {
            try {
                r.close();
            } catch (Exception e) {
                if (failure == null) failure = new CudaException("closing a backend resource failed: " + e.getMessage(), "isthmusClose", e);
            }
        }
        try {
            stream.synchronize();
        } finally {
            stream.close();
        }
        if (failure != null) throw failure;
    }

    private void requireOpen() {
        if (closed) throw new IllegalArgumentException("CUDA backend on " + device() + " is closed");
    }

    @Override
    public String toString() {
        return "CudaBackend[" + describe() + "]";
    }
}
