package dev.isthmus.cuda;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Storage;
import dev.isthmus.tensor.Tensor;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.runtime.cudaEvent_t;
import jcuda.runtime.cudaStream_t;

/**
 * Both directions between JCuda handles and Isthmus objects, without copying.
 *
 * <p>JCuda keeps a handle's raw value in a private field with no public accessor, so reading or
 * setting it needs reflection; this class is the one place that does it. A device pointer at an
 * arbitrary address is made the public way: a null CUdeviceptr plus a byte offset, which JCuda
 * adds when it passes the pointer to CUDA.
 */
public final class JCudaInterop {
    private JCudaInterop() {}

    private static final VarHandle NATIVE_POINTER;
    private static final VarHandle BYTE_OFFSET;

    static {
        try {
            NATIVE_POINTER = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup())
                    .findVarHandle(NativePointerObject.class, "nativePointer", long.class);
            BYTE_OFFSET = MethodHandles.privateLookupIn(Pointer.class, MethodHandles.lookup())
                    .findVarHandle(Pointer.class, "byteOffset", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError("this JCuda version hides its handles differently: " + e);
        }
    }

    /** The raw address a JCuda device pointer stands for (its native pointer plus byte offset). */
    public static long address(Pointer pointer) {
        return (long) NATIVE_POINTER.get(pointer) + (long) BYTE_OFFSET.get(pointer);
    }

    /** A JCuda device pointer to {@code address}. */
    public static CUdeviceptr pointer(long address) {
        return new CUdeviceptr().withByteOffset(address);
    }

    /** A JCuda device pointer to a device tensor's first element, for JCuda or JCublas calls. */
    public static CUdeviceptr pointer(Tensor tensor) {
        if (tensor.isHost()) throw new IllegalArgumentException("tensor is on the host, not on a CUDA device: " + tensor);
        return pointer(tensor.address());
    }

    /**
     * Borrows JCuda-allocated device memory as a contiguous tensor on device {@code ordinal}.
     * The tensor never frees it: the caller keeps ownership and must keep it alive.
     */
    public static Tensor wrap(Pointer devicePointer, int ordinal, DType dtype, long... shape) {
        long address = address(devicePointer);
        long bytes = dtype.byteSize();
        for (long s : shape) bytes = Math.multiplyExact(bytes, Math.max(s, 0));
        return Tensor.of(Storage.device(Device.cuda(ordinal), address, bytes, null), dtype, shape);
    }

    public static long handle(cudaStream_t stream) {
        return (long) NATIVE_POINTER.get(stream);
    }

    public static long handle(cudaEvent_t event) {
        return (long) NATIVE_POINTER.get(event);
    }

    /** A JCuda stream object for a raw cudaStream_t value. */
    public static cudaStream_t stream(long handle) {
        cudaStream_t s = new cudaStream_t();
        NATIVE_POINTER.set(s, handle);
        return s;
    }
}
