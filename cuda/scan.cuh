// The selective scan of Mamba (Gu & Dao 2023, Algorithm 2), forward, for a whole sequence:
//
//   dt     = delta[t] (+ delta_bias, then softplus if asked)
//   h[n]   = exp(dt * A[n]) * h[n] + dt * B[n, t] * u[t]
//   y[t]   = sum_n C[n, t] * h[n] + D * u[t],   then y *= silu(z[t]) if z is given
//
// The recurrence is walked in order: each thread owns SCAN_STATES states of one channel and
// carries them through every step of its row, so a (step, state) costs one ex2 and four FP32
// instructions (the exponent's product, the two of h = a*h + dt*u*B, the FMA of C*h) and no
// scan across threads. The parallelism is rows x channels x N / SCAN_STATES threads.
//
// One block serves `block_channels` channels of one group of one row (a row is a batch entry
// or, for packed input, one sequence [seq_starts[r], seq_starts[r+1]) of the single batch row),
// with `state_tiles` threads per channel. It walks the row in chunks of `chunk` steps, each in
// three phases between two barriers:
//   stage     every (channel, step) once: dt * log2(e), dt * u and D * u into shared memory, and
//             the group's B and C for the chunk as fp32, once for all the block's channels;
//   recur     each thread runs its states through the chunk, writing its part of sum_n C*h;
//   finish    every (channel, step) once: the parts summed, D * u added, the gate applied, stored.
// Steps outside the row (a chunk's head before the sequence start, its tail past the end) are
// staged as dt = 0, the identity map of h, so the recurrence never tests a step; only the stage
// and the finish of a partial chunk do. h never leaves registers; only the final state is written.
#pragma once

#include "scan_common.cuh"

namespace isthmus {

constexpr int SCAN_MAX_THREADS = 128;
constexpr int SCAN_STATES = 4;  // states per thread: one float4 of B and of C per step
constexpr int SCAN_VEC = 8;     // steps per stage and finish item: 16 bytes of a 16-bit row
constexpr int SCAN_PAD = 4;     // floats after each channel row of shared memory (bank spread)
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
    int32_t block_channels, state_tiles, chunk;  // tiling chosen by the launcher
};

// Shared memory of one block in floats: per channel a row of (dt2, dtu) pairs, a row of D * u
// and per thread a row of C * h parts, then per state tile the chunk's B and C. Every row ends
// in SCAN_PAD spare floats so that rows read by neighbouring lanes start on different banks.
__host__ __device__ constexpr int64_t scan_shared_floats(int block_channels, int state_tiles, int chunk) {
    return static_cast<int64_t>(block_channels) * (2 * chunk + SCAN_PAD) +
           static_cast<int64_t>(1 + state_tiles) * block_channels * (chunk + SCAN_PAD) +
           static_cast<int64_t>(state_tiles) * (2 * SCAN_STATES * chunk + SCAN_PAD);
}

// Steps t0 .. t0+SCAN_VEC-1 of a row as fp32, those outside [lo, hi) as 0. `full` says the
// whole run lies inside. WIDE: 16-byte loads; the caller guarantees t0 is a multiple of the
// vector width, the row is 16-byte aligned and L is a multiple of the width, so a vector that
// touches [lo, hi) lies inside the row.
template <typename T, bool WIDE>
__device__ __forceinline__ void load_run(const T *row, int64_t t0, int64_t lo, int64_t hi, bool full,
                                         float (&out)[SCAN_VEC]) {
    constexpr int W = WIDE ? 16 / sizeof(T) : 1;
#pragma unroll
    for (int j = 0; j < SCAN_VEC / W; ++j) {
        const int64_t v0 = t0 + j * W;
        if (full || (v0 < hi && v0 + W > lo)) {
            const Vec<T, W> v = *reinterpret_cast<const Vec<T, W> *>(row + v0);
#pragma unroll
            for (int i = 0; i < W; ++i) out[j * W + i] = to_float(v.v[i]);
        } else {
#pragma unroll
            for (int i = 0; i < W; ++i) out[j * W + i] = 0.0f;
        }
    }
    if (!full) {
#pragma unroll
        for (int k = 0; k < SCAN_VEC; ++k)
            if (t0 + k < lo || t0 + k >= hi) out[k] = 0.0f;
    }
}

// Writes the steps of [lo, hi) among t0 .. t0+SCAN_VEC-1; whole vectors where they fit.
template <typename T, bool WIDE>
__device__ __forceinline__ void store_run(T *row, int64_t t0, int64_t lo, int64_t hi, bool full,
                                          const float (&in)[SCAN_VEC]) {
    constexpr int W = WIDE ? 16 / sizeof(T) : 1;
#pragma unroll
    for (int j = 0; j < SCAN_VEC / W; ++j) {
        const int64_t v0 = t0 + j * W;
        if (full || (v0 >= lo && v0 + W <= hi)) {
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

// One step of the thread's states: h = exp2(dt2 * A) * h + dtu * B, returning sum_s C * h.
__device__ __forceinline__ float recur_step(float (&h)[SCAN_STATES], const float (&a)[SCAN_STATES], float dt2,
                                            float dtu, float4 b, float4 c) {
    const float bs[SCAN_STATES] = {b.x, b.y, b.z, b.w}, cs[SCAN_STATES] = {c.x, c.y, c.z, c.w};
    float y = 0.0f;
#pragma unroll
    for (int s = 0; s < SCAN_STATES; ++s) {
        h[s] = fmaf(sfu_exp2(dt2 * a[s]), h[s], dtu * bs[s]);
        y = s == 0 ? cs[s] * h[s] : fmaf(cs[s], h[s], y);
    }
    return y;
}

// The block's shared memory, carved from one dynamic allocation (see scan_shared_floats).
struct ScanShared {
    float *dt;    // (cb, dt_row): dt * log2(e) and dt * u of each step, interleaved
    float *skip;  // (cb, row): D * u
    float *part;  // (cb * tiles, row): each thread's sum of C * h, thread tile * cb + channel
    float *bc;    // (tiles, bc_row): per step B then C of the tile's SCAN_STATES states
    int row, dt_row, bc_row;
};

__device__ __forceinline__ ScanShared scan_layout(float *base, int cb, int tiles, int chunk) {
    ScanShared s;
    s.row = chunk + SCAN_PAD;
    s.dt_row = 2 * chunk + SCAN_PAD;
    s.bc_row = 2 * SCAN_STATES * chunk + SCAN_PAD;
    s.dt = base;
    s.skip = s.dt + cb * s.dt_row;
    s.part = s.skip + cb * s.row;
    s.bc = s.part + tiles * cb * s.row;
    return s;
}

// Stage of one run of SCAN_VEC steps of channel `ch`: dt in log2 units (so that exp(dt A) =
// exp2(dt2 A) costs no multiply per state), dt * u and D * u. FULL: the run lies inside the
// row; otherwise steps outside it become the identity (dt = 0, u = 0).
template <typename T, bool WIDE, bool SOFTPLUS, bool FULL>
__device__ __forceinline__ void stage_run(const ScanArgs<T> &p, const ScanShared &s, int ch, int off, int64_t t0,
                                          int64_t offset, int64_t lo, int64_t hi, float bias, float d_skip) {
    float u[SCAN_VEC], dt[SCAN_VEC], pairs[2 * SCAN_VEC], skip[SCAN_VEC];
    load_run<T, WIDE>(p.u + offset, t0, lo, hi, FULL, u);
    load_run<T, WIDE>(p.delta + offset, t0, lo, hi, FULL, dt);
#pragma unroll
    for (int k = 0; k < SCAN_VEC; ++k) {
        const float v = dt[k] + bias;
        float dt2 = SOFTPLUS ? softplus_log2(v) : v * SCAN_LOG2E;
        if (!FULL && (t0 + k < lo || t0 + k >= hi)) dt2 = 0.0f;
        pairs[2 * k] = dt2;
        pairs[2 * k + 1] = (SOFTPLUS ? dt2 * SCAN_LN2 : v) * u[k];  // u is 0 off the row
        skip[k] = d_skip * u[k];
    }
    float4 *dt_out = reinterpret_cast<float4 *>(s.dt + ch * s.dt_row + 2 * off);
    float4 *skip_out = reinterpret_cast<float4 *>(s.skip + ch * s.row + off);
#pragma unroll
    for (int k = 0; k < SCAN_VEC / 2; ++k)
        dt_out[k] = make_float4(pairs[4 * k], pairs[4 * k + 1], pairs[4 * k + 2], pairs[4 * k + 3]);
    skip_out[0] = make_float4(skip[0], skip[1], skip[2], skip[3]);
    skip_out[1] = make_float4(skip[4], skip[5], skip[6], skip[7]);
}

// B and C of state n for one run, transposed into the tile's (step, state) order.
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void stage_bc_run(const ScanShared &s, const T *b_row, const T *c_row, int n, int off,
                                             int64_t t0, int64_t lo, int64_t hi) {
    float bv[SCAN_VEC], cv[SCAN_VEC];
    load_run<T, WIDE>(b_row, t0, lo, hi, FULL, bv);
    load_run<T, WIDE>(c_row, t0, lo, hi, FULL, cv);
    float *out = s.bc + n / SCAN_STATES * s.bc_row + off * 2 * SCAN_STATES + n % SCAN_STATES;
#pragma unroll
    for (int k = 0; k < SCAN_VEC; ++k) {
        out[k * 2 * SCAN_STATES] = bv[k];
        out[k * 2 * SCAN_STATES + SCAN_STATES] = cv[k];
    }
}

// Finish of one run of channel `ch`: y = D * u + the tiles' parts, gated, stored.
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void finish_run(const ScanArgs<T> &p, const ScanShared &s, int cb, int tiles, int ch,
                                           int off, int64_t t0, int64_t offset, int64_t lo, int64_t hi) {
    float y[SCAN_VEC];
    const float4 *skip = reinterpret_cast<const float4 *>(s.skip + ch * s.row + off);
    const float4 skip_lo = skip[0], skip_hi = skip[1];
    y[0] = skip_lo.x, y[1] = skip_lo.y, y[2] = skip_lo.z, y[3] = skip_lo.w;
    y[4] = skip_hi.x, y[5] = skip_hi.y, y[6] = skip_hi.z, y[7] = skip_hi.w;
    const float4 *part = reinterpret_cast<const float4 *>(s.part + ch * s.row + off);
    for (int tile = 0; tile < tiles; ++tile, part += cb * s.row / 4) {
        const float4 lo4 = part[0], hi4 = part[1];
        y[0] += lo4.x, y[1] += lo4.y, y[2] += lo4.z, y[3] += lo4.w;
        y[4] += hi4.x, y[5] += hi4.y, y[6] += hi4.z, y[7] += hi4.w;
    }
    if (p.z != nullptr) {
        float z[SCAN_VEC];
        load_run<T, WIDE>(p.z + offset, t0, lo, hi, FULL, z);
#pragma unroll
        for (int k = 0; k < SCAN_VEC; ++k) y[k] *= silu_fma(z[k]);
    }
    store_run<T, WIDE>(p.y + offset, t0, lo, hi, FULL, y);
}

// SOFTPLUS: dt = softplus(delta + delta_bias), fixed at compile time.
template <typename T, bool WIDE, bool SOFTPLUS>
__global__ void __launch_bounds__(SCAN_MAX_THREADS) selective_scan_kernel(ScanArgs<T> p) {
    extern __shared__ __align__(16) float scan_shared[];
    const int cb = p.block_channels, tiles = p.state_tiles, chunk = p.chunk;
    const int runs = chunk / SCAN_VEC, runs_log2 = __ffs(runs) - 1;  // chunk is a power of two
    const ScanShared s = scan_layout(scan_shared, cb, tiles, chunk);

    // The block's (row, group, channel tile), channel tiles fastest.
    const int group_channels = p.channels / p.groups;
    const int channel_tiles = (group_channels + cb - 1) / cb;
    const int channel_tile = static_cast<int>(blockIdx.x % channel_tiles);
    const int group = static_cast<int>(blockIdx.x / channel_tiles % p.groups);
    const int64_t row = blockIdx.x / channel_tiles / p.groups;
    const int ch0 = group * group_channels + channel_tile * cb;
    const int live = min(cb, group_channels - channel_tile * cb);  // channels of the block that exist
    const int nstate = p.nstate, np = tiles * SCAN_STATES, tid = threadIdx.x;
    int64_t batch = row, lo = 0, hi = p.length;
    if (p.seq_starts != nullptr) {
        batch = 0;
        // Clamped into the row so that bad offsets (the Java API rejects them) stay in bounds.
        lo = min(max(static_cast<int64_t>(p.seq_starts[row]), int64_t{0}), p.length);
        hi = min(max(static_cast<int64_t>(p.seq_starts[row + 1]), lo), p.length);
    }
    const int64_t seq0 = (batch * p.channels + ch0) * p.length;  // channel ch0's row of u, delta, z, y
    const T *b_rows = p.b + (batch * p.groups + group) * nstate * p.length;
    const T *c_rows = p.c + (batch * p.groups + group) * nstate * p.length;

    // This thread's states: channel `mine` of the block, states n0 .. n0+SCAN_STATES-1. States
    // past N (and channels past the group) are A = 0, B = C = 0, h = 0: they stay 0.
    const int mine = tid % cb, tile = tid / cb, n0 = tile * SCAN_STATES;
    const int64_t state_row = (row * p.channels + ch0 + mine) * nstate;
    float h[SCAN_STATES], a[SCAN_STATES];
#pragma unroll
    for (int k = 0; k < SCAN_STATES; ++k) {
        const bool real = mine < live && n0 + k < nstate;
        a[k] = real ? p.a[static_cast<int64_t>(ch0 + mine) * nstate + n0 + k] : 0.0f;
        h[k] = real && p.initial_state != nullptr ? p.initial_state[state_row + n0 + k] : 0.0f;
    }

    // Chunks start on a multiple of `chunk` (a multiple of every vector width) at or before lo.
    for (int64_t base = lo / chunk * chunk; base < hi; base += chunk) {
        const bool full = base >= lo && base + chunk <= hi;

        // Stage: items (channel, run), runs fastest for coalesced rows; channels past the group
        // are staged as empty rows.
        for (int item = tid; item < cb * runs; item += blockDim.x) {
            const int ch = item >> runs_log2, off = (item & (runs - 1)) * SCAN_VEC;
            const bool real = ch < live;
            const int64_t t0 = base + off, offset = seq0 + static_cast<int64_t>(ch) * p.length;
            const float bias = real && p.delta_bias != nullptr ? p.delta_bias[ch0 + ch] : 0.0f;
            const float d_skip = real && p.d != nullptr ? p.d[ch0 + ch] : 0.0f;
            if (full && real)
                stage_run<T, WIDE, SOFTPLUS, true>(p, s, ch, off, t0, offset, lo, hi, bias, d_skip);
            else
                stage_run<T, WIDE, SOFTPLUS, false>(p, s, ch, off, t0, offset, lo, real ? hi : lo, bias, d_skip);
        }
        // B and C: items (state, run), runs fastest for coalesced rows; states past N are staged
        // as 0.
        for (int item = tid; item < np * runs; item += blockDim.x) {
            const int n = item >> runs_log2, off = (item & (runs - 1)) * SCAN_VEC;
            const bool real = n < nstate;
            const int64_t t0 = base + off, offset = static_cast<int64_t>(real ? n : 0) * p.length;
            if (full && real)
                stage_bc_run<T, WIDE, true>(s, b_rows + offset, c_rows + offset, n, off, t0, lo, hi);
            else
                stage_bc_run<T, WIDE, false>(s, b_rows + offset, c_rows + offset, n, off, t0, lo, real ? hi : lo);
        }
        __syncthreads();

        // Recur: four steps per pass. Each step reads its (dt2, dtu) pair and the tile's B and C
        // as float4s at fixed offsets from pointers that advance once per pass.
        {
            const float4 *dt_in = reinterpret_cast<const float4 *>(s.dt + mine * s.dt_row);
            const float4 *bc_in = reinterpret_cast<const float4 *>(s.bc + tile * s.bc_row);
            float4 *part_out = reinterpret_cast<float4 *>(s.part + tid * s.row);
            const float4 *const part_end = part_out + chunk / 4;
            for (; part_out != part_end; ++part_out, dt_in += 2, bc_in += 8) {
                const float4 d01 = dt_in[0], d23 = dt_in[1];
                float4 y;
                y.x = recur_step(h, a, d01.x, d01.y, bc_in[0], bc_in[1]);
                y.y = recur_step(h, a, d01.z, d01.w, bc_in[2], bc_in[3]);
                y.z = recur_step(h, a, d23.x, d23.y, bc_in[4], bc_in[5]);
                y.w = recur_step(h, a, d23.z, d23.w, bc_in[6], bc_in[7]);
                *part_out = y;
            }
        }
        __syncthreads();

        // Finish: the same items as the stage, so each thread reads back the D * u it wrote.
        for (int item = tid; item < live * runs; item += blockDim.x) {
            const int ch = item >> runs_log2, off = (item & (runs - 1)) * SCAN_VEC;
            const int64_t t0 = base + off, offset = seq0 + static_cast<int64_t>(ch) * p.length;
            if (full)
                finish_run<T, WIDE, true>(p, s, cb, tiles, ch, off, t0, offset, lo, hi);
            else
                finish_run<T, WIDE, false>(p, s, cb, tiles, ch, off, t0, offset, lo, hi);
        }
    }

    if (p.final_state != nullptr && mine < live) {
#pragma unroll
        for (int k = 0; k < SCAN_STATES; ++k)
            if (n0 + k < nstate) p.final_state[state_row + n0 + k] = h[k];
    }
}

}  // namespace isthmus
