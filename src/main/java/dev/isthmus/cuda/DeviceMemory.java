package dev.isthmus.cuda;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.Storage;
import dev.isthmus.tensor.Tensor;
import jcuda.driver.CUdeviceptr;
import jcuda.runtime.JCuda;

/** Device memory allocated and freed through JCuda (host memory under {@link HostEmulation}), handed out as tensors that own it. */
public final class DeviceMemory {
    private DeviceMemory() {}

    /** Allocates {@code byteSize} bytes (uninitialized) on device {@code ordinal}, freed by the storage's close. */
    public static Storage allocate(int ordinal, long byteSize) {
        if (byteSize < 0) throw new IllegalArgumentException("negative allocation size " + byteSize);
        Cuda.setDevice(ordinal);
        if (byteSize == 0) return Storage.device(Device.cuda(ordinal), 0, 0, () -> {});
        if (HostEmulation.enabled()) {
            try {
                return HostEmulation.allocate(ordinal, byteSize);
            } catch (OutOfMemoryError e) {
                // What cudaMalloc reports for the same request on a device.
                throw new CudaException("cudaMalloc(" + byteSize + " bytes on cuda:" + ordinal + "): out of memory (host emulation)",
                        "cudaErrorMemoryAllocation");
            }
        }
        CUdeviceptr pointer = new CUdeviceptr();
        Cuda.check(JCuda.cudaMalloc(pointer, byteSize), "cudaMalloc(" + byteSize + " bytes on cuda:" + ordinal + ")");
        return Storage.device(Device.cuda(ordinal), JCudaInterop.address(pointer), byteSize,
                () -> Cuda.check(JCuda.cudaFree(pointer), "cudaFree"));
    }

    /** An uninitialized contiguous tensor on device {@code ordinal}. */
    public static Tensor allocate(int ordinal, DType dtype, long... shape) {
        return Tensor.of(allocate(ordinal, Tensor.byteSize(dtype, shape)), dtype, shape);
    }
}
