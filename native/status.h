// Host-side helpers shared by the launchers: the thread-local error message and the macros that
// turn a failed check or a CUDA error into an isthmus_status. Not part of the ABI.
#pragma once

#include <cuda_runtime.h>

#include "isthmus.h"

namespace isthmus {

// Formats the thread-local message and returns `status`, so a launcher can `return fail(...)`.
int fail(int status, const char *format, ...) __attribute__((format(printf, 2, 3)));

// Clears the message at the start of a call, so isthmus_last_error() speaks of the latest failure.
void clear_error();

// Bytes per element of an isthmus_dtype, 0 for an unknown code.
int dtype_size(int32_t dtype);
const char *dtype_name(int32_t dtype);

}  // namespace isthmus

// Launches `kernel` (the last argument: variadic so that template arguments with commas pass):
//   ISTHMUS_LAUNCH(grid, block, shared_bytes, stream, kernel<T, N>)(arguments...);
// With nvcc it is the <<<...>>> launch; the host emulation build runs the grid on the CPU.
#ifdef ISTHMUS_EMULATION
#define ISTHMUS_LAUNCH(grid, block, shared_bytes, stream, ...) \
    ::isthmus_emulation::launch(#__VA_ARGS__, grid, block, shared_bytes, stream, __VA_ARGS__)
#else
#define ISTHMUS_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#endif

#define ISTHMUS_REQUIRE(cond, ...)                                                  \
    do {                                                                            \
        if (!(cond)) return ::isthmus::fail(ISTHMUS_ERROR_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

// After a launch: a bad configuration surfaces here, before the kernel runs.
#define ISTHMUS_CHECK_LAUNCH(what)                                                               \
    do {                                                                                         \
        cudaError_t err_ = cudaGetLastError();                                                   \
        if (err_ != cudaSuccess)                                                                 \
            return ::isthmus::fail(ISTHMUS_ERROR_CUDA, "%s: %s: %s", what, cudaGetErrorName(err_), \
                                   cudaGetErrorString(err_));                                    \
    } while (0)
