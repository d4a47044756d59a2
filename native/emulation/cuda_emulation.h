// Host emulation of the CUDA execution model, so that the unchanged device code (cuda/*.cuh) and
// launchers (native/*.cu) compile with g++ as host C++17 and run on the CPU. It is NOT a GPU:
// it checks a kernel's logic (indexing, tails, masking, barriers, warp shuffles, carries), never
// its timing or its behaviour under real concurrency.
//
// The build force-includes this header (g++ -include) before every launcher with
// ISTHMUS_EMULATION defined. It defines the CUDA keywords first, so that the toolkit's headers
// (cuda_runtime.h for the types and runtime declarations, cuda_fp16.h / cuda_bf16.h, which have
// host implementations) keep them; then the built-in variables, the warp-synchronous and
// barrier intrinsics (votes, __match_any_sync and __reduce_max_sync too), atomics, math
// intrinsics, nvcuda::wmma and cuda/mma.cuh's mma, ldmatrix and cp.async (mma_emulation.h), and
// the launch that runs a grid. emulation.cpp holds the scheduler and the runtime API answering as one device.
//
// Execution: the blocks of a grid run one after another on the calling thread; the threads of a
// block are cooperative fibers that switch only at a barrier or a warp-synchronous operation, in
// the order the schedule gives (forward, reverse or a seeded shuffle, chosen by
// ISTHMUS_EMULATION_SCHEDULE), so a run is deterministic and a race shows under some order.
// __shared__ variables are thread_local statics: one copy per OS thread, shared by the fibers of
// the block running on it. Device memory (memory.cpp) lies against guard pages.
#pragma once

#ifndef ISTHMUS_EMULATION
#error "cuda_emulation.h is only for the host emulation build (-DISTHMUS_EMULATION)"
#endif

// Before the toolkit headers, which keep a keyword that is already defined.
#define __host__
#define __device__
#define __global__
#define __shared__ thread_local
#define __constant__ const
#define __launch_bounds__(...)

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>  // the unqualified isfinite, expf, ... that nvcc's host pass provides

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>

namespace isthmus_emulation {

// ---- the scheduler (emulation.cpp) ---------------------------------------------------------

// The calling fiber's CUDA coordinates; set by the scheduler before it resumes a fiber.
struct Coordinates {
    uint3 thread, block;
    dim3 block_dim, grid_dim;
};
extern thread_local Coordinates here;

// __syncthreads at `site` (file:line): waits until every live thread of the block arrives.
void block_barrier(const char *site);

// One warp-synchronous exchange: this lane contributes `value` (up to 8 bytes) under `mask`,
// waits for the other lanes of the mask that are still running, then reads lane `source`'s
// contribution (its own when `source` < 0). `what` names the intrinsic for error messages.
uint64_t warp_exchange(const char *what, unsigned mask, uint64_t value, int source);

// A warp-collective instruction (mma, ldmatrix; cuda/mma.cuh): each of the 32 lanes of the warp,
// all of which must take part, publishes COLLECTIVE_IN words; when the last arrives, `compute`
// turns the 32 lanes' inputs into their outputs, once for the warp, and each lane gets its own
// COLLECTIVE_OUT words. `what` names the instruction (one name per `compute`) for error messages.
constexpr int COLLECTIVE_IN = 10, COLLECTIVE_OUT = 4;
using Collective = void (*)(const uint32_t (*in)[COLLECTIVE_IN], uint32_t (*out)[COLLECTIVE_OUT]);
void warp_collective(const char *what, Collective compute, const uint32_t (&in)[COLLECTIVE_IN],
                     uint32_t (&out)[COLLECTIVE_OUT]);

// cp.async on the calling thread's queue: a copy of `bytes` (zero-fill when !valid) lands in dst
// only when async_wait retires its group; async_commit closes the open group; async_wait(n)
// performs every copy of the committed groups but the newest n (copies not yet committed stay).
void async_copy(void *dst, const void *src, int bytes, bool valid);
void async_commit();
void async_wait(int newest_pending);

// Fails the launch with `text` about the calling thread (a misuse the device leaves undefined).
[[noreturn]] void kernel_error(const std::string &text);

// The ballot of the lanes of `mask` (after they all arrived): bit i set when lane i's predicate holds.
unsigned warp_ballot(const char *what, unsigned mask, bool predicate);

// The lanes of `mask` whose `value` equals this lane's.
unsigned warp_match_any(unsigned mask, uint64_t value);

// Fills the first `bytes` of every extern __shared__ array with 0xff (dynamic_shared.cpp).
void poison_dynamic_shared(size_t bytes);

// Fills the static __shared__ variables `kernel` may use with 0xff (static_shared.cpp).
void poison_static_shared(const void *kernel);

// Runs `body` once per thread of every block; reports failures, with the kernel's name, through
// cudaGetLastError.
using Body = void (*)(const void *context);
void run_grid(const char *kernel_name, const void *kernel, dim3 grid, dim3 block, size_t shared_bytes, Body body,
              const void *context);

// The order in which the fibers of a block run between two barriers or warp operations.
enum class Order { Forward, Reverse, Shuffle };
void set_schedule(Order order, uint64_t seed);

// A memory fault on a fiber's stack (memory.cpp's handler): abandons the grid, which then fails
// with cudaErrorIllegalAddress naming the address. Does not return.
[[noreturn]] void kernel_fault(const void *address);

// ---- device memory and the fibers' stacks (memory.cpp) ------------------------------------------

// Which end of each device allocation lies against an inaccessible guard page (ISTHMUS_EMULATION_GUARD).
enum class Guard { After, Before };
void set_guard(Guard side);

// `bytes` of device memory (NULL when out of address space), and its release (false: not an allocation).
void *device_allocate(size_t bytes);
bool device_free(void *base);

// Where an address lies: "at offset 32 of an allocation of 32 bytes", "outside ...".
std::string describe_address(const void *address);

// A fiber's stack of `bytes` (whole pages) with a guard page below it, and its release.
char *take_stack(size_t bytes);
void give_back_stack(char *stack, size_t bytes);

// Whether this thread is capturing a graph (cudaStreamBeginCapture), and the capture's recorder:
// launches made meanwhile are recorded with their arguments and run when the graph launches.
bool capturing();
void record(std::function<void()> work);

// What ISTHMUS_LAUNCH(grid, block, shared, stream, kernel)(args...) expands to: the arguments
// are copied once, as a launch copies them, and every thread calls the kernel with them.
template <typename... Params> struct Launch {
    const char *name;
    void (*kernel)(Params...);
    dim3 grid, block;
    size_t shared_bytes;

    template <typename... Args> void operator()(Args &&...args) const {
        static_assert(sizeof...(Args) == sizeof...(Params), "wrong number of kernel arguments");
        struct Context {
            void (*kernel)(Params...);
            std::tuple<std::decay_t<Params>...> args;
        };
        auto context = std::make_shared<const Context>(Context{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)});
        auto run = [context, name = name, grid = grid, block = block, shared_bytes = shared_bytes] {
            run_grid(name, reinterpret_cast<const void *>(context->kernel), grid, block, shared_bytes,
                     [](const void *c) {
                         const Context &ctx = *static_cast<const Context *>(c);
                         std::apply(ctx.kernel, ctx.args);
                     },
                     context.get());
        };
        if (capturing()) record(run);
        else run();
    }
};

template <typename... Params>
Launch<Params...> launch(const char *name, dim3 grid, dim3 block, size_t shared_bytes, cudaStream_t, void (*kernel)(Params...)) {
    return Launch<Params...>{name, kernel, grid, block, shared_bytes};
}

}  // namespace isthmus_emulation

// The runtime's typed overloads, which cuda_runtime.h declares only for nvcc.
template <typename T> cudaError_t cudaFuncSetAttribute(T *kernel, cudaFuncAttribute attribute, int value) {
    return cudaFuncSetAttribute(reinterpret_cast<const void *>(kernel), attribute, value);
}
template <typename T>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, T *kernel, int block_size, size_t dynamic_shared) {
    return cudaOccupancyMaxActiveBlocksPerMultiprocessor(blocks, reinterpret_cast<const void *>(kernel), block_size, dynamic_shared);
}

namespace isthmus_emulation {

template <typename T> uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "warp exchanges move at most 8 bytes");
    uint64_t bits = 0;
    std::memcpy(&bits, &v, sizeof(T));
    return bits;
}

template <typename T> T from_bits(uint64_t bits) {
    T v;
    std::memcpy(&v, &bits, sizeof(T));
    return v;
}

inline int lane() { return static_cast<int>(here.thread.x + here.block_dim.x * (here.thread.y + here.block_dim.y * here.thread.z)) % 32; }

}  // namespace isthmus_emulation

// ---- built-in variables ----------------------------------------------------------------------

#define threadIdx (::isthmus_emulation::here.thread)
#define blockIdx (::isthmus_emulation::here.block)
#define blockDim (::isthmus_emulation::here.block_dim)
#define gridDim (::isthmus_emulation::here.grid_dim)
constexpr int warpSize = 32;

// ---- barriers and warp-synchronous operations ---------------------------------------------------

#define ISTHMUS_EMULATION_STR2(x) #x
#define ISTHMUS_EMULATION_STR(x) ISTHMUS_EMULATION_STR2(x)
#define __syncthreads() ::isthmus_emulation::block_barrier(__FILE__ ":" ISTHMUS_EMULATION_STR(__LINE__))

inline void __syncwarp(unsigned mask = 0xffffffffu) { ::isthmus_emulation::warp_exchange("__syncwarp", mask, 0, -1); }

template <typename T> T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
    const int lane = ::isthmus_emulation::lane();
    const int source = (lane & ~(width - 1)) + (src_lane & (width - 1));
    return ::isthmus_emulation::from_bits<T>(
            ::isthmus_emulation::warp_exchange("__shfl_sync", mask, ::isthmus_emulation::to_bits(var), source));
}

template <typename T> T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int lane = ::isthmus_emulation::lane();
    const int source = (lane & (width - 1)) >= static_cast<int>(delta) ? lane - static_cast<int>(delta) : -1;
    return ::isthmus_emulation::from_bits<T>(
            ::isthmus_emulation::warp_exchange("__shfl_up_sync", mask, ::isthmus_emulation::to_bits(var), source));
}

template <typename T> T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    const int lane = ::isthmus_emulation::lane();
    const int source = (lane & (width - 1)) + static_cast<int>(delta) < width ? lane + static_cast<int>(delta) : -1;
    return ::isthmus_emulation::from_bits<T>(
            ::isthmus_emulation::warp_exchange("__shfl_down_sync", mask, ::isthmus_emulation::to_bits(var), source));
}

template <typename T> T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
    const int lane = ::isthmus_emulation::lane();
    const int target = lane ^ lane_mask;
    // A lane may read an earlier group of `width` lanes, never a later one (it keeps its own value).
    const int source = target < (lane / width + 1) * width ? target : -1;
    return ::isthmus_emulation::from_bits<T>(
            ::isthmus_emulation::warp_exchange("__shfl_xor_sync", mask, ::isthmus_emulation::to_bits(var), source));
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
    return ::isthmus_emulation::warp_ballot("__ballot_sync", mask, predicate != 0);
}
inline int __any_sync(unsigned mask, int predicate) {
    return ::isthmus_emulation::warp_ballot("__any_sync", mask, predicate != 0) != 0;
}
inline int __all_sync(unsigned mask, int predicate) {
    return ::isthmus_emulation::warp_ballot("__all_sync", mask, predicate == 0) == 0;
}

template <typename T> unsigned __match_any_sync(unsigned mask, T value) {
    return ::isthmus_emulation::warp_match_any(mask, ::isthmus_emulation::to_bits(value));
}

// redux.sync.max.u32 over the whole warp (the only form the kernels use): every lane gets the largest value.
inline unsigned __reduce_max_sync(unsigned mask, unsigned value) {
    if (mask != 0xffffffffu) ::isthmus_emulation::kernel_error("__reduce_max_sync: only the full warp is emulated");
    for (int offset = 1; offset < 32; offset <<= 1) {
        const unsigned other = __shfl_xor_sync(mask, value, offset);
        value = other > value ? other : value;
    }
    return value;
}

inline void __threadfence() {}
inline void __threadfence_block() {}

// ---- atomics: fibers switch only at barriers and warp operations, so a plain update is atomic ---

template <typename T> T atomicAdd(T *address, T value) { const T old = *address; *address = old + value; return old; }
template <typename T> T atomicSub(T *address, T value) { const T old = *address; *address = old - value; return old; }
template <typename T> T atomicMax(T *address, T value) { const T old = *address; *address = old < value ? value : old; return old; }
template <typename T> T atomicMin(T *address, T value) { const T old = *address; *address = value < old ? value : old; return old; }
template <typename T> T atomicExch(T *address, T value) { const T old = *address; *address = value; return old; }
template <typename T> T atomicOr(T *address, T value) { const T old = *address; *address = old | value; return old; }
template <typename T> T atomicAnd(T *address, T value) { const T old = *address; *address = old & value; return old; }
template <typename T> T atomicCAS(T *address, T compare, T value) {
    const T old = *address;
    if (old == compare) *address = value;
    return old;
}

// ---- math and bit intrinsics (the fast variants as their accurate host counterparts) -------------

inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __log2f(float x) { return log2f(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fsqrt_rn(float x) { return sqrtf(x); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __int_as_float(int v) { return ::isthmus_emulation::from_bits<float>(static_cast<uint32_t>(v)); }
inline int __float_as_int(float v) { return static_cast<int>(::isthmus_emulation::to_bits(v)); }
inline float __uint_as_float(unsigned v) { return ::isthmus_emulation::from_bits<float>(v); }
inline unsigned __float_as_uint(float v) { return static_cast<unsigned>(::isthmus_emulation::to_bits(v)); }
// PTX prmt in its default mode: byte n of the result is byte (s >> 4n) & 7 of the pair {y, x} (x bytes 0-3).
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
    const uint64_t pair = (static_cast<uint64_t>(y) << 32) | x;
    unsigned r = 0;
    for (int n = 0; n < 4; ++n) r |= static_cast<unsigned>((pair >> (8 * ((s >> (4 * n)) & 7u))) & 0xffu) << (8 * n);
    return r;
}
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __clz(int v) { return v == 0 ? 32 : __builtin_clz(static_cast<unsigned>(v)); }
template <typename T> T __ldg(const T *p) { return *p; }
template <typename T> T __ldcs(const T *p) { return *p; }  // the streaming (evict-first) load: a cache hint only

// min and max over mixed integer and float arguments, as CUDA's device overloads take them.
template <typename A, typename B> auto min(A a, B b) -> std::common_type_t<A, B> {
    using C = std::common_type_t<A, B>;
    return static_cast<C>(b) < static_cast<C>(a) ? static_cast<C>(b) : static_cast<C>(a);
}
template <typename A, typename B> auto max(A a, B b) -> std::common_type_t<A, B> {
    using C = std::common_type_t<A, B>;
    return static_cast<C>(a) < static_cast<C>(b) ? static_cast<C>(b) : static_cast<C>(a);
}

#include "wmma_emulation.h"
#include "mma_emulation.h"
