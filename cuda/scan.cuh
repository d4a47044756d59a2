// The selective scan of Mamba (Gu & Dao 2023, Algorithm 2), forward, for a whole sequence:
//
//   dt     = delta[t] (+ delta_bias, then softplus if asked)
//   h[n]   = exp(dt * A[n]) * h[n] + dt * B[n, t] * u[t]
//   y[t]   = sum_n C[n, t] * h[n] + D * u[t],   then y *= silu(z[t]) if z is given
//
// One block per (row, channel), where a row is a batch entry or, for packed input, one sequence
// [seq_starts[r], seq_starts[r+1]) of the single batch row. The block walks its time range in
// chunks of blockDim.x * SCAN_ITEMS steps; each thread owns SCAN_ITEMS consecutive steps. For
// every state n in turn, each thread folds its steps into one affine map h -> a*h + b, the block
// scans those maps (warp shuffles, then the warp totals through shared memory), and each thread
// replays its steps from the state before its first one, accumulating C * h into its outputs.
// The state at the end of a chunk is the carry of the next one, so h (B, D, L, N) never leaves
// registers; only the final state is written.
#pragma once

#include "scan_common.cuh"

namespace isthmus {

constexpr int SCAN_MAX_THREADS = 128;
constexpr int SCAN_ITEMS = 8;  // consecutive time steps per thread; a multiple of every vector width
constexpr int SCAN_MAX_STATE = 256;

template <typename T> struct ScanArgs {
    T *y;                         // (B, D, L)
    float *final_state;           // (rows, D, N) or NULL
    const T *u, *delta, *z;       // (B, D, L); z may be NULL
    const T *b, *c;               // (B, G, N, L)
    const float *a;               // (D, N)
    const float *d, *delta_bias;  // (D) or NULL
    const float *initial_state;   // (rows, D, N) or NULL
    const int32_t *seq_starts;    // (rows + 1) for a packed batch of one row, else NULL
    int64_t length;               // L
    int32_t channels, groups, nstate;
    bool delta_softplus;
};

// The affine maps h -> a*h + b compose as (first, then second) = (a2*a1, a2*b1 + b2).
__device__ __forceinline__ float2 compose(float2 first, float2 second) {
    return make_float2(second.x * first.x, second.x * first.y + second.y);
}

// Steps t0 .. t0+SCAN_ITEMS-1 of a sequence row, as fp32; steps outside [lo, hi) read as 0.
// WIDE: 16-byte loads. The caller guarantees t0 is a multiple of the vector width, the row
// start is 16-byte aligned and L is a multiple of the width, so a vector that touches [lo, hi)
// lies inside the row.
template <typename T, bool WIDE>
__device__ __forceinline__ void load_steps(const T *row, int64_t t0, int64_t lo, int64_t hi,
                                           float (&out)[SCAN_ITEMS]) {
    if constexpr (WIDE) {
        constexpr int W = 16 / sizeof(T);
#pragma unroll
        for (int j = 0; j < SCAN_ITEMS / W; ++j) {
            const int64_t v0 = t0 + j * W;
            if (v0 < hi && v0 + W > lo) {
                const Vec<T, W> v = *reinterpret_cast<const Vec<T, W> *>(row + v0);
#pragma unroll
                for (int i = 0; i < W; ++i) out[j * W + i] = to_float(v.v[i]);
            } else {
#pragma unroll
                for (int i = 0; i < W; ++i) out[j * W + i] = 0.0f;
            }
        }
#pragma unroll
        for (int k = 0; k < SCAN_ITEMS; ++k)
            if (t0 + k < lo || t0 + k >= hi) out[k] = 0.0f;
    } else {
#pragma unroll
        for (int k = 0; k < SCAN_ITEMS; ++k) {
            const int64_t t = t0 + k;
            out[k] = t >= lo && t < hi ? to_float(row[t]) : 0.0f;
        }
    }
}

// Writes the steps of [lo, hi) among t0 .. t0+SCAN_ITEMS-1; whole vectors where they fit.
template <typename T, bool WIDE>
__device__ __forceinline__ void store_steps(T *row, int64_t t0, int64_t lo, int64_t hi,
                                            const float (&in)[SCAN_ITEMS]) {
    constexpr int W = WIDE ? 16 / sizeof(T) : 1;
#pragma unroll
    for (int j = 0; j < SCAN_ITEMS / W; ++j) {
        const int64_t v0 = t0 + j * W;
        if (WIDE && v0 >= lo && v0 + W <= hi) {
            Vec<T, W> v;
#pragma unroll
            for (int i = 0; i < W; ++i) v.v[i] = from_float<T>(in[j * W + i]);
            *reinterpret_cast<Vec<T, W> *>(row + v0) = v;
        } else {
#pragma unroll
            for (int i = 0; i < W; ++i)
                if (v0 + i >= lo && v0 + i < hi) row[v0 + i] = from_float<T>(in[j * W + i]);
        }
    }
}

// NSTATE > 0 fixes N at compile time (the common N = 16); 0 reads it from the arguments.
template <typename T, bool WIDE, int NSTATE>
__global__ void __launch_bounds__(SCAN_MAX_THREADS) selective_scan_kernel(ScanArgs<T> p) {
    __shared__ float a_row[SCAN_MAX_STATE];             // A[d, :]
    __shared__ float carry[2][SCAN_MAX_STATE];          // h before the chunk, by chunk parity
    __shared__ float2 warp_totals[2][SCAN_MAX_THREADS / 32];  // by step parity

    const int nstate = NSTATE > 0 ? NSTATE : p.nstate;
    const int ch = static_cast<int>(blockIdx.x % p.channels);
    const int64_t row = blockIdx.x / p.channels;
    const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    int64_t batch = row, lo = 0, hi = p.length;
    if (p.seq_starts != nullptr) {
        batch = 0;
        // Clamped into the row so that bad offsets (the Java API rejects them) stay in bounds.
        lo = min(max(static_cast<int64_t>(p.seq_starts[row]), int64_t{0}), p.length);
        hi = min(max(static_cast<int64_t>(p.seq_starts[row + 1]), lo), p.length);
    }
    const int group = ch / (p.channels / p.groups);
    const int64_t seq_offset = (batch * p.channels + ch) * p.length;
    const T *bc_offset_b = p.b + (batch * p.groups + group) * nstate * p.length;
    const T *bc_offset_c = p.c + (batch * p.groups + group) * nstate * p.length;
    const int64_t state_offset = (row * p.channels + ch) * nstate;

    for (int n = tid; n < nstate; n += blockDim.x) {
        a_row[n] = p.a[static_cast<int64_t>(ch) * nstate + n];
        carry[0][n] = p.initial_state != nullptr ? p.initial_state[state_offset + n] : 0.0f;
    }
    __syncthreads();

    const float d_skip = p.d != nullptr ? p.d[ch] : 0.0f;
    const float bias = p.delta_bias != nullptr ? p.delta_bias[ch] : 0.0f;
    constexpr int64_t ALIGN = WIDE ? 16 / sizeof(T) : 1;
    const int64_t chunk_steps = static_cast<int64_t>(blockDim.x) * SCAN_ITEMS;
    int parity = 0, phase = 0;
    // Chunks start on a vector boundary at or before lo; steps before lo are masked out.
    for (int64_t chunk = lo / ALIGN * ALIGN; chunk < hi; chunk += chunk_steps, parity ^= 1) {
        const int64_t t0 = chunk + static_cast<int64_t>(tid) * SCAN_ITEMS;
        float dt[SCAN_ITEMS], dt_u[SCAN_ITEMS], y[SCAN_ITEMS];  // dt ends up as dt * log2(e)
        load_steps<T, WIDE>(p.u + seq_offset, t0, lo, hi, dt_u);
        load_steps<T, WIDE>(p.delta + seq_offset, t0, lo, hi, dt);
#pragma unroll
        for (int k = 0; k < SCAN_ITEMS; ++k) {
            const bool inside = t0 + k >= lo && t0 + k < hi;
            float v = dt[k] + bias;
            if (p.delta_softplus) v = softplus(v);
            dt[k] = inside ? v : 0.0f;  // dt = 0 makes the step the identity map (1, 0)
            y[k] = d_skip * dt_u[k];
            dt_u[k] *= dt[k];
            // exp(dt A) = exp2(dt log2(e) A): one multiply per step here, none per state. (Scaling
            // A instead would overflow for |A| > 2.3e38 and turn the identity steps into 0 * inf.)
            dt[k] *= SCAN_LOG2E;
        }

        for (int n = 0; n < nstate; ++n, phase ^= 1) {
            float bn[SCAN_ITEMS], cn[SCAN_ITEMS], a[SCAN_ITEMS];
            load_steps<T, WIDE>(bc_offset_b + n * p.length, t0, lo, hi, bn);
            load_steps<T, WIDE>(bc_offset_c + n * p.length, t0, lo, hi, cn);
            const float a_n = a_row[n];
            float2 mine = make_float2(1.0f, 0.0f);  // this thread's steps folded into one map
#pragma unroll
            for (int k = 0; k < SCAN_ITEMS; ++k) {
                a[k] = exp2f(dt[k] * a_n);
                bn[k] *= dt_u[k];
                mine = compose(mine, make_float2(a[k], bn[k]));
            }
            // Inclusive scan of the threads' maps within the warp.
            float2 inclusive = mine;
#pragma unroll
            for (int offset = 1; offset < 32; offset <<= 1) {
                const float2 before = make_float2(__shfl_up_sync(0xffffffffu, inclusive.x, offset),
                                                  __shfl_up_sync(0xffffffffu, inclusive.y, offset));
                if (lane >= offset) inclusive = compose(before, inclusive);
            }
            if (lane == 31) warp_totals[phase][warp] = inclusive;
            // One barrier per state: the double buffers (phase, parity) are only rewritten after
            // the next barrier, when every thread has read them.
            __syncthreads();
            float h = carry[parity][n];
            for (int w = 0; w < warp; ++w) {
                const float2 total = warp_totals[phase][w];
                h = total.x * h + total.y;
            }
            const float2 before = make_float2(__shfl_up_sync(0xffffffffu, inclusive.x, 1),
                                              __shfl_up_sync(0xffffffffu, inclusive.y, 1));
            if (lane > 0) h = before.x * h + before.y;
            // h is now the state before this thread's first step: replay the steps.
#pragma unroll
            for (int k = 0; k < SCAN_ITEMS; ++k) {
                h = a[k] * h + bn[k];
                y[k] += cn[k] * h;
            }
            if (tid == blockDim.x - 1) carry[parity ^ 1][n] = h;
        }

        if (p.z != nullptr) {
            float z[SCAN_ITEMS];
            load_steps<T, WIDE>(p.z + seq_offset, t0, lo, hi, z);
#pragma unroll
            for (int k = 0; k < SCAN_ITEMS; ++k) y[k] *= silu(z[k]);
        }
        store_steps<T, WIDE>(p.y + seq_offset, t0, lo, hi, y);
    }

    if (p.final_state != nullptr) {
        __syncthreads();
        for (int n = tid; n < nstate; n += blockDim.x) p.final_state[state_offset + n] = carry[parity][n];
    }
}

}  // namespace isthmus
