package dev.isthmus.cuda;

import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Storage;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The host emulation mode: libisthmus built as host C++ (make emulation) runs the unchanged
 * kernels on the CPU, and the CUDA backend's runtime services come from here instead of JCuda,
 * which needs a driver. It is not a GPU: it checks kernel logic, never speed, and never counts as
 * verification on a device.
 *
 * <p>On with {@code -D}{@value #PROPERTY}{@code =true} together with {@code -D}{@value
 * NativeLibrary#PATH_PROPERTY} naming the emulated library; each without the other leaves CUDA
 * unavailable with the reason. "Device" memory is then host memory from the emulated library, labelled as on
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

    /**
     * "Device" memory from the emulated library, which puts an inaccessible guard page against one
     * end of it, so that a kernel reading or writing past the allocation fails its launch instead of
     * reading neighbouring memory; freed when the storage closes.
     */
    static Storage allocate(int ordinal, long byteSize) {
        long address;
        try {
            address = ((MemorySegment) Memory.MALLOC.invokeExact(byteSize)).address();
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_emulation_malloc downcall failed", t);
        }
        if (address == 0) throw new CudaException("host emulation: no address space left for " + byteSize + " bytes", "cudaErrorMemoryAllocation");
        return Storage.device(Device.cuda(ordinal), address, byteSize, () -> free(address));
    }

    private static void free(long address) {
        int status;
        try {
            status = (int) Memory.FREE.invokeExact(MemorySegment.ofAddress(address));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_emulation_free downcall failed", t);
        }
        if (status != 0) throw new CudaException("host emulation: " + address + " is not an allocation", "cudaErrorInvalidValue");
    }

    /** The emulated library's allocator (native/emulation/memory.cpp), bound on first use. */
    private static final class Memory {
        static final MethodHandle MALLOC = NativeLibrary.downcall("isthmus_emulation_malloc",
                FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_LONG));
        static final MethodHandle FREE = NativeLibrary.downcall("isthmus_emulation_free",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
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
