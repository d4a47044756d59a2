// One decode step of the selective scan (the "selective state update"): for every (batch row,
// channel) one token advances the fp32 state in place,
//
//   h[n] = exp(dt * A[n]) * h[n] + dt * B[n] * u;   y = sum_n C[n] * h[n] + D * u  (then * silu(z))
//
// with dt as in the sequence scan. A block serves one batch row (grid y; rows past 65535 loop)
// and STEP_THREADS consecutive channel slices of it (grid x): a (row, channel) is a group of
// `lanes` adjacent threads (a power of two, one for N <= STEP_STATES), each owning up to
// STEP_STATES of its N contiguous states, which it reads and writes once, 16 bytes at a time
// where N and the pointers allow. So the per-(row, channel) work (dt, softplus, u, z, y) is done
// by one thread, not repeated by every lane of a group; the channels of a warp share their
// group's B and C (one address for the warp: a broadcast load); exp(dt A) is one ex2 per state
// (dt is scaled by log2(e) once); C * h is summed in registers and only the lanes' partial sums
// meet in shuffles. No 64-bit division: the row is the block's, the channel its thread's.
//
// A row's state lives in a pool of slots: slot = slots[row] (row itself without slots); a
// negative slot marks a padding row, whose state is left alone and whose y is 0. A slot past the
// pool is never touched either (the Java API rejects it; the kernel only keeps memory safe) and
// its y is NaN, so it cannot pass unnoticed. A slot that an earlier row also names (two rows
// updating one state would race) is left to the earliest such row: the later rows' y is NaN and
// they do not touch the state. Every warp of the row's blocks checks that for itself, its lanes
// splitting the scan of the earlier rows' slots (about row / 32 loads each), so the verdict is
// the same for the whole row and needs no barrier.
#pragma once

#include "scan_common.cuh"

namespace isthmus {

constexpr int STEP_STATES = 16;    // states per thread: four 16-byte runs
constexpr int STEP_THREADS = 128;  // threads per block

template <typename T> struct StepArgs {
    T *y;                         // (B, D)
    float *state;                 // (pool, D, N), updated in place
    const int32_t *slots;         // (B) or NULL
    const T *u, *delta, *z;       // (B, D); z may be NULL
    const T *b, *c;               // (B, G, N)
    const float *a;               // (D, N)
    const float *d, *delta_bias;  // (D) or NULL
    int64_t batch, pool;
    int32_t channels, groups, nstate;
    bool delta_softplus;
};

// The slot of `row`, or -1 when the row must not touch the state: a padding row (its own slot is
// negative), a slot past the pool, or one an earlier row names. All 32 lanes of the warp call it
// for the same row.
template <typename T> __device__ __forceinline__ int64_t step_slot(const StepArgs<T> &p, int64_t row, bool &padding) {
    const int64_t slot = p.slots != nullptr ? p.slots[row] : row;
    padding = slot < 0;
    if (slot < 0 || slot >= p.pool) return -1;
    if (p.slots == nullptr) return slot;
    bool repeated = false;
    for (int64_t j = threadIdx.x & 31; j < row; j += 32) repeated |= p.slots[j] == slot;
    return __ballot_sync(0xffffffffu, repeated) == 0 ? slot : -1;
}

// VEC = 4: N % 4 == 0, the state and A are 16-byte aligned and B and C 4-element aligned, so each
// thread's states are whole 4-vectors. Every thread of a warp reaches the shuffles, including
// those past the last channel.
template <typename T, int VEC>
__global__ void __launch_bounds__(STEP_THREADS) selective_state_update_kernel(StepArgs<T> p, int lanes_log2) {
    using F = Vec<float, VEC>;
    using E = Vec<T, VEC>;
    const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int lanes = 1 << lanes_log2, member = static_cast<int>(thread & (lanes - 1));
    const bool exists = (thread >> lanes_log2) < p.channels;
    const int ch = exists ? static_cast<int>(thread >> lanes_log2) : 0;
    const int group = ch / (p.channels / p.groups);
    const int nstate = p.nstate;
    const float *a = p.a + static_cast<int64_t>(ch) * nstate;
    const float d_skip = p.d != nullptr ? p.d[ch] : 0.0f;
    const float bias = p.delta_bias != nullptr ? p.delta_bias[ch] : 0.0f;

    for (int64_t row = blockIdx.y; row < p.batch; row += gridDim.y) {
        bool padding;
        const int64_t slot = step_slot(p, row, padding);
        const int64_t i = row * p.channels + ch;
        float acc = 0.0f, u = 0.0f;
        if (exists && slot >= 0) {
            float dt = to_float(p.delta[i]) + bias;
            if (p.delta_softplus) dt = softplus(dt);
            const float dt_log2 = dt * SCAN_LOG2E;  // exp(dt A) = exp2(dt log2(e) A): one ex2 a state
            u = to_float(p.u[i]);
            const float dt_u = dt * u;
            const int64_t bc = (row * p.groups + group) * nstate;
            float *h = p.state + (slot * p.channels + ch) * nstate;
            for (int n0 = member * STEP_STATES; n0 < nstate; n0 += lanes * STEP_STATES) {
#pragma unroll
                for (int k0 = 0; k0 < STEP_STATES; k0 += VEC) {
                    const int n = n0 + k0;
                    if (n < nstate) {
                        F hv = *reinterpret_cast<const F *>(h + n);
                        const F av = *reinterpret_cast<const F *>(a + n);
                        const E bv = *reinterpret_cast<const E *>(p.b + bc + n);
                        const E cv = *reinterpret_cast<const E *>(p.c + bc + n);
#pragma unroll
                        for (int k = 0; k < VEC; ++k) {
                            hv.v[k] = fmaf(sfu_exp2(dt_log2 * av.v[k]), hv.v[k], dt_u * to_float(bv.v[k]));
                            acc = fmaf(to_float(cv.v[k]), hv.v[k], acc);
                        }
                        *reinterpret_cast<F *>(h + n) = hv;
                    }
                }
            }
        }
        for (int offset = lanes >> 1; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
        if (!exists || member != 0) continue;
        if (slot < 0) {
            p.y[i] = from_float<T>(padding ? 0.0f : __int_as_float(0x7fc00000));
            continue;
        }
        float out = fmaf(d_skip, u, acc);
        if (p.z != nullptr) out *= silu(to_float(p.z[i]));
        p.y[i] = from_float<T>(out);
    }
}

}  // namespace isthmus
