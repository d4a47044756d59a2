// Library-wide entry points of isthmus.h: versions, the thread-local error, device queries.
#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "status.h"

#ifndef ISTHMUS_VERSION_STRING
#define ISTHMUS_VERSION_STRING "0.0.0"
#endif
#ifndef ISTHMUS_ARCHITECTURES
#define ISTHMUS_ARCHITECTURES "unknown"
#endif

namespace isthmus {

static thread_local char last_error[1024];

int fail(int status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_error, sizeof last_error, format, args);
    va_end(args);
    return status;
}

void clear_error() { last_error[0] = '\0'; }

int dtype_size(int32_t dtype) {
    switch (dtype) {
        case ISTHMUS_F32: return 4;
        case ISTHMUS_F16: return 2;
        case ISTHMUS_BF16: return 2;
        case ISTHMUS_I32: return 4;
        case ISTHMUS_I64: return 8;
        case ISTHMUS_I8: return 1;
        default: return 0;
    }
}

const char *dtype_name(int32_t dtype) {
    switch (dtype) {
        case ISTHMUS_F32: return "f32";
        case ISTHMUS_F16: return "f16";
        case ISTHMUS_BF16: return "bf16";
        case ISTHMUS_I32: return "i32";
        case ISTHMUS_I64: return "i64";
        case ISTHMUS_I8: return "i8";
        default: return "unknown dtype";
    }
}

}  // namespace isthmus

using namespace isthmus;

extern "C" {

int isthmus_abi_version(void) { return ISTHMUS_ABI_VERSION; }

const char *isthmus_version(void) { return ISTHMUS_VERSION_STRING; }

const char *isthmus_cuda_architectures(void) { return ISTHMUS_ARCHITECTURES; }

int isthmus_runtime_version(void) { return CUDART_VERSION; }

int isthmus_driver_version(void) {
    int version = 0;
    if (cudaDriverGetVersion(&version) != cudaSuccess) return 0;
    return version;
}

const char *isthmus_last_error(void) { return last_error; }

int isthmus_device_count(int *count) {
    clear_error();
    ISTHMUS_REQUIRE(count != nullptr, "isthmus_device_count: count is NULL");
    *count = 0;
    cudaError_t err = cudaGetDeviceCount(count);
    if (err != cudaSuccess) {
        *count = 0;
        cudaGetLastError();  // the error is reported here; do not leave it sticky for the next launch
        return fail(ISTHMUS_ERROR_CUDA, "cudaGetDeviceCount: %s: %s", cudaGetErrorName(err),
                    cudaGetErrorString(err));
    }
    return ISTHMUS_OK;
}

int isthmus_get_device_properties(isthmus_device_properties *out, int device) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr, "isthmus_get_device_properties: out is NULL");
    cudaDeviceProp prop;
    cudaError_t err = cudaGetDeviceProperties(&prop, device);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return fail(ISTHMUS_ERROR_CUDA, "cudaGetDeviceProperties(%d): %s: %s", device,
                    cudaGetErrorName(err), cudaGetErrorString(err));
    }
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->compute_major = prop.major;
    out->compute_minor = prop.minor;
    out->multiprocessor_count = prop.multiProcessorCount;
    out->max_threads_per_block = prop.maxThreadsPerBlock;
    out->total_global_memory = static_cast<int64_t>(prop.totalGlobalMem);
    out->shared_memory_per_block_optin = static_cast<int64_t>(prop.sharedMemPerBlockOptin);
    out->l2_cache_size = prop.l2CacheSize;
    out->warp_size = prop.warpSize;
    out->memory_bus_width = prop.memoryBusWidth;
    return ISTHMUS_OK;
}

int isthmus_set_device(int device) {
    clear_error();
    cudaError_t err = cudaSetDevice(device);
    if (err != cudaSuccess) {
        cudaGetLastError();
        return fail(ISTHMUS_ERROR_CUDA, "cudaSetDevice(%d): %s: %s", device, cudaGetErrorName(err),
                    cudaGetErrorString(err));
    }
    return ISTHMUS_OK;
}

}  // extern "C"
