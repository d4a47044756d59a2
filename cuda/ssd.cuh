// The chunked SSD scan of Mamba-2 (Dao & Gu 2024, section 7, "the SSD algorithm"), one block per
// (sequence, head, tile of head channels), walking its sequence chunk by chunk with the state
// carried in shared memory. For a chunk of Q steps t = 0..Q-1 and a_t = dt'_t A (dt' the clamped
// softplus of dt + bias), with the within-chunk cumulative sums cum_t = a_0 + ... + a_t:
//
//   G       = C B^T                                         (Q x Q)      C, B: (Q x N)
//   M[t][s] = G[t][s] exp(cum_t - cum_s) dt'_s  for s <= t, else 0       the masked decays, "L o C B^T"
//   Y       = M X + diag(exp(cum_t)) C S^T + D X            (Q x P)      X: (Q x P); S: the state (P x N)
//   S      <- exp(cum_{Q-1}) S + X~^T B,  X~[s] = exp(cum_{Q-1} - cum_s) dt'_s X[s]
//
// which is the recurrence S_t = exp(a_t) S_{t-1} + dt'_t x_t B_t^T, y_t = S_t C_t + D x_t unrolled
// over the chunk: the quadratic (attention-like) form within it, the linear one between chunks.
// The four products run on the tensor cores for f16/bf16 (cuda/ssd_gemm.cuh), in fp32 on the CUDA
// cores for f32; the state itself is kept in fp32 and rounded to the input type only as the operand
// of C S^T (as mamba_ssm does).
//
// Each sequence is chunked from its own first step, so a chunk never straddles a sequence
// boundary of a packed batch: the decay across a boundary is zero by construction, wherever the
// boundaries fall, and each sequence starts from its own initial state and ends in its own final
// state. Steps past the end of a chunk are zero (dt' = 0, x = B = C = 0): they neither decay nor
// feed the state.
#pragma once

#include "common.cuh"
#include "scan_common.cuh"
#include "ssd_gemm.cuh"

namespace isthmus {

constexpr int SSD_THREADS = 256;  // one block an SM at most (its shared memory): the register budget is not the limit
constexpr int SSD_MAX_CHUNK = 64;  // the within-chunk cumulative sum takes two steps per lane of one warp
constexpr int SSD_PAD = 8;         // operand rows padded by 16 bytes (f16) or 32 (f32): aligned, fewer bank conflicts
constexpr int SSD_FPAD = 4;        // fp32 result rows

template <typename T>
struct SsdArgs {
    T *y;
    float *final_states;  // (rows, H, P, N) or null
    const T *x;           // (B, L, H, P)
    const T *dt;          // (B, L, H)
    const T *b, *c;       // (B, L, G, N)
    const float *a, *d, *dt_bias;  // (H); d and dt_bias may be null
    const float *initial_states;   // (rows, H, P, N) or null
    const int32_t *seq_starts;     // (rows + 1) for a packed batch, or null
    int64_t length;
    int32_t heads, head_dim, groups, nstate;
    bool dt_softplus;
    float dt_min, dt_max;
    int32_t chunk, p_tile, n_pad;  // the tiling: chunk in {16, 32, 64}, p_tile and n_pad multiples of 16
    int32_t p_tiles;
};

// Where each buffer lies in the block's dynamic shared memory, in bytes from its start.
struct SsdLayout {
    int ldn, ldp, ldq;     // operand rows: N, P and Q wide (+ SSD_PAD)
    int ldg, ldy, ldh;     // fp32 rows of G (Q wide), Y (P wide) and the state (N wide), + SSD_FPAD
    int c, b, x, xt, m, s_op, g, y, s, cum, step, bytes;  // under 2^31 (the launcher keeps them under the device's limit)

    __host__ __device__ SsdLayout(int chunk, int p_tile, int n_pad, int operand_bytes) {
        ldn = n_pad + SSD_PAD;
        ldp = p_tile + SSD_PAD;
        ldq = chunk + SSD_PAD;
        ldg = chunk + SSD_FPAD;
        ldy = p_tile + SSD_FPAD;
        ldh = n_pad + SSD_FPAD;
        int at = 0;
        auto take = [&at](int64_t n) {
            const int start = at;
            at += static_cast<int>((n + 15) / 16 * 16);
            return start;
        };
        c = take(static_cast<int64_t>(chunk) * ldn * operand_bytes);
        b = take(static_cast<int64_t>(chunk) * ldn * operand_bytes);
        x = take(static_cast<int64_t>(chunk) * ldp * operand_bytes);
        xt = take(static_cast<int64_t>(p_tile) * ldq * operand_bytes);
        m = take(static_cast<int64_t>(chunk) * ldq * operand_bytes);
        s_op = take(static_cast<int64_t>(p_tile) * ldn * operand_bytes);
        g = take(static_cast<int64_t>(chunk) * ldg * 4);
        y = take(static_cast<int64_t>(chunk) * ldy * 4);
        s = take(static_cast<int64_t>(p_tile) * ldh * 4);
        cum = take(static_cast<int64_t>(chunk) * 4);
        step = take(static_cast<int64_t>(chunk) * 4);
        bytes = at;
    }
};

// dt' = clamp(softplus(dt + bias), dt_min, dt_max) (the softplus if asked), as mamba_ssm orders it.
__device__ __forceinline__ float ssd_time_step(float dt, float bias, bool softplus_on, float dt_min, float dt_max) {
    float v = dt + bias;
    if (softplus_on) v = softplus(v);
    return fminf(fmaxf(v, dt_min), dt_max);
}

template <typename T>
__global__ void __launch_bounds__(SSD_THREADS, 1) ssd_scan_kernel(SsdArgs<T> p) {
    using O = T;  // the products' operands: f16/bf16 on the tensor cores, fp32 on the CUDA cores
    extern __shared__ __align__(16) unsigned char smem[];  // the name the host emulation defines (dynamic_shared.cpp)
    const SsdLayout lay(p.chunk, p.p_tile, p.n_pad, sizeof(O));
    O *cs = reinterpret_cast<O *>(smem + lay.c);
    O *bs = reinterpret_cast<O *>(smem + lay.b);
    O *xs = reinterpret_cast<O *>(smem + lay.x);
    O *xts = reinterpret_cast<O *>(smem + lay.xt);
    O *ms = reinterpret_cast<O *>(smem + lay.m);
    O *s_op = reinterpret_cast<O *>(smem + lay.s_op);
    float *gf = reinterpret_cast<float *>(smem + lay.g);
    float *yf = reinterpret_cast<float *>(smem + lay.y);
    float *sf = reinterpret_cast<float *>(smem + lay.s);
    float *cum = reinterpret_cast<float *>(smem + lay.cum);  // base 2: sum of a_t log2(e)
    float *step = reinterpret_cast<float *>(smem + lay.step);

    const int Q = p.chunk, PT = p.p_tile, NP = p.n_pad, N = p.nstate, P = p.head_dim, H = p.heads;
    const int pt = blockIdx.x % p.p_tiles;
    const int h = blockIdx.x / p.p_tiles % H;
    const int64_t row = blockIdx.x / p.p_tiles / H;
    const int g = h / (H / p.groups);
    const int p0 = pt * PT;
    const int64_t batch_index = p.seq_starts == nullptr ? row : 0;
    const int64_t lo = p.seq_starts == nullptr ? 0 : p.seq_starts[row];
    const int64_t hi = p.seq_starts == nullptr ? p.length : p.seq_starts[row + 1];
    const float a2 = p.a[h] * SCAN_LOG2E;
    const float bias = p.dt_bias == nullptr ? 0.0f : p.dt_bias[h];
    const float skip = p.d == nullptr ? 0.0f : p.d[h];

    // The state (P x N) of this tile, from the initial state or zero, in fp32 and as an operand.
    const int64_t state_base = ((row * H + h) * P + p0) * N;
    for (int i = threadIdx.x; i < PT * NP; i += blockDim.x) {
        const int q = i / NP, n = i % NP;
        float v = 0.0f;
        if (p.initial_states != nullptr && p0 + q < P && n < N) v = p.initial_states[state_base + q * N + n];
        sf[q * lay.ldh + n] = v;
        s_op[q * lay.ldn + n] = from_float<O>(v);
    }

    for (int64_t t0 = lo; t0 < hi; t0 += Q) {
        const int steps = static_cast<int>(hi - t0 < Q ? hi - t0 : Q);
        const int64_t token0 = batch_index * p.length + t0;
        // Phase 0: the chunk's C, B and x tiles (zero past its end, past N and past P), and in warp
        // 0 its time steps and their cumulative decay (a scan of two steps per lane).
        for (int i = threadIdx.x; i < Q * NP; i += blockDim.x) {
            const int t = i / NP, n = i % NP;
            float cv = 0.0f, bv = 0.0f;
            if (t < steps && n < N) {
                const int64_t at = ((token0 + t) * p.groups + g) * N + n;
                cv = to_float(p.c[at]);
                bv = to_float(p.b[at]);
            }
            cs[t * lay.ldn + n] = from_float<O>(cv);
            bs[t * lay.ldn + n] = from_float<O>(bv);
        }
        for (int i = threadIdx.x; i < Q * PT; i += blockDim.x) {
            const int t = i / PT, q = i % PT;
            float v = 0.0f;
            if (t < steps && p0 + q < P) v = to_float(p.x[((token0 + t) * H + h) * P + p0 + q]);
            xs[t * lay.ldp + q] = from_float<O>(v);
        }
        if (threadIdx.x < 32) {
            const int lane = threadIdx.x;
            float d0 = 0.0f, d1 = 0.0f;
            if (2 * lane < steps) d0 = ssd_time_step(to_float(p.dt[(token0 + 2 * lane) * H + h]), bias, p.dt_softplus, p.dt_min, p.dt_max);
            if (2 * lane + 1 < steps) d1 = ssd_time_step(to_float(p.dt[(token0 + 2 * lane + 1) * H + h]), bias, p.dt_softplus, p.dt_min, p.dt_max);
            const float pair = (d0 + d1) * a2;
            float inclusive = pair;
#pragma unroll
            for (int offset = 1; offset < 32; offset <<= 1) {
                const float other = __shfl_up_sync(0xffffffffu, inclusive, offset);
                if (lane >= offset) inclusive += other;
            }
            if (2 * lane < Q) {
                step[2 * lane] = d0;
                step[2 * lane + 1] = d1;
                cum[2 * lane] = inclusive - d1 * a2;
                cum[2 * lane + 1] = inclusive;
            }
        }
        __syncthreads();
        // Phase A: G = C B^T and Y = C S^T (S the state entering the chunk).
        block_gemm<false, false>(gf, lay.ldg, cs, lay.ldn, bs, lay.ldn, Q, Q, NP);
        block_gemm<false, false>(yf, lay.ldy, cs, lay.ldn, s_op, lay.ldn, Q, PT, NP);
        __syncthreads();
        // Phase B: the decays. Y's state part by exp(cum_t); M = G masked and decayed; X~; S decayed
        // over the whole chunk. cum is non-increasing (A < 0, dt' >= 0), so each exponent is <= 0.
        const float total = cum[Q - 1];
        for (int i = threadIdx.x; i < Q * PT; i += blockDim.x) {
            const int t = i / PT, q = i % PT;
            yf[t * lay.ldy + q] *= sfu_exp2(cum[t]);
            const float xv = to_float(xs[t * lay.ldp + q]);
            xts[q * lay.ldq + t] = from_float<O>(xv * sfu_exp2(total - cum[t]) * step[t]);
        }
        for (int i = threadIdx.x; i < Q * Q; i += blockDim.x) {
            const int t = i / Q, s = i % Q;
            const float v = s <= t ? gf[t * lay.ldg + s] * sfu_exp2(cum[t] - cum[s]) * step[s] : 0.0f;
            ms[t * lay.ldq + s] = from_float<O>(v);
        }
        const float chunk_decay = sfu_exp2(total);
        for (int i = threadIdx.x; i < PT * NP; i += blockDim.x) sf[i / NP * lay.ldh + i % NP] *= chunk_decay;
        __syncthreads();
        // Phase C: Y += M X (the within-chunk part) and S += X~^T B (the chunk's contribution).
        block_gemm<true, true>(yf, lay.ldy, ms, lay.ldq, xs, lay.ldp, Q, PT, Q);
        block_gemm<true, true>(sf, lay.ldh, xts, lay.ldq, bs, lay.ldn, PT, NP, Q);
        __syncthreads();
        // Phase D: y = Y + D x, and the new state as the next chunk's operand.
        for (int i = threadIdx.x; i < Q * PT; i += blockDim.x) {
            const int t = i / PT, q = i % PT;
            if (t < steps && p0 + q < P)
                p.y[((token0 + t) * H + h) * P + p0 + q] = from_float<T>(yf[t * lay.ldy + q] + skip * to_float(xs[t * lay.ldp + q]));
        }
        for (int i = threadIdx.x; i < PT * NP; i += blockDim.x)
            s_op[i / NP * lay.ldn + i % NP] = from_float<O>(sf[i / NP * lay.ldh + i % NP]);
        __syncthreads();
    }

    if (p.final_states != nullptr)
        for (int i = threadIdx.x; i < PT * NP; i += blockDim.x) {
            const int q = i / NP, n = i % NP;
            if (p0 + q < P && n < N) p.final_states[state_base + q * N + n] = sf[q * lay.ldh + n];
        }
}

}  // namespace isthmus
