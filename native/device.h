// Host-side reads of the current device's attributes, made once per device: a driver round trip
// is too dear for every launch (the host emulation counts them, and a test holds the launchers to
// one per device). Not part of the ABI.
#pragma once

#include <cuda_runtime.h>

#include <mutex>

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

}  // namespace isthmus
