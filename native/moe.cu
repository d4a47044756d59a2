// Launchers of the MoE router, align, combine and statistics kernels (cuda/moe_router.cuh,
// cuda/moe_dispatch.cuh): check the arguments, launch on the caller's stream.
#include "../cuda/moe_dispatch.cuh"
#include "../cuda/moe_router.cuh"
#include "moe_common.h"
#include "status.h"

using namespace isthmus;

static_assert(MOE_MAX_EXPERTS == ISTHMUS_MOE_MAX_EXPERTS && MOE_MAX_TOP_K == ISTHMUS_MOE_MAX_TOP_K &&
                  MOE_MAX_GROUPS == ISTHMUS_MOE_MAX_GROUPS,
              "the router kernel's limits are the ABI's");

namespace {

template <typename T>
void launch_topk(float *weights, int32_t *ids, const void *logits, const float *bias, int64_t tokens, int experts,
                 int k, int scoring, bool renormalize, int groups, int top_groups, float scaling, cudaStream_t s) {
    const unsigned blocks = static_cast<unsigned>((tokens + MOE_ROUTER_WARPS - 1) / MOE_ROUTER_WARPS);
    ISTHMUS_LAUNCH(blocks, MOE_ROUTER_WARPS * 32, 0, s, moe_topk_kernel<T>)(weights, ids, static_cast<const T *>(logits), bias,
                                                               tokens, experts, k, scoring, renormalize, groups,
                                                               top_groups, scaling);
}

template <typename T>
void launch_combine(void *out, const void *slot_out, const int32_t *dropped, const void *shared, const void *residual,
                    int64_t tokens, int k, int64_t hidden, cudaStream_t s) {
    const int threads = 256;
    const int64_t blocks = std::min<int64_t>((tokens * hidden + threads - 1) / threads, 65535 * 16);
    ISTHMUS_LAUNCH(static_cast<unsigned>(blocks), threads, 0, s, moe_combine_kernel<T>)(
        static_cast<T *>(out), static_cast<const T *>(slot_out), dropped, static_cast<const T *>(shared),
        static_cast<const T *>(residual), tokens, k, hidden);
}

template <typename T>
void launch_stats(float *mean_prob, float *aux_loss, float *z_loss, const void *logits, const int32_t *counts,
                  int64_t tokens, int experts, int k, int scoring, cudaStream_t s) {
    ISTHMUS_LAUNCH(1, MOE_MAX_EXPERTS, 0, s, moe_router_stats_kernel<T>)(mean_prob, aux_loss, z_loss,
                                                             static_cast<const T *>(logits), counts, tokens,
                                                             experts, k, scoring);
}

}  // namespace

extern "C" int isthmus_moe_topk(float *weights, int32_t *ids, const void *logits, const float *bias, int64_t tokens,
                                int32_t experts, int32_t top_k, int32_t scoring, int32_t renormalize, int32_t groups,
                                int32_t top_groups, float routed_scaling, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(tokens >= 0 && tokens <= MOE_MAX_ROWS, "isthmus_moe_topk: tokens %lld out of range",
                    static_cast<long long>(tokens));
    ISTHMUS_REQUIRE(tokens == 0 || (weights != nullptr && ids != nullptr && logits != nullptr),
                    "isthmus_moe_topk: weights, ids and logits must not be NULL");
    if (int status = check_routing("isthmus_moe_topk", experts, top_k, groups, top_groups)) return status;
    ISTHMUS_REQUIRE(scoring == ISTHMUS_MOE_SOFTMAX || scoring == ISTHMUS_MOE_SIGMOID,
                    "isthmus_moe_topk: scoring %d is neither softmax (0) nor sigmoid (1)", scoring);
    ISTHMUS_REQUIRE(routed_scaling == routed_scaling, "isthmus_moe_topk: routed_scaling is NaN");
    if (tokens == 0) return ISTHMUS_OK;
    return with_float_type(dtype, "isthmus_moe_topk", [&](auto type) {
        launch_topk<decltype(type)>(weights, ids, logits, bias, tokens, experts, top_k, scoring, renormalize != 0,
                                    groups, top_groups, routed_scaling, static_cast<cudaStream_t>(stream));
        ISTHMUS_CHECK_LAUNCH("isthmus_moe_topk");
        return static_cast<int>(ISTHMUS_OK);
    });
}

extern "C" int isthmus_moe_align(int32_t *sorted_pairs, int32_t *tile_experts, int32_t *padded_total,
                                 int32_t *expert_counts, int32_t *dropped, const int32_t *ids, int64_t pairs,
                                 int32_t experts, int32_t tile, int32_t expert_capacity, int64_t capacity,
                                 void *stream) {
    clear_error();
    // With no pairs the pair-sized buffers are empty (and may be NULL); the total and counts are still written.
    ISTHMUS_REQUIRE(padded_total != nullptr && expert_counts != nullptr &&
                        (pairs == 0 ||
                         (sorted_pairs != nullptr && tile_experts != nullptr && dropped != nullptr && ids != nullptr)),
                    "isthmus_moe_align: no pointer may be NULL");
    ISTHMUS_REQUIRE(experts >= 1 && experts <= ISTHMUS_MOE_MAX_EXPERTS,
                    "isthmus_moe_align: experts %d out of [1, %d]", experts, ISTHMUS_MOE_MAX_EXPERTS);
    ISTHMUS_REQUIRE(tile >= 1 && tile <= 1024, "isthmus_moe_align: tile %d out of [1, 1024]", tile);
    ISTHMUS_REQUIRE(expert_capacity >= 0, "isthmus_moe_align: expert_capacity %d is negative", expert_capacity);
    ISTHMUS_REQUIRE(pairs >= 0 && pairs <= MOE_MAX_ROWS, "isthmus_moe_align: pairs %lld out of range",
                    static_cast<long long>(pairs));
    ISTHMUS_REQUIRE(capacity == align_capacity(pairs, experts, tile),
                    "isthmus_moe_align: capacity %lld, expected pairs + min(experts, pairs) * (tile - 1) = %lld",
                    static_cast<long long>(capacity), static_cast<long long>(align_capacity(pairs, experts, tile)));
    const int64_t tiles = (capacity + tile - 1) / tile;
    ISTHMUS_LAUNCH(1, MOE_ALIGN_THREADS, 3 * experts * sizeof(int32_t), static_cast<cudaStream_t>(stream), moe_align_kernel)(
        sorted_pairs, tile_experts, padded_total, expert_counts, dropped, ids, pairs, experts, tile, expert_capacity,
        capacity, tiles);
    ISTHMUS_CHECK_LAUNCH("isthmus_moe_align");
    return ISTHMUS_OK;
}

extern "C" int isthmus_moe_combine(void *out, const void *slot_out, const int32_t *dropped, const void *shared,
                                   const void *residual, int64_t tokens, int32_t top_k, int64_t hidden_size,
                                   int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(tokens >= 0 && top_k >= 1 && hidden_size >= 1,
                    "isthmus_moe_combine: tokens %lld, top_k %d, hidden_size %lld out of range",
                    static_cast<long long>(tokens), top_k, static_cast<long long>(hidden_size));
    ISTHMUS_REQUIRE(tokens == 0 || (out != nullptr && slot_out != nullptr),
                    "isthmus_moe_combine: out and slot_out must not be NULL");
    if (tokens == 0) return ISTHMUS_OK;
    return with_float_type(dtype, "isthmus_moe_combine", [&](auto type) {
        launch_combine<decltype(type)>(out, slot_out, dropped, shared, residual, tokens, top_k, hidden_size,
                                       static_cast<cudaStream_t>(stream));
        ISTHMUS_CHECK_LAUNCH("isthmus_moe_combine");
        return static_cast<int>(ISTHMUS_OK);
    });
}

extern "C" int isthmus_moe_router_stats(float *mean_prob, float *aux_loss, float *z_loss, const void *logits,
                                        const int32_t *expert_counts, int64_t tokens, int32_t experts, int32_t top_k,
                                        int32_t scoring, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(tokens >= 0 && tokens <= MOE_MAX_ROWS, "isthmus_moe_router_stats: tokens out of range");
    ISTHMUS_REQUIRE(mean_prob != nullptr && aux_loss != nullptr && z_loss != nullptr && expert_counts != nullptr &&
                        (tokens == 0 || logits != nullptr),
                    "isthmus_moe_router_stats: no pointer may be NULL");
    ISTHMUS_REQUIRE(experts >= 1 && experts <= ISTHMUS_MOE_MAX_EXPERTS && top_k >= 1 && top_k <= experts,
                    "isthmus_moe_router_stats: experts %d / top_k %d out of range", experts, top_k);
    ISTHMUS_REQUIRE(scoring == ISTHMUS_MOE_SOFTMAX || scoring == ISTHMUS_MOE_SIGMOID,
                    "isthmus_moe_router_stats: scoring %d is neither softmax (0) nor sigmoid (1)", scoring);
    return with_float_type(dtype, "isthmus_moe_router_stats", [&](auto type) {
        launch_stats<decltype(type)>(mean_prob, aux_loss, z_loss, logits, expert_counts, tokens, experts, top_k, scoring,
                                     static_cast<cudaStream_t>(stream));
        ISTHMUS_CHECK_LAUNCH("isthmus_moe_router_stats");
        return static_cast<int>(ISTHMUS_OK);
    });
}
