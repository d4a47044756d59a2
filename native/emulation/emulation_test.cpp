// Tests of the host emulation's scheduler: a correct kernel gives the right answer under every
// schedule, and broken ones (a missing barrier, a barrier only some threads reach, a shuffle from
// a lane that returned, a bad launch) give a wrong answer under some schedule or a reported
// error. Run by `make emulation`; exits non-zero when a check failed.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "self_test.h"
#include "status.h"

namespace {

using namespace self_test;

// Sum of in[0 .. n) in one block: per-warp shuffle sums, warp totals through shared memory, added
// up by thread `reader`. Without the barrier the reader may add totals not yet written: which
// ones depends on which threads run first.
template <bool BARRIER>
__global__ void block_sum_kernel(const float *in, int n, unsigned reader, float *out) {
    __shared__ float totals[32];
    float v = threadIdx.x < static_cast<unsigned>(n) ? in[threadIdx.x] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x % 32 == 0) totals[threadIdx.x / 32] = v;
    if (BARRIER) __syncthreads();
    if (threadIdx.x == reader) {
        float sum = 0.0f;
        for (unsigned w = 0; w < blockDim.x / 32; ++w) sum += totals[w];
        *out = sum;
    }
}

// Thread 0 skips the barrier and then waits at a shuffle its warp never reaches.
__global__ void divergent_barrier_kernel(float *out) {
    float v = 1.0f;
    if (threadIdx.x != 0) __syncthreads();
    v = __shfl_down_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

// Lanes 16..31 return; lane 15 then reads lane 16 with a full mask.
__global__ void shuffle_from_returned_lane_kernel(float *out) {
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.0f, 1);
}

// The scan of thread indices within the warp, by __shfl_up_sync: lane i gets 0 + 1 + ... + i.
__global__ void warp_scan_kernel(int *out) {
    int v = static_cast<int>(threadIdx.x % 32);
    for (int offset = 1; offset < 32; offset <<= 1) {
        const int before = __shfl_up_sync(0xffffffffu, v, offset);
        if (static_cast<int>(threadIdx.x % 32) >= offset) v += before;
    }
    out[threadIdx.x] = v;
}

// Votes: lanes with an even index, and lanes grouped by index / 8; the largest of a warp's values
// 7 lane % 32 + 100 warp (31 at lane 9).
__global__ void vote_kernel(unsigned *ballot, unsigned *groups, unsigned *maxima) {
    const unsigned lane = threadIdx.x % 32;
    ballot[threadIdx.x] = __ballot_sync(0xffffffffu, lane % 2 == 0);
    groups[threadIdx.x] = __match_any_sync(0xffffffffu, lane / 8);
    maxima[threadIdx.x] = __reduce_max_sync(0xffffffffu, 7 * lane % 32 + threadIdx.x / 32 * 100);
}

float run_block_sum(bool barrier, int threads, unsigned reader) {
    std::vector<float> in(threads);
    for (int i = 0; i < threads; ++i) in[i] = static_cast<float>(i + 1);
    float out = -1.0f;
    if (barrier)
        ISTHMUS_LAUNCH(1, threads, 0, nullptr, block_sum_kernel<true>)(in.data(), threads, reader, &out);
    else
        ISTHMUS_LAUNCH(1, threads, 0, nullptr, block_sum_kernel<false>)(in.data(), threads, reader, &out);
    return out;
}

// The missing barrier shows whichever thread reads: the block sum with it is exact under every
// schedule, without it wrong under at least one, for a reader in the first and in the last warp.
void check_schedules() {
    const int threads = 256;
    const float expected = threads * (threads + 1) / 2.0f;
    for (unsigned reader : {0u, threads - 1u}) {
        bool exact_with = true;
        std::string wrong_without;
        for (const NamedSchedule &s : schedules) {
            isthmus_emulation::set_schedule(s.order, 7);
            exact_with &= run_block_sum(true, threads, reader) == expected && last_error_text().empty();
            if (run_block_sum(false, threads, reader) != expected) wrong_without += std::string(" ") + s.name;
        }
        isthmus_emulation::set_schedule(isthmus_emulation::Order::Forward, 1);
        std::printf("     reader %u: the sum without its barrier is wrong under:%s\n", reader, wrong_without.c_str());
        check(exact_with, reader == 0 ? "block sum with its barrier is exact under every schedule (reader 0)"
                                      : "block sum with its barrier is exact under every schedule (reader 255)");
        check(!wrong_without.empty(), reader == 0 ? "block sum without its barrier is wrong under some schedule (reader 0)"
                                                  : "block sum without its barrier is wrong under some schedule (reader 255)");
    }
}

}  // namespace

int main() {
    check_schedules();

    std::vector<int> scan(64);
    ISTHMUS_LAUNCH(1, 64, 0, nullptr, warp_scan_kernel)(scan.data());
    bool scan_ok = last_error_text().empty();
    for (int i = 0; i < 64; ++i) scan_ok &= scan[i] == (i % 32) * (i % 32 + 1) / 2;
    check(scan_ok, "warp scan by __shfl_up_sync");

    std::vector<unsigned> ballot(64), groups(64), maxima(64);
    ISTHMUS_LAUNCH(1, 64, 0, nullptr, vote_kernel)(ballot.data(), groups.data(), maxima.data());
    bool votes_ok = last_error_text().empty();
    for (int i = 0; i < 64; ++i)
        votes_ok &= ballot[i] == 0x55555555u && groups[i] == 0xffu << (i % 32 / 8 * 8) && maxima[i] == 31u + i / 32 * 100u;
    check(votes_ok, "__ballot_sync, __match_any_sync and __reduce_max_sync");

    std::vector<float> out(64);
    ISTHMUS_LAUNCH(1, 64, 0, nullptr, divergent_barrier_kernel)(out.data());
    std::string error = last_error_text();
    std::printf("     %s\n", error.c_str());
    check(error.find("cudaErrorLaunchFailure") == 0 && error.find("not every live thread") != std::string::npos,
          "a barrier that thread 0 skips is reported as a launch failure");

    ISTHMUS_LAUNCH(1, 32, 0, nullptr, shuffle_from_returned_lane_kernel)(out.data());
    error = last_error_text();
    std::printf("     %s\n", error.c_str());
    check(error.find("reads lane 16") != std::string::npos, "a shuffle from a lane that returned is reported");

    ISTHMUS_LAUNCH(1, 2048, 0, nullptr, warp_scan_kernel)(scan.data());
    error = last_error_text();
    check(error.find("cudaErrorInvalidConfiguration") == 0, "2048 threads per block is an invalid configuration");
    check(last_error_text().empty(), "cudaGetLastError clears the error");

    // A captured launch runs when the graph launches, not when it is captured, with the arguments
    // it was captured with; the graph replays as often as it is launched.
    std::fill(scan.begin(), scan.end(), -1);
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    bool graph_ok = cudaStreamBeginCapture(nullptr, cudaStreamCaptureModeRelaxed) == cudaSuccess;
    ISTHMUS_LAUNCH(1, 64, 0, nullptr, warp_scan_kernel)(scan.data());
    graph_ok &= cudaStreamEndCapture(nullptr, &graph) == cudaSuccess && scan[5] == -1;
    graph_ok &= cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess && cudaGraphDestroy(graph) == cudaSuccess;
    for (int replay = 0; replay < 2; ++replay) {
        std::fill(scan.begin(), scan.end(), -1);
        graph_ok &= cudaGraphLaunch(exec, nullptr) == cudaSuccess && scan[5] == 15 && scan[37] == 15;
    }
    graph_ok &= cudaGraphExecDestroy(exec) == cudaSuccess;
    check(graph_ok, "a captured launch runs at each graph launch, not at capture");

    std::printf("%s\n", failures == 0 ? "host emulation self-test passed" : "host emulation self-test FAILED");
    return failures == 0 ? 0 : 1;
}
