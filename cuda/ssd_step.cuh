// The one-token decode step of the SSD scan and the gated RMSNorm of Mamba-2.
//
// ssd_state_update_kernel: one block per (row, head); warp w takes head channels p = w, w + 4, ..,
// its lanes the states n = lane, lane + 32, ..; per channel
//   S[p][n] = exp(dt' A) S[p][n] + dt' x[p] B[n],   y[p] = sum_n C[n] S[p][n] + D x[p]
// with the state read and written in place in its slot of the pool (fp32). A negative slot is a
// padding row (y = 0, no state touched); a slot out of range or named by an earlier row gets a NaN
// y and touches nothing (the host checks slots it can see; these are the device's own guards).
//
// gated_rmsnorm_kernel: one block per (row, group) of group_size channels:
//   v = y silu(z),   out = v / sqrt(mean(v^2) + eps) * weight
// the sum of squares over the block (block_sum), then v formed again from y and z (re-read: an L1
// or L2 hit) rather than kept, so that any group size fits.
#pragma once

#include "common.cuh"
#include "scan_common.cuh"
#include "ssd.cuh"

namespace isthmus {

constexpr int SSD_STEP_THREADS = 128;
constexpr int SSD_NORM_THREADS = 256;

template <typename T>
struct SsdStepArgs {
    T *y;
    float *state;          // (pool, H, P, N)
    const int32_t *slots;  // (batch) or null
    const T *x;            // (batch, H, P)
    const T *dt;           // (batch, H)
    const T *b, *c;        // (batch, G, N)
    const float *a, *d, *dt_bias;
    int64_t batch, pool;
    int32_t heads, head_dim, groups, nstate;
    bool dt_softplus;
    float dt_min, dt_max;
};

template <typename T>
__global__ void __launch_bounds__(SSD_STEP_THREADS) ssd_state_update_kernel(SsdStepArgs<T> p) {
    const int h = blockIdx.x, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    const int H = p.heads, P = p.head_dim, N = p.nstate;
    for (int64_t row = blockIdx.y; row < p.batch; row += gridDim.y) {
        const int64_t slot = p.slots == nullptr ? row : p.slots[row];
        T *y = p.y + (row * H + h) * P;
        if (slot < 0) {  // padding
            for (int q = threadIdx.x; q < P; q += blockDim.x) y[q] = from_float<T>(0.0f);
            continue;
        }
        bool usable = slot < p.pool;
        if (p.slots != nullptr)
            for (int64_t r = 0; r < row && usable; ++r) usable = p.slots[r] != slot;
        if (!usable) {
            for (int q = threadIdx.x; q < P; q += blockDim.x) y[q] = from_float<T>(__int_as_float(0x7fc00000));
            continue;
        }
        const float dt = ssd_time_step(to_float(p.dt[row * H + h]), p.dt_bias == nullptr ? 0.0f : p.dt_bias[h],
                                       p.dt_softplus, p.dt_min, p.dt_max);
        const float decay = sfu_exp2(dt * p.a[h] * SCAN_LOG2E);
        const T *b = p.b + (row * p.groups + h / (H / p.groups)) * N;
        const T *c = p.c + (row * p.groups + h / (H / p.groups)) * N;
        float *s = p.state + (slot * H + h) * static_cast<int64_t>(P) * N;
        for (int q = threadIdx.x / 32; q < P; q += warps) {
            const float xq = to_float(p.x[(row * H + h) * P + q]);
            float acc = 0.0f;
            for (int n = lane; n < N; n += 32) {
                const float next = fmaf(decay, s[q * N + n], dt * xq * to_float(b[n]));
                s[q * N + n] = next;
                acc = fmaf(to_float(c[n]), next, acc);
            }
            acc = warp_sum(acc);
            if (lane == 0) y[q] = from_float<T>(acc + (p.d == nullptr ? 0.0f : p.d[h]) * xq);
        }
    }
}

template <typename T>
__global__ void __launch_bounds__(SSD_NORM_THREADS)
gated_rmsnorm_kernel(T *out, const T *y, const T *z, const T *__restrict__ weight, int64_t width, int64_t group_size,
                     float eps) {
    const int64_t groups = width / group_size;
    const int64_t row = blockIdx.x / groups, group = blockIdx.x % groups;
    const int64_t start = row * width + group * group_size;
    float squares = 0.0f;
    for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) {
        const float v = to_float(y[start + i]) * (z == nullptr ? 1.0f : silu(to_float(z[start + i])));
        squares = fmaf(v, v, squares);
    }
    const float scale = rsqrtf(block_sum(squares) / static_cast<float>(group_size) + eps);
    for (int64_t i = threadIdx.x; i < group_size; i += blockDim.x) {
        const float v = to_float(y[start + i]) * (z == nullptr ? 1.0f : silu(to_float(z[start + i])));
        out[start + i] = from_float<T>(v * scale * to_float(weight[group * group_size + i]));
    }
}

}  // namespace isthmus
