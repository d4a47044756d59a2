// One decode step of the selective scan (the "selective state update"): for every (batch row,
// channel) one token advances the fp32 state in place,
//
//   h[n] = exp(dt * A[n]) * h[n] + dt * B[n] * u;   y = sum_n C[n] * h[n] + D * u  (then * silu(z))
//
// with dt as in the sequence scan. Each (row, channel) is served by a group of `lanes` adjacent
// threads (a power of two up to 32) that split its N contiguous states, 16 bytes each where N and
// the pool allow, so a warp reads and writes whole runs of the state; the group sums C * h with
// shuffles. A row's state lives in a pool of slots: slot = slots[row] (row itself without slots);
// a negative slot marks a padding row, whose state is left alone and whose y is 0. A slot past
// the pool is never touched either (the Java API rejects it; the kernel only keeps memory safe)
// and its y is NaN, so it cannot pass unnoticed. A slot that an earlier row also names (two rows
// updating one state would race) is left to the earliest such row: the later rows' y is NaN and
// they do not touch the state. To find them, the lanes of a warp that serve the same row split
// the scan of the earlier rows' slots, about row / 32 loads each.
#pragma once

#include "scan_common.cuh"

namespace isthmus {

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

// VEC = 4: N % 4 == 0 and the state and A are 16-byte aligned, so each row of N is whole float4s.
// Every thread of a warp reaches the shuffles, including those past the last (row, channel).
template <typename T, int VEC>
__global__ void selective_state_update_kernel(StepArgs<T> p, int lanes_log2) {
    const int64_t thread = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    const int64_t i = thread >> lanes_log2;  // (row, channel)
    const int lanes = 1 << lanes_log2, member = static_cast<int>(thread & (lanes - 1));
    const bool exists = i < p.batch * p.channels;
    const int ch = exists ? static_cast<int>(i % p.channels) : 0;
    const int64_t row = i / p.channels;
    const int64_t slot = !exists ? -1 : p.slots != nullptr ? p.slots[row] : row;
    bool live = slot >= 0 && slot < p.pool;
    if (p.slots != nullptr) {
        const unsigned peers = __match_any_sync(0xffffffffu, exists ? static_cast<long long>(row) : -1ll);
        const int stride = __popc(peers);
        bool repeated = false;
        if (live)
            for (int64_t j = __popc(peers & ((1u << (threadIdx.x & 31)) - 1)); j < row; j += stride)
                repeated |= p.slots[j] == slot;
        live &= (__ballot_sync(0xffffffffu, repeated) & peers) == 0;
    }

    float acc = 0.0f, u = 0.0f;
    if (live) {
        const int nstate = p.nstate;
        float dt = to_float(p.delta[i]) + (p.delta_bias != nullptr ? p.delta_bias[ch] : 0.0f);
        if (p.delta_softplus) dt = softplus(dt);
        u = to_float(p.u[i]);
        const float dt_u = dt * u;
        const float dt_log2 = dt * SCAN_LOG2E;  // exp(dt A) = exp2(dt log2(e) A)
        const int group = ch / (p.channels / p.groups);
        const T *b = p.b + (row * p.groups + group) * nstate;
        const T *c = p.c + (row * p.groups + group) * nstate;
        const float *a = p.a + static_cast<int64_t>(ch) * nstate;
        float *h = p.state + (slot * p.channels + ch) * nstate;
        for (int n0 = member * VEC; n0 < nstate; n0 += lanes * VEC) {
            Vec<float, VEC> hv = *reinterpret_cast<const Vec<float, VEC> *>(h + n0);
            const Vec<float, VEC> av = *reinterpret_cast<const Vec<float, VEC> *>(a + n0);
#pragma unroll
            for (int k = 0; k < VEC; ++k) {
                hv.v[k] = exp2f(dt_log2 * av.v[k]) * hv.v[k] + dt_u * to_float(b[n0 + k]);
                acc += to_float(c[n0 + k]) * hv.v[k];
            }
            *reinterpret_cast<Vec<float, VEC> *>(h + n0) = hv;
        }
    }
    for (int offset = lanes >> 1; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
    if (!exists || member != 0) return;
    if (!live) {
        p.y[i] = from_float<T>(slot < 0 ? 0.0f : __int_as_float(0x7fc00000));
        return;
    }
    float out = acc + (p.d != nullptr ? p.d[ch] : 0.0f) * u;
    if (p.z != nullptr) out *= silu(to_float(p.z[i]));
    p.y[i] = from_float<T>(out);
}

}  // namespace isthmus
