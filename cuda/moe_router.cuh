// MoE router and routing statistics. One warp per token for the top-k: the token's fp32 scores
// sit in shared memory, and each of the k picks is a warp-wide argmax in which the lower expert
// index wins a tie. Statistics run in one block in a fixed order, so they are bit-reproducible.
#pragma once

#include "common.cuh"

namespace isthmus {

constexpr int MOE_MAX_EXPERTS = 1024;
constexpr int MOE_MAX_GROUPS = 64;
constexpr int MOE_MAX_TOP_K = 32;
constexpr int MOE_ROUTER_WARPS = 4;

enum MoeScoring { MOE_SOFTMAX = 0, MOE_SIGMOID = 1 };

// The better of two (value, index) candidates: the larger value, the lower index on a tie.
// An index of -1 means "no candidate" and always loses.
__device__ __forceinline__ void better_of(float &value, int &index, float other_value, int other_index) {
    if (other_index < 0) return;
    if (index < 0 || other_value > value || (other_value == value && other_index < index)) {
        value = other_value;
        index = other_index;
    }
}

// Warp-wide argmax of (value, index); every lane returns the winner's index (-1 if none).
__device__ __forceinline__ int warp_argmax(float value, int index) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) {
        const float v = __shfl_xor_sync(0xffffffffu, value, offset);
        const int i = __shfl_xor_sync(0xffffffffu, index, offset);
        better_of(value, index, v, i);
    }
    return index;
}

// weights, ids: (tokens, k); logits: (tokens, experts); bias: (experts) or NULL.
// score = softmax(z) or sigmoid(z); choice = score + bias picks the experts, score weights them.
// Grouped (groups > 1): a group scores the sum of its best two choices (its best one when it
// holds one expert); only the best top_groups groups stay eligible. Slots come out best first.
template <typename T>
__global__ void moe_topk_kernel(float *__restrict__ weights, int32_t *__restrict__ ids,
                                const T *__restrict__ logits, const float *__restrict__ bias,
                                int64_t tokens, int experts, int k, int scoring, bool renormalize,
                                int groups, int top_groups, float routed_scaling) {
    __shared__ float score_all[MOE_ROUTER_WARPS][MOE_MAX_EXPERTS];
    __shared__ float choice_all[MOE_ROUTER_WARPS][MOE_MAX_EXPERTS];
    __shared__ bool taken_all[MOE_ROUTER_WARPS][MOE_MAX_EXPERTS];
    __shared__ float group_all[MOE_ROUTER_WARPS][MOE_MAX_GROUPS];
    const int warp = threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    const int64_t token = static_cast<int64_t>(blockIdx.x) * MOE_ROUTER_WARPS + warp;
    if (token >= tokens) return;  // whole warps leave together; only warp barriers follow
    float *score = score_all[warp];
    float *choice = choice_all[warp];
    bool *taken = taken_all[warp];
    float *group_score = group_all[warp];
    const T *z = logits + token * experts;

    float max_z = -INFINITY;
    for (int e = lane; e < experts; e += 32) max_z = fmaxf(max_z, to_float(z[e]));
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) max_z = fmaxf(max_z, __shfl_xor_sync(0xffffffffu, max_z, offset));
    float sum = 0.0f;
    for (int e = lane; e < experts; e += 32) {
        const float ze = to_float(z[e]);
        const float s = scoring == MOE_SOFTMAX ? expf(ze - max_z) : 1.0f / (1.0f + expf(-ze));
        score[e] = s;
        sum += s;
    }
    sum = warp_sum(sum);
    for (int e = lane; e < experts; e += 32) {  // each lane touches only its own entries here
        if (scoring == MOE_SOFTMAX) score[e] /= sum;
        choice[e] = score[e] + (bias != nullptr ? bias[e] : 0.0f);
        taken[e] = false;
    }
    __syncwarp();

    if (groups > 1) {
        const int size = experts / groups;
        for (int g = lane; g < groups; g += 32) {
            float best = -INFINITY, second = -INFINITY;
            for (int e = g * size; e < (g + 1) * size; ++e) {
                const float c = choice[e];
                if (c > best) {
                    second = best;
                    best = c;
                } else if (c > second) {
                    second = c;
                }
            }
            group_score[g] = size == 1 ? best : best + second;
        }
        __syncwarp();
        // Keep the best top_groups groups (ties to the lower group), as a bit mask every lane holds.
        unsigned long long picked = 0;  // bit g set when group g is kept (groups <= 64)
        for (int round = 0; round < top_groups; ++round) {
            float value = 0.0f;
            int index = -1;
            for (int g = lane; g < groups; g += 32)
                if (!((picked >> g) & 1ull)) better_of(value, index, group_score[g], g);
            index = warp_argmax(value, index);
            picked |= 1ull << index;
        }
        for (int e = lane; e < experts; e += 32) taken[e] = !((picked >> (e / size)) & 1ull);
        __syncwarp();
    }

    // k picks; the chosen expert of each pick is known to every lane.
    float chosen_score = 0.0f;  // lane s < k keeps slot s's score
    int chosen_id = 0;
    float total = 0.0f;
    for (int slot = 0; slot < k; ++slot) {
        float value = 0.0f;
        int index = -1;
        for (int e = lane; e < experts; e += 32)
            if (!taken[e]) better_of(value, index, choice[e], e);
        index = warp_argmax(value, index);
        __syncwarp();
        if (lane == 0) taken[index] = true;
        __syncwarp();
        const float s = score[index];
        total += s;
        if (lane == slot) {
            chosen_score = s;
            chosen_id = index;
        }
    }
    if (lane < k) {
        const float w = (renormalize ? chosen_score / total : chosen_score) * routed_scaling;
        weights[token * k + lane] = w;
        ids[token * k + lane] = chosen_id;
    }
}

// Routing statistics over the whole batch, one block of MOE_MAX_EXPERTS threads, fixed order:
//   mean_prob[e] = (1/T) sum_t P(t, e), P = softmax(z) or sigmoid(z) / sum_j sigmoid(z_j)
//   aux_loss     = E * sum_e f_e * mean_prob[e], f_e = counts[e] / (T * k)
//   z_loss       = (1/T) sum_t logsumexp(z_t)^2
// Tokens go in chunks: warps find each token's normaliser, then thread e adds P(t, e) for the
// chunk's tokens in token order, and thread 0 adds the logsumexp squares in token order.
template <typename T>
__global__ void moe_router_stats_kernel(float *__restrict__ mean_prob, float *__restrict__ aux_loss,
                                        float *__restrict__ z_loss, const T *__restrict__ logits,
                                        const int32_t *__restrict__ counts, int64_t tokens, int experts,
                                        int k, int scoring) {
    constexpr int CHUNK = 256;
    __shared__ float shift[CHUNK];       // max logit (softmax) of each token in the chunk
    __shared__ float normaliser[CHUNK];  // sum of exp(z - shift) or of sigmoid(z)
    __shared__ float lse[CHUNK];
    __shared__ float products[MOE_MAX_EXPERTS];
    const int lane = threadIdx.x % 32;
    const int warp = threadIdx.x / 32;
    const int warps = blockDim.x / 32;
    const int e = threadIdx.x;
    float prob_sum = 0.0f;
    float z_sum = 0.0f;
    for (int64_t t0 = 0; t0 < tokens; t0 += CHUNK) {
        const int n = tokens - t0 < CHUNK ? static_cast<int>(tokens - t0) : CHUNK;
        for (int i = warp; i < n; i += warps) {
            const T *z = logits + (t0 + i) * experts;
            float m = -INFINITY;
            for (int j = lane; j < experts; j += 32) m = fmaxf(m, to_float(z[j]));
#pragma unroll
            for (int offset = 16; offset > 0; offset >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
            float ex = 0.0f, sig = 0.0f;
            for (int j = lane; j < experts; j += 32) {
                const float zj = to_float(z[j]);
                ex += expf(zj - m);
                sig += 1.0f / (1.0f + expf(-zj));
            }
            ex = warp_sum(ex);
            sig = warp_sum(sig);
            if (lane == 0) {
                shift[i] = m;
                normaliser[i] = scoring == MOE_SOFTMAX ? ex : sig;
                lse[i] = m + logf(ex);
            }
        }
        __syncthreads();
        if (e < experts) {
            for (int i = 0; i < n; ++i) {
                const float zi = to_float(logits[(t0 + i) * experts + e]);
                const float p = scoring == MOE_SOFTMAX ? expf(zi - shift[i]) : 1.0f / (1.0f + expf(-zi));
                prob_sum += p / normaliser[i];
            }
        }
        if (threadIdx.x == 0)
            for (int i = 0; i < n; ++i) z_sum += lse[i] * lse[i];
        __syncthreads();  // the chunk's shared values are reused by the next chunk
    }
    const float inv_tokens = tokens > 0 ? 1.0f / static_cast<float>(tokens) : 0.0f;
    const float inv_pairs = tokens > 0 ? 1.0f / (static_cast<float>(tokens) * static_cast<float>(k)) : 0.0f;
    if (e < experts) {
        const float p = prob_sum * inv_tokens;
        mean_prob[e] = p;
        products[e] = static_cast<float>(counts[e]) * inv_pairs * p;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        float dot = 0.0f;
        for (int j = 0; j < experts; ++j) dot += products[j];
        *aux_loss = static_cast<float>(experts) * dot;
        *z_loss = z_sum * inv_tokens;
    }
}

}  // namespace isthmus
