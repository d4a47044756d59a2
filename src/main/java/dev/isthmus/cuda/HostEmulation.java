package dev.isthmus.cuda;

import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Storage;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * The host emulation mode: libisthmus built as host C++ (make emulation) runs the unchanged
 * kernels on the CPU, and the CUDA backend's runtime services come from here instead of JCuda,
 * which needs a driver. It is not a GPU: it checks kernel logic, never speed, and never counts as
 * verification on a device.
 *
 * <p>On with {@code -D}{@value #PROPERTY}{@code =true} together with {@code -D}{@value
 * NativeLibrary#PATH_PROPERTY} naming the emulated library; each without the other leaves CUDA
 * unavailable with the reason. "Device" memory is then host memory from an arena, labelled as on
 * cuda:0 so that host-only methods still refuse it; copies and memsets are plain memory moves;
 * launches complete before they return, so streams have nothing to wait for.
 */
public final class HostEmulation {
    public static final String PROPERTY = "isthmus.emulation";
    /** What the emulated library answers to isthmus_cuda_architectures(), and how CUDA describes itself in this mode. */
    public static final String DESCRIPTION = "host emulation";

    private HostEmulation() {}

    public static boolean enabled() {
        return Boolean.getBoolean(PROPERTY);
    }

    /** Whether the loaded libisthmus is the host emulation build. */
    static boolean libraryIsEmulated() {
        return NativeLibrary.isLoaded() && NativeLibrary.cudaArchitectures().equals(DESCRIPTION);
    }

    /** "Device" memory: 256-byte aligned host memory, as cudaMalloc aligns, freed when the storage closes. */
    static Storage allocate(int ordinal, long byteSize) {
        Arena arena = Arena.ofShared();
        MemorySegment memory = arena.allocate(Math.max(byteSize, 1), 256);
        return Storage.device(Device.cuda(ordinal), memory.address(), byteSize, arena);
    }

    /** Copies the bytes of contiguous {@code src} to {@code dst}, each on the host or emulated device. */
    public static void copy(Tensor dst, Tensor src) {
        MemorySegment.copy(bytes(src), 0, bytes(dst), 0, src.byteSize());
    }

    /** Sets every byte of a contiguous emulated device tensor to {@code value}. */
    public static void fill(Tensor t, byte value) {
        bytes(t).fill(value);
    }

    private static MemorySegment bytes(Tensor t) {
        return t.isHost() ? t.segment() : MemorySegment.ofAddress(t.address()).reinterpret(t.byteSize());
    }
}
