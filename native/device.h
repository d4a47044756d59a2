// Host-side reads of the current device's attributes, made once per device: a driver round trip
// is too dear for every launch (the host emulation counts them, and a test holds the launchers to
// one per device). Not part of the ABI.
#pragma once

#include <cuda_runtime.h>

#include <mutex>

#include "status.h"

namespace isthmus {

constexpr int kMaxDevices = 64;

// The current device, or -1 when it cannot be read or is past kMaxDevices.
inline int current_device() {
    int device = 0;
    return cudaGetDevice(&device) == cudaSuccess && device >= 0 && device < kMaxDevices ? device : -1;
}

// Attribute A of `device` (0 <= device < kMaxDevices), read by the first call for that device;
// 0 when it cannot be read.
template <cudaDeviceAttr A> int device_attribute(int device) {
    static std::once_flag once[kMaxDevices];
    static int value[kMaxDevices];
    std::call_once(once[device], [device] {
        if (cudaDeviceGetAttribute(&value[device], A, device) != cudaSuccess) value[device] = 0;
    });
    return value[device];
}

// Opts Kernel in to `bytes` of dynamic shared memory on `device` (0 <= device < kMaxDevices) when
// that is above the default 48 KiB, once per device; a refusal is ISTHMUS_ERROR_CUDA naming `who`.
template <auto Kernel> int allow_shared_memory(size_t bytes, int device, const char *who) {
    if (bytes <= 48 * 1024) return ISTHMUS_OK;
    static std::once_flag once[kMaxDevices];
    static cudaError_t result[kMaxDevices];
    std::call_once(once[device], [bytes, device] {
        result[device] = cudaFuncSetAttribute(Kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes));
    });
    if (result[device] != cudaSuccess)
        return fail(ISTHMUS_ERROR_CUDA, "%s: %zu bytes of shared memory: %s", who, bytes, cudaGetErrorString(result[device]));
    return ISTHMUS_OK;
}

}  // namespace isthmus
