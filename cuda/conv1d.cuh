// Causal depthwise conv1d, the short convolution in front of Mamba's scan. Per (batch, channel),
// with width W and the W-1 inputs before t = 0 taken from an initial conv state (or zeros):
//
//   out[t] = bias + sum_{k<W} weight[k] * x[t - (W-1) + k]     (then silu if asked)
//
// The conv state of a channel is its last W-1 inputs, oldest first: (B, D, W-1).
#pragma once

#include "scan_common.cuh"

namespace isthmus {

constexpr int CONV_MAX_WIDTH = 8;

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
};

// x of the channel at step s, s >= -(W-1): before 0 it comes from the initial state.
template <typename T>
__device__ __forceinline__ float conv_input(const ConvArgs<T> &p, int64_t channel_row, int64_t s) {
    if (s >= 0) return to_float(p.x[channel_row * p.length + s]);
    if (p.initial_state == nullptr) return 0.0f;
    return to_float(p.initial_state[channel_row * (p.width - 1) + (p.width - 1) + s]);
}

// One thread per output element (batch, channel, t); neighbouring threads share inputs in L1.
template <typename T>
__global__ void causal_conv1d_kernel(ConvArgs<T> p) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= p.batch * p.channels * p.length) return;
    const int64_t t = i % p.length;
    const int64_t channel_row = i / p.length;  // batch * D + channel
    const int ch = static_cast<int>(channel_row % p.channels);
    float acc = p.bias != nullptr ? to_float(p.bias[ch]) : 0.0f;
    for (int k = 0; k < p.width; ++k)
        acc += to_float(p.weight[static_cast<int64_t>(ch) * p.width + k]) * conv_input(p, channel_row, t - (p.width - 1) + k);
    p.out[i] = from_float<T>(p.silu ? silu(acc) : acc);
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
// out may be x itself: each thread reads its x before writing its out.
template <typename T>
__global__ void causal_conv1d_update_kernel(ConvArgs<T> p) {
    const int64_t channel_row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (channel_row >= p.batch * p.channels) return;
    const int ch = static_cast<int>(channel_row % p.channels);
    T *state = p.final_state + channel_row * (p.width - 1);
    float window[CONV_MAX_WIDTH];  // the W inputs oldest first; the last is the new token
#pragma unroll
    for (int k = 0; k < CONV_MAX_WIDTH; ++k)
        window[k] = k < p.width - 1 ? to_float(state[k]) : k == p.width - 1 ? to_float(p.x[channel_row]) : 0.0f;
    float acc = p.bias != nullptr ? to_float(p.bias[ch]) : 0.0f;
#pragma unroll
    for (int k = 0; k < CONV_MAX_WIDTH; ++k)
        if (k < p.width) acc += to_float(p.weight[static_cast<int64_t>(ch) * p.width + k]) * window[k];
#pragma unroll
    for (int k = 0; k < CONV_MAX_WIDTH - 1; ++k)
        if (k < p.width - 1) state[k] = from_float<T>(window[k + 1]);
    p.out[channel_row] = from_float<T>(p.silu ? silu(acc) : acc);
}

}  // namespace isthmus
