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
//   stage     every (channel, run of SCAN_VEC steps) once, by one thread: dt2 = dt * log2(e) and
//             dt2 * u into shared memory, D * u kept in that thread's registers; and the group's
//             B and C for the chunk as fp32, once for all the block's channels;
//   recur     each thread runs its states through the chunk, SCAN_VEC steps a pass, writing its
//             part of sum_n C*h. The state is carried as h * log2(e) (scaled on the way in and
//             out), so that its input dt2 * u * B needs no ln(2);
//   finish    the thread that staged a run sums its parts, y = ln(2) * sum + D * u, gates and
//             stores it.
// The launcher keeps chunk <= SCAN_VEC * state_tiles, so that a block's runs are at most its
// threads: each thread stages and finishes one fixed run (or none), whose row, bias and D it
// reads once before the first chunk. Steps outside the row (a chunk's head before the sequence
// start, its tail past the end) are staged as dt = 0, the identity map of h, so the recurrence
// never tests a step; only the stage and the finish of a partial chunk do. h never leaves
// registers; only the final state is written.
#pragma once

#include <string.h>

#include <type_traits>

#include "scan_common.cuh"

namespace isthmus {

constexpr int SCAN_MAX_THREADS = 128;
constexpr int SCAN_STATES = 4;  // states per thread: one float4 of B and of C per step
constexpr int SCAN_VEC = 8;     // steps per stage and finish run (16 bytes of a 16-bit row) and per recurrence pass
constexpr int SCAN_PAD = 4;     // floats after each row of shared memory (bank spread)
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

// Shared memory of one block in floats: per channel a row of (dt2, dtu) pairs, per thread a row
// of C * h parts, then per state tile the chunk's B and C. Every row ends in SCAN_PAD spare
// floats so that rows read by neighbouring lanes start on different banks.
__host__ __device__ constexpr int64_t scan_shared_floats(int block_channels, int state_tiles, int chunk) {
    return static_cast<int64_t>(block_channels) * (2 * chunk + SCAN_PAD) +
           static_cast<int64_t>(state_tiles) * block_channels * (chunk + SCAN_PAD) +
           static_cast<int64_t>(state_tiles) * (2 * SCAN_STATES * chunk + SCAN_PAD);
}

// Two fp32 as the 32 bits of a pair of 16-bit values (one paired conversion), the first low.
template <typename T> __device__ __forceinline__ uint32_t pack_pair(float lo, float hi) {
    uint32_t bits;
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
        const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);
        memcpy(&bits, &pair, sizeof(bits));
    } else {
        const __half2 pair = __floats2half2_rn(lo, hi);
        memcpy(&bits, &pair, sizeof(bits));
    }
    return bits;
}

// 16 bytes to global memory in one instruction: nvcc splits a uint4 or float4 store into words
// where it cannot prove the address 16-byte aligned, as here (the launcher checks it).
__device__ __forceinline__ void store16(void *p, uint4 v) {
#ifdef __CUDA_ARCH__
    asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};" ::"l"(__cvta_generic_to_global(p)), "r"(v.x), "r"(v.y),
                 "r"(v.z), "r"(v.w)
                 : "memory");
#else
    memcpy(p, &v, sizeof(v));
#endif
}

// Steps t0 .. t0+SCAN_VEC-1 of a row as fp32, those outside [lo, hi) as 0. FULL says the
// whole run lies inside. WIDE: 16-byte loads; the caller guarantees t0 is a multiple of the
// vector width, the row is 16-byte aligned and L is a multiple of the width, so a vector that
// touches [lo, hi) lies inside the row.
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void load_run(const T *row, int64_t t0, int64_t lo, int64_t hi, float (&out)[SCAN_VEC]) {
    constexpr int W = WIDE ? 16 / sizeof(T) : 1;
    // The run's steps in [lo, hi) are k_lo <= k < k_hi: 32-bit tests against constant k.
    const int k_lo = FULL ? 0 : static_cast<int>(min(max(lo - t0, int64_t{0}), int64_t{SCAN_VEC}));
    const int k_hi = FULL ? SCAN_VEC : static_cast<int>(min(max(hi - t0, int64_t{0}), int64_t{SCAN_VEC}));
#pragma unroll
    for (int j = 0; j < SCAN_VEC / W; ++j) {
        if (FULL || (j * W < k_hi && j * W + W > k_lo)) {
            const Vec<T, W> v = *reinterpret_cast<const Vec<T, W> *>(row + t0 + j * W);
#pragma unroll
            for (int i = 0; i < W; ++i) out[j * W + i] = to_float(v.v[i]);
        } else {
#pragma unroll
            for (int i = 0; i < W; ++i) out[j * W + i] = 0.0f;
        }
    }
    if (!FULL) {
#pragma unroll
        for (int k = 0; k < SCAN_VEC; ++k)
            if (k < k_lo || k >= k_hi) out[k] = 0.0f;
    }
}

// Writes the steps of [lo, hi) among t0 .. t0+SCAN_VEC-1; whole vectors where they fit (16-bit
// types as 32-bit words of packed pairs).
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void store_run(T *row, int64_t t0, int64_t lo, int64_t hi, const float (&in)[SCAN_VEC]) {
    constexpr int W = WIDE ? 16 / sizeof(T) : 1;
    const int k_lo = FULL ? 0 : static_cast<int>(min(max(lo - t0, int64_t{0}), int64_t{SCAN_VEC}));
    const int k_hi = FULL ? SCAN_VEC : static_cast<int>(min(max(hi - t0, int64_t{0}), int64_t{SCAN_VEC}));
#pragma unroll
    for (int j = 0; j < SCAN_VEC / W; ++j) {
        T *at = row + t0 + j * W;
        const float *v = in + j * W;
        if (FULL || (j * W >= k_lo && j * W + W <= k_hi)) {
            if constexpr (W == 1) {
                at[0] = from_float<T>(v[0]);
            } else if constexpr (sizeof(T) == 2) {
                store16(at, make_uint4(pack_pair<T>(v[0], v[1]), pack_pair<T>(v[2], v[3]), pack_pair<T>(v[4], v[5]),
                                       pack_pair<T>(v[6], v[7])));
            } else {
                store16(at, make_uint4(__float_as_uint(v[0]), __float_as_uint(v[1]), __float_as_uint(v[2]),
                                       __float_as_uint(v[3])));
            }
        } else {
#pragma unroll
            for (int i = 0; i < W; ++i)
                if (j * W + i >= k_lo && j * W + i < k_hi) at[i] = from_float<T>(v[i]);
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
    s.part = s.dt + cb * s.dt_row;
    s.bc = s.part + tiles * cb * s.row;
    return s;
}

// Stage of one run of SCAN_VEC steps of one channel: dt2 = dt * log2(e) (so that exp(dt A) =
// exp2(dt2 A) costs no multiply per state) and dt2 * u into `out`, D * u into `skip`. bias2 is
// delta_bias * log2(e). FULL: the run lies inside the row; otherwise steps outside it become the
// identity (dt = 0, u = 0).
template <typename T, bool WIDE, bool SOFTPLUS, bool FULL>
__device__ __forceinline__ void stage_run(const T *u_row, const T *delta_row, float *out, int64_t t0, int64_t lo,
                                          int64_t hi, float bias2, float d_skip, float (&skip)[SCAN_VEC]) {
    float u[SCAN_VEC], dt[SCAN_VEC], pairs[2 * SCAN_VEC];
    load_run<T, WIDE, FULL>(u_row, t0, lo, hi, u);
    load_run<T, WIDE, FULL>(delta_row, t0, lo, hi, dt);
#pragma unroll
    for (int k = 0; k < SCAN_VEC; ++k) {
        const float x2 = fmaf(dt[k], SCAN_LOG2E, bias2);  // (delta + bias) log2(e)
        float dt2 = SOFTPLUS ? softplus_log2(x2) : x2;
        if (!FULL && (t0 + k < lo || t0 + k >= hi)) dt2 = 0.0f;
        pairs[2 * k] = dt2;
        pairs[2 * k + 1] = dt2 * u[k];  // u is 0 off the row
        skip[k] = d_skip * u[k];
    }
    float4 *dt_out = reinterpret_cast<float4 *>(out);
#pragma unroll
    for (int k = 0; k < SCAN_VEC / 2; ++k)
        dt_out[k] = make_float4(pairs[4 * k], pairs[4 * k + 1], pairs[4 * k + 2], pairs[4 * k + 3]);
}

// B or C (`rows`) of the tile's SCAN_STATES states for one run, transposed into the tile's
// (step, state) order at `out`: one float4 per step, every 2 * SCAN_STATES floats. States past N
// are 0.
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void stage_bc_run(float *out, const T *rows, int64_t length, int nstate, int tile,
                                             int64_t t0, int64_t lo, int64_t hi) {
    float v[SCAN_STATES][SCAN_VEC];
#pragma unroll
    for (int k = 0; k < SCAN_STATES; ++k) {
        const int n = tile * SCAN_STATES + k;
        const bool real = FULL || n < nstate;
        load_run<T, WIDE, FULL>(rows + static_cast<int64_t>(real ? n : 0) * length, t0, lo, real ? hi : lo, v[k]);
    }
    float4 *out4 = reinterpret_cast<float4 *>(out);
#pragma unroll
    for (int j = 0; j < SCAN_VEC; ++j) out4[2 * j] = make_float4(v[0][j], v[1][j], v[2][j], v[3][j]);
}

// y += one tile's parts of a run (two float4s).
__device__ __forceinline__ void add_part(float (&y)[SCAN_VEC], const float *part) {
    const float4 lo4 = reinterpret_cast<const float4 *>(part)[0], hi4 = reinterpret_cast<const float4 *>(part)[1];
    y[0] += lo4.x, y[1] += lo4.y, y[2] += lo4.z, y[3] += lo4.w;
    y[4] += hi4.x, y[5] += hi4.y, y[6] += hi4.z, y[7] += hi4.w;
}

// Finish of one run of one channel: y = D * u + the tiles' parts, gated, stored. `part`: the
// run's parts of the channel's first tile; the next tile's lie `part_stride` floats on.
template <typename T, bool WIDE, bool FULL>
__device__ __forceinline__ void finish_run(const T *z_row, T *y_row, const float *part, int part_stride, int tiles,
                                           int64_t t0, int64_t lo, int64_t hi, const float (&skip)[SCAN_VEC]) {
    float y[SCAN_VEC];
#pragma unroll
    for (int k = 0; k < SCAN_VEC; ++k) y[k] = -0.0f;  // x + -0 is x: the first add is free
    // The first four tiles (all of N = 13..16) in line, the rest one by one.
    int tile = 0;
    if (tiles >= 4) {
#pragma unroll
        for (; tile < 4; ++tile, part += part_stride) add_part(y, part);
    }
#pragma unroll 1
    for (; tile < tiles; ++tile, part += part_stride) add_part(y, part);
#pragma unroll
    for (int k = 0; k < SCAN_VEC; ++k) y[k] = fmaf(y[k], SCAN_LN2, skip[k]);  // the state's log2(e) units off
    if (z_row != nullptr) {
        float z[SCAN_VEC];
        load_run<T, WIDE, FULL>(z_row, t0, lo, hi, z);
#pragma unroll
        for (int k = 0; k < SCAN_VEC; ++k) y[k] *= silu_fma(z[k]);
    }
    store_run<T, WIDE, FULL>(y_row, t0, lo, hi, y);
}

// SOFTPLUS: dt = softplus(delta + delta_bias), fixed at compile time.
template <typename T, bool WIDE, bool SOFTPLUS>
__global__ void __launch_bounds__(SCAN_MAX_THREADS, 4) selective_scan_kernel(ScanArgs<T> p) {
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
    const int nstate = p.nstate, tid = threadIdx.x;
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
        h[k] = real && p.initial_state != nullptr ? p.initial_state[state_row + n0 + k] * SCAN_LOG2E : 0.0f;
    }

    // This thread's run, staged and finished in every chunk: channel `run_ch` of the block, steps
    // run_off .. run_off+SCAN_VEC-1 of each chunk (runs fastest, for coalesced rows). Channels
    // past the group are staged as empty rows and never finished.
    const bool stager = tid < cb * runs;
    const int run_ch = tid >> runs_log2, run_off = (tid & (runs - 1)) * SCAN_VEC;
    const bool run_live = stager && run_ch < live;
    const int64_t run_row = seq0 + static_cast<int64_t>(run_ch) * p.length;
    const T *u_row = p.u + run_row, *delta_row = p.delta + run_row, *z_row = p.z != nullptr ? p.z + run_row : nullptr;
    T *y_row = p.y + run_row;
    const float bias2 = run_live && p.delta_bias != nullptr ? p.delta_bias[ch0 + run_ch] * SCAN_LOG2E : 0.0f;
    const float d_skip = run_live && p.d != nullptr ? p.d[ch0 + run_ch] : 0.0f;
    float *const dt_stage = s.dt + run_ch * s.dt_row + 2 * run_off;
    const float *const part_finish = s.part + run_ch * s.row + run_off;
    const int bc_items = tiles * runs;

    // Chunks start on a multiple of `chunk` (a multiple of every vector width) at or before lo.
    for (int64_t base = lo / chunk * chunk; base < hi; base += chunk) {
        const bool full = base >= lo && base + chunk <= hi;
        const int64_t t0 = base + run_off;
        float skip[SCAN_VEC];
        if (stager) {
            const int64_t end = run_live ? hi : lo;  // channels past the group: no step in the row
            if (full && run_live)
                stage_run<T, WIDE, SOFTPLUS, true>(u_row, delta_row, dt_stage, t0, lo, hi, bias2, d_skip, skip);
            else
                stage_run<T, WIDE, SOFTPLUS, false>(u_row, delta_row, dt_stage, t0, lo, end, bias2, d_skip, skip);
        }
        // B and C: items (matrix, state tile, run), runs fastest for coalesced rows.
        for (int item = tid; item < 2 * bc_items; item += blockDim.x) {
            const int c_item = item >= bc_items, bc_tile = (item - c_item * bc_items) >> runs_log2;
            const int off = (item & (runs - 1)) * SCAN_VEC;
            float *out = s.bc + bc_tile * s.bc_row + off * 2 * SCAN_STATES + c_item * SCAN_STATES;
            const T *rows = c_item ? c_rows : b_rows;
            if (full && (bc_tile + 1) * SCAN_STATES <= nstate)
                stage_bc_run<T, WIDE, true>(out, rows, p.length, nstate, bc_tile, base + off, lo, hi);
            else
                stage_bc_run<T, WIDE, false>(out, rows, p.length, nstate, bc_tile, base + off, lo, hi);
        }
        __syncthreads();

        // Recur: SCAN_VEC steps per pass. Each step reads its (dt2, dtu) pair and the tile's B and
        // C as float4s at fixed offsets from pointers that advance once per pass.
        {
            const float4 *dt_in = reinterpret_cast<const float4 *>(s.dt + mine * s.dt_row);
            const float4 *bc_in = reinterpret_cast<const float4 *>(s.bc + tile * s.bc_row);
            float4 *part_out = reinterpret_cast<float4 *>(s.part + tid * s.row);
            const float4 *const part_end = part_out + chunk / 4;
            for (; part_out != part_end; part_out += 2, dt_in += 4, bc_in += 16) {
                const float4 d01 = dt_in[0], d23 = dt_in[1], d45 = dt_in[2], d67 = dt_in[3];
                float4 y0, y1;
                y0.x = recur_step(h, a, d01.x, d01.y, bc_in[0], bc_in[1]);
                y0.y = recur_step(h, a, d01.z, d01.w, bc_in[2], bc_in[3]);
                y0.z = recur_step(h, a, d23.x, d23.y, bc_in[4], bc_in[5]);
                y0.w = recur_step(h, a, d23.z, d23.w, bc_in[6], bc_in[7]);
                y1.x = recur_step(h, a, d45.x, d45.y, bc_in[8], bc_in[9]);
                y1.y = recur_step(h, a, d45.z, d45.w, bc_in[10], bc_in[11]);
                y1.z = recur_step(h, a, d67.x, d67.y, bc_in[12], bc_in[13]);
                y1.w = recur_step(h, a, d67.z, d67.w, bc_in[14], bc_in[15]);
                part_out[0] = y0;
                part_out[1] = y1;
            }
        }
        __syncthreads();

        // Finish: the run this thread staged, with the D * u it kept.
        if (run_live) {
            if (full)
                finish_run<T, WIDE, true>(z_row, y_row, part_finish, cb * s.row, tiles, t0, lo, hi, skip);
            else
                finish_run<T, WIDE, false>(z_row, y_row, part_finish, cb * s.row, tiles, t0, lo, hi, skip);
        }
    }

    if (p.final_state != nullptr && mine < live) {
#pragma unroll
        for (int k = 0; k < SCAN_STATES; ++k)
            if (n0 + k < nstate) p.final_state[state_row + n0 + k] = h[k] * SCAN_LN2;
    }
}

}  // namespace isthmus
