package dev.isthmus.tensor;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A block of bytes on one device, shared by a tensor and all of its views. It is released once,
 * by the tensor that owns it; {@code release} is null for memory the caller lent us (a wrapped
 * segment or device pointer), which is then never freed here.
 */
public final class Storage {
    private final Device device;
    private final long address;
    private final long byteSize;
    private final MemorySegment hostSegment;
    private final AutoCloseable release;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Storage(Device device, long address, long byteSize, MemorySegment hostSegment, AutoCloseable release) {
        this.device = device;
        this.address = address;
        this.byteSize = byteSize;
        this.hostSegment = hostSegment;
        this.release = release;
    }

    /** Zero-filled host memory, 64-byte aligned, freed when the storage is closed. */
    public static Storage allocateHost(long byteSize) {
        if (byteSize < 0) throw new IllegalArgumentException("negative allocation size " + byteSize);
        Arena arena = Arena.ofShared();
        MemorySegment segment;
        try {
            segment = arena.allocate(Math.max(byteSize, 1), 64).asSlice(0, byteSize);
        } catch (OutOfMemoryError e) {
            // The JDK reports a malloc that failed as an Error; a size nobody has is an argument problem.
            arena.close();
            throw new IllegalArgumentException("cannot allocate " + byteSize + " bytes of host memory");
        }
        return new Storage(Device.HOST, segment.address(), byteSize, segment, arena);
    }

    /** Borrows native host memory (malloc'ed, memory-mapped, another arena's): never freed here. */
    public static Storage wrapHost(MemorySegment segment) {
        Checks.notNull("segment", segment);
        if (!segment.isNative()) throw new IllegalArgumentException("host storage must be a native memory segment, not a Java heap array");
        return new Storage(Device.HOST, segment.address(), segment.byteSize(), segment, null);
    }

    /**
     * Device memory at {@code address}. With a {@code release} the storage owns it and calls
     * release once on close; with null it is borrowed.
     */
    public static Storage device(Device device, long address, long byteSize, AutoCloseable release) {
        Checks.notNull("device", device);
        if (byteSize < 0) throw new IllegalArgumentException("negative storage size " + byteSize);
        if (device.isHost()) throw new IllegalArgumentException("Storage.device needs a CUDA device, got " + device);
        if (address == 0 && byteSize > 0) throw new IllegalArgumentException("device address is null");
        return new Storage(device, address, byteSize, null, release);
    }

    public Device device() {
        return device;
    }

    public long address() {
        return address;
    }

    public long byteSize() {
        return byteSize;
    }

    /** True when this storage frees its memory on close (false for borrowed memory). */
    public boolean ownsMemory() {
        return release != null;
    }

    /** The host bytes; only for host storage. */
    public MemorySegment hostSegment() {
        if (hostSegment == null) throw new IllegalArgumentException("storage is on " + device + ", not on the host");
        return hostSegment;
    }

    public boolean isClosed() {
        return closed.get();
    }

    /** Frees the memory (if owned). Idempotent. */
    void close() {
        if (!closed.compareAndSet(false, true) || release == null) return;
        try {
            release.close();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException("releasing " + device + " memory failed: " + e.getMessage(), e);
        }
    }
}
