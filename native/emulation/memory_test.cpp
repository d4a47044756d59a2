// Tests of the host emulation's memory checks: a read or write one element past either end of a
// device allocation, or into freed memory, fails the launch with cudaErrorIllegalAddress naming
// the kernel and the offset (guard behind and guard in front), while the same kernel within
// bounds passes; static __shared__ memory starts every block as NaN bytes. Run by
// `make emulation`; exits non-zero when a check failed.
#include <cstdint>
#include <cstdio>
#include <string>

#include "self_test.h"
#include "status.h"

namespace {

using namespace self_test;

// out[i] = in[i + shift] for i < n: shift 0 stays inside, +1 reads one past the end, -1 one before the start.
__global__ void shifted_load_kernel(float *out, const float *in, int shift, int n) {
    if (static_cast<int>(threadIdx.x) < n) out[threadIdx.x] = in[static_cast<int>(threadIdx.x) + shift];
}

// out[i + shift] = 1 for i < n.
__global__ void shifted_store_kernel(float *out, int shift, int n) {
    if (static_cast<int>(threadIdx.x) < n) out[static_cast<int>(threadIdx.x) + shift] = 1.0f;
}

void check_guard(isthmus_emulation::Guard side) {
    const bool after = side == isthmus_emulation::Guard::After;
    const std::string mode = after ? " (guard after)" : " (guard before)";
    isthmus_emulation::set_guard(side);
    const int n = 7;  // 28 bytes: not a multiple of any alignment the allocation could round to
    auto *in = static_cast<float *>(isthmus_emulation::device_allocate(n * sizeof(float)));
    auto *out = static_cast<float *>(isthmus_emulation::device_allocate(n * sizeof(float)));
    for (int i = 0; i < n; ++i) in[i] = static_cast<float>(i);

    ISTHMUS_LAUNCH(1, 32, 0, nullptr, shifted_load_kernel)(out, in, 0, n);
    check(last_error_text().empty() && out[6] == 6.0f, "a kernel within its allocations passes" + mode);

    const int shift = after ? 1 : -1;
    const std::string offset = after ? "at offset 28 of an allocation of 28 bytes" : "at offset -4 of an allocation of 28 bytes";
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, shifted_load_kernel)(out, in, shift, n);
    std::string error = last_error_text();
    std::printf("     %s\n", error.c_str());
    check(contains(error, "cudaErrorIllegalAddress") && contains(error, "shifted_load_kernel") && contains(error, offset),
          "a read one element " + std::string(after ? "past the end" : "before the start") + " faults, named" + mode);

    ISTHMUS_LAUNCH(1, 32, 0, nullptr, shifted_store_kernel)(out, shift, n);
    error = last_error_text();
    check(contains(error, "cudaErrorIllegalAddress") && contains(error, "shifted_store_kernel") && contains(error, offset),
          "a write one element " + std::string(after ? "past the end" : "before the start") + " faults, named" + mode);

    check(isthmus_emulation::device_free(in), "an allocation is freed" + mode);
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, shifted_load_kernel)(out, in, 0, n);
    error = last_error_text();
    check(contains(error, "cudaErrorIllegalAddress") && contains(error, "freed"), "a read of freed memory faults" + mode);
    check(!isthmus_emulation::device_free(in) && isthmus_emulation::device_free(out), "a second free is refused" + mode);
}

// Each block's thread 0 reports the bits its static shared variables hold before it writes them:
// one in the kernel, one in a helper (as cuda/common.cuh's block_sum keeps its own).
__device__ uint32_t helper_shared_before_write() {
    __shared__ uint32_t helper_value;
    const uint32_t before = helper_value;
    helper_value = 0;
    return before;
}

__global__ void shared_before_write_kernel(uint32_t *out) {
    __shared__ uint32_t value;
    if (threadIdx.x != 0) return;
    out[2 * blockIdx.x] = value;
    value = 0;
    out[2 * blockIdx.x + 1] = helper_shared_before_write();
}

void check_static_shared() {
    uint32_t out[2 * 3] = {};
    ISTHMUS_LAUNCH(3, 32, 0, nullptr, shared_before_write_kernel)(out);
    bool poisoned = last_error_text().empty();
    for (uint32_t bits : out) poisoned &= bits == 0xffffffffu;
    check(poisoned, "static __shared__ memory of a kernel and of a helper starts every block as 0xff bytes");
}

}  // namespace

int main() {
    check_guard(isthmus_emulation::Guard::After);
    check_guard(isthmus_emulation::Guard::Before);
    check_static_shared();
    std::printf("%s\n", failures == 0 ? "host emulation memory self-test passed" : "host emulation memory self-test FAILED");
    return failures == 0 ? 0 : 1;
}
