// Causal depthwise conv1d, the short convolution in front of Mamba's scan. Per (batch, channel),
// with width W and the W-1 inputs before t = 0 taken from an initial conv state (or zeros):
//
//   out[t] = bias + sum_{k<W} weight[k] * x[t - (W-1) + k]     (then silu if asked)
//
// The conv state of a channel is its last W-1 inputs, oldest first: (B, D, W-1).
//
// The conv moves 4 bytes per output in bf16 (x read, out written) and does W FMAs, so it reaches
// the memory floor only if each output costs a handful of instructions: a thread owns CONV_ITEMS
// consecutive outputs of one row, loads them as 16-byte vectors, keeps the W-1 inputs before them
// in registers beside them, and has its channel's weights and bias in registers. The kernels are
// instantiated per width so that the taps unroll into exactly W FMAs per output.
#pragma once

#include "scan_common.cuh"

namespace isthmus {

constexpr int CONV_MAX_WIDTH = 8;
// Outputs per thread: one 16-byte vector of f16/bf16, two of f32.
constexpr int CONV_ITEMS = 8;
// Most threads of a sequence block; they cover CONV_SEQUENCE_THREADS * CONV_ITEMS steps of one row.
constexpr int CONV_SEQUENCE_THREADS = 128;
// Most threads (= channels of one batch row) of an update block.
constexpr int CONV_UPDATE_THREADS = 256;

template <typename T> struct ConvArgs {
    T *out;                  // (B, D, L), or (B, D) for the update
    T *final_state;          // (B, D, W-1) or NULL; the rolling state for the update
    const T *x;              // (B, D, L), or (B, D) for the update
    const T *weight;         // (D, W)
    const T *bias;           // (D) or NULL
    const T *initial_state;  // (B, D, W-1) or NULL
    int64_t batch, length;
    int32_t channels, width;
    bool silu;
    bool vector;  // x and out 16-byte aligned and L a multiple of 16 / sizeof(T): whole tiles are vectors
};

// silu with an approximate division (a reciprocal and a multiply, where an IEEE division costs
// about ten instructions and a slow path); its 2 ulp are far below the outputs' rounding.
// Where 1 + exp(-x) overflows the result is -0, silu's limit.
__device__ __forceinline__ float fast_silu(float x) { return __fdividef(x, 1.0f + __expf(-x)); }

// x of the channel at step s, s >= -(W-1): before 0 it comes from the initial state.
template <typename T>
__device__ __forceinline__ float conv_input(const ConvArgs<T> &p, int64_t channel_row, int64_t s) {
    if (s >= 0) return to_float(p.x[channel_row * p.length + s]);
    if (p.initial_state == nullptr) return 0.0f;
    return to_float(p.initial_state[channel_row * (p.width - 1) + (p.width - 1) + s]);
}

// Steps t0 .. t0+CONV_ITEMS-1 of a row as fp32, 0 past its end. `vector`: the tile is whole and
// 16-byte aligned.
template <typename T>
__device__ __forceinline__ void load_tile(const T *row, int64_t t0, int64_t length, bool vector,
                                          float (&v)[CONV_ITEMS]) {
    constexpr int N = 16 / sizeof(T);
    if (vector) {
#pragma unroll
        for (int j = 0; j < CONV_ITEMS; j += N) {
            const Vec<T, N> q = *reinterpret_cast<const Vec<T, N> *>(row + t0 + j);
#pragma unroll
            for (int k = 0; k < N; ++k) v[j + k] = to_float(q.v[k]);
        }
    } else {
#pragma unroll
        for (int k = 0; k < CONV_ITEMS; ++k) v[k] = t0 + k < length ? to_float(row[t0 + k]) : 0.0f;
    }
}

// The counterpart of load_tile: steps past the row's end are not written.
template <typename T>
__device__ __forceinline__ void store_tile(T *row, int64_t t0, int64_t length, bool vector,
                                           const float (&v)[CONV_ITEMS]) {
    constexpr int N = 16 / sizeof(T);
    if (vector) {
#pragma unroll
        for (int j = 0; j < CONV_ITEMS; j += N) {
            Vec<T, N> q;
#pragma unroll
            for (int k = 0; k < N; ++k) q.v[k] = from_float<T>(v[j + k]);
            *reinterpret_cast<Vec<T, N> *>(row + t0 + j) = q;
        }
    } else {
#pragma unroll
        for (int k = 0; k < CONV_ITEMS; ++k)
            if (t0 + k < length) row[t0 + k] = from_float<T>(v[k]);
    }
}

// Grid: x tiles along L (blockDim.x threads of CONV_ITEMS steps each), y channels, z batch; y and
// z stride over what exceeds the grid's limit. The W-1 inputs before a tile are the end of the
// previous tile (the neighbouring thread's vector, so an L1 or L2 hit), or the initial state for
// the first tile. No division anywhere: rows and steps come from the block's coordinates.
template <typename T, int W>
__global__ void __launch_bounds__(CONV_SEQUENCE_THREADS) causal_conv1d_kernel(ConvArgs<T> p) {
    constexpr int H = W - 1;  // inputs before the tile that its outputs need
    const int64_t t0 = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) * CONV_ITEMS;
    if (t0 >= p.length) return;
    const bool vector = p.vector && t0 + CONV_ITEMS <= p.length;
    for (int64_t d = blockIdx.y; d < p.channels; d += gridDim.y) {
        float w[W];
#pragma unroll
        for (int k = 0; k < W; ++k) w[k] = to_float(p.weight[d * W + k]);
        const float bias = p.bias != nullptr ? to_float(p.bias[d]) : 0.0f;
        for (int64_t b = blockIdx.z; b < p.batch; b += gridDim.z) {
            const int64_t channel_row = b * p.channels + d;
            const T *x = p.x + channel_row * p.length;
            float window[H + CONV_ITEMS];  // inputs t0-H .. t0+CONV_ITEMS-1
            if constexpr (H > 0) {
                if (t0 > 0) {
                    float before[CONV_ITEMS];  // a whole tile, aligned where x's tiles are
                    load_tile(x, t0 - CONV_ITEMS, p.length, p.vector, before);
#pragma unroll
                    for (int j = 0; j < H; ++j) window[j] = before[CONV_ITEMS - H + j];
                } else {
#pragma unroll
                    for (int j = 0; j < H; ++j) window[j] = conv_input(p, channel_row, j - H);
                }
            }
            float tile[CONV_ITEMS];
            load_tile(x, t0, p.length, vector, tile);
#pragma unroll
            for (int i = 0; i < CONV_ITEMS; ++i) window[H + i] = tile[i];
#pragma unroll
            for (int i = 0; i < CONV_ITEMS; ++i) {
                float acc = bias;
#pragma unroll
                for (int k = 0; k < W; ++k) acc = fmaf(w[k], window[i + k], acc);
                tile[i] = p.silu ? fast_silu(acc) : acc;
            }
            store_tile(p.out + channel_row * p.length, t0, p.length, vector, tile);
        }
    }
}

// The final conv state: one thread per (batch, channel) reads its last W-1 inputs before writing
// any, so the final state may be the initial state itself (updated in place).
template <typename T>
__global__ void causal_conv1d_final_state_kernel(ConvArgs<T> p) {
    const int64_t channel_row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (channel_row >= p.batch * p.channels) return;
    float last[CONV_MAX_WIDTH - 1];
#pragma unroll
    for (int j = 0; j < CONV_MAX_WIDTH - 1; ++j)
        if (j < p.width - 1) last[j] = conv_input(p, channel_row, p.length - (p.width - 1) + j);
#pragma unroll
    for (int j = 0; j < CONV_MAX_WIDTH - 1; ++j)
        if (j < p.width - 1) p.final_state[channel_row * (p.width - 1) + j] = from_float<T>(last[j]);
}

// One new token per (batch, channel): out from the state and x, then the state rolls by one.
// Grid: x blocks of blockDim.x <= CONV_UPDATE_THREADS channels, y batch rows (striding past the
// grid's limit). A block's states are one contiguous run of count * (W-1) elements; it is read
// and written through shared memory so that consecutive threads touch consecutive elements both
// ways (read directly, a thread's W-1 elements sit W-1 apart from its neighbour's). out may be x
// itself: each thread reads its x before the barrier and writes its out after it.
template <typename T, int W>
__global__ void __launch_bounds__(CONV_UPDATE_THREADS) causal_conv1d_update_kernel(ConvArgs<T> p) {
    constexpr int H = W - 1;  // inputs in the state
    __shared__ T history[CONV_UPDATE_THREADS * (H > 0 ? H : 1)];
    __shared__ T tokens[CONV_UPDATE_THREADS];
    const int threads = blockDim.x;
    const int first = blockIdx.x * threads;  // the block's first channel
    const int count = min(threads, p.channels - first);
    const bool live = static_cast<int>(threadIdx.x) < count;
    float w[W];
    float bias = 0.0f;
    if (live) {
#pragma unroll
        for (int k = 0; k < W; ++k) w[k] = to_float(p.weight[static_cast<int64_t>(first + threadIdx.x) * W + k]);
        if (p.bias != nullptr) bias = to_float(p.bias[first + threadIdx.x]);
    }
    for (int64_t b = blockIdx.y; b < p.batch; b += gridDim.y) {
        const int64_t row0 = b * p.channels + first;
        T *state = p.final_state + row0 * H;
        __syncthreads();  // the previous row's history and tokens are no longer read
        if constexpr (H > 0)
            for (int e = threadIdx.x; e < count * H; e += threads) history[e] = state[e];
        if (live) tokens[threadIdx.x] = p.x[row0 + threadIdx.x];
        __syncthreads();
        if (live) {
            float acc = bias;
#pragma unroll
            for (int k = 0; k < H; ++k) acc = fmaf(w[k], to_float(history[threadIdx.x * H + k]), acc);
            acc = fmaf(w[H], to_float(tokens[threadIdx.x]), acc);
            p.out[row0 + threadIdx.x] = from_float<T>(p.silu ? fast_silu(acc) : acc);
        }
        // Element k of a channel's new state is its old element k+1, or the token for the last.
        if constexpr (H > 0)
            for (int e = threadIdx.x; e < count * H; e += threads)
                state[e] = e % H == H - 1 ? tokens[e / H] : history[e + 1];
    }
}

}  // namespace isthmus
