// The dynamic shared memory of the host emulation. A kernel declares it as
//   extern __shared__ __align__(16) unsigned char name[];
// which here (with __shared__ as thread_local) names a thread_local array defined below, one per
// name a kernel uses, each as large as a block may opt in to. The link (-Wl,--no-undefined) fails
// with the name of any array a new kernel adds and this list lacks: add it here, in the kernel's
// namespace, with the kernel's element type. (The build passes -fno-extern-tls-init: these have
// no dynamic initialisation, and g++ would otherwise call an init function that does not exist.)
#include "cuda_emulation.h"

namespace isthmus {

constexpr size_t EMULATED_SHARED_BYTES = 227 * 1024;  // cudaDevAttrMaxSharedMemoryPerBlockOptin of the emulated device

alignas(128) thread_local unsigned char smem[EMULATED_SHARED_BYTES];          // cuda/attention.cuh
alignas(128) thread_local unsigned char prefill_smem[EMULATED_SHARED_BYTES];  // cuda/attention_prefill.cuh
alignas(128) thread_local int32_t align_shared[EMULATED_SHARED_BYTES / 4];     // cuda/moe_dispatch.cuh
alignas(128) thread_local float scan_shared[EMULATED_SHARED_BYTES / 4];        // cuda/scan.cuh
alignas(128) thread_local unsigned char gemm_tile_shared[EMULATED_SHARED_BYTES];  // cuda/gemm_tile.cuh

}  // namespace isthmus

namespace isthmus_emulation {

// Nothing promises a block's dynamic shared memory is zero: each block starts with NaN bytes, so
// a kernel that reads before it writes shows it.
void poison_dynamic_shared(size_t bytes) {
    std::memset(isthmus::smem, 0xff, bytes);
    std::memset(isthmus::prefill_smem, 0xff, bytes);
    std::memset(isthmus::align_shared, 0xff, bytes);
    std::memset(isthmus::scan_shared, 0xff, bytes);
    std::memset(isthmus::gemm_tile_shared, 0xff, bytes);
}

}  // namespace isthmus_emulation
