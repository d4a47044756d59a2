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
static_assert(MOE_ALIGN_CHUNK >= ISTHMUS_MOE_MAX_EXPERTS, "a chunk of dropped holds one count per expert");
static_assert((MOE_ALIGN_WARPS + 3) * ISTHMUS_MOE_MAX_EXPERTS * sizeof(int32_t) <= 48 * 1024,
              "the align kernels' dynamic shared memory needs no opt-in");

namespace {

template <typename T>
void launch_topk(float *weights, int32_t *ids, const void *logits, const float *bias, int64_t tokens, int experts,
                 int k, int scoring, bool renormalize, int groups, int top_groups, float scaling, cudaStream_t s) {
    const unsigned blocks = static_cast<unsigned>((tokens + MOE_ROUTER_WARPS - 1) / MOE_ROUTER_WARPS);
    ISTHMUS_LAUNCH(blocks, MOE_ROUTER_WARPS * 32, 0, s, moe_topk_kernel<T>)(weights, ids, static_cast<const T *>(logits), bias,
                                                               tokens, experts, k, scoring, renormalize, groups,
                                                               top_groups, scaling);
}

template <typename T, int N>
void launch_combine(void *out, const void *slot_out, const int32_t *dropped, const void *shared, const void *residual,
                    int64_t tokens, int k, int64_t hidden, cudaStream_t s) {
    // Up to 256 threads across a row's vectors and the rest of the block across rows.
    const int64_t vecs = hidden / N;
    const unsigned x = static_cast<unsigned>(std::min<int64_t>(256, (vecs + 31) / 32 * 32));
    const dim3 block(x, 256 / x);
    const dim3 grid(static_cast<unsigned>((vecs + x - 1) / x),
                    static_cast<unsigned>(std::min<int64_t>((tokens + block.y - 1) / block.y, 65535)));
    ISTHMUS_LAUNCH(grid, block, 0, s, moe_combine_kernel<T, N>)(
        static_cast<T *>(out), static_cast<const T *>(slot_out), dropped, static_cast<const T *>(shared),
        static_cast<const T *>(residual), tokens, k, hidden);
}

// 16-byte vectors when the row length and every pointer allow them, else one element at a time.
template <typename T>
void launch_combine_any_width(void *out, const void *slot_out, const int32_t *dropped, const void *shared,
                              const void *residual, int64_t tokens, int k, int64_t hidden, cudaStream_t s) {
    constexpr int wide = 16 / sizeof(T);
    bool vectorizable = hidden % wide == 0;
    for (const void *p : {static_cast<const void *>(out), slot_out, shared, residual})
        if (p != nullptr && !is_aligned(p, 16)) vectorizable = false;
    if (vectorizable)
        launch_combine<T, wide>(out, slot_out, dropped, shared, residual, tokens, k, hidden, s);
    else
        launch_combine<T, 1>(out, slot_out, dropped, shared, residual, tokens, k, hidden, s);
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
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (pairs <= MOE_ALIGN_CHUNK) {
        // One chunk (with no pairs an empty one, which still writes the zero counts): one launch.
        ISTHMUS_LAUNCH(1, MOE_ALIGN_THREADS, (MOE_ALIGN_WARPS + 3) * experts * sizeof(int32_t), s,
                       moe_align_one_chunk_kernel)(sorted_pairs, tile_experts, padded_total, expert_counts, dropped,
                                                   ids, pairs, experts, tile, expert_capacity, capacity, tiles);
    } else {
        // The first chunk takes the remainder.
        const int64_t chunks = (pairs + MOE_ALIGN_CHUNK - 1) / MOE_ALIGN_CHUNK;
        ISTHMUS_LAUNCH(static_cast<unsigned>(chunks), MOE_ALIGN_THREADS, experts * sizeof(int32_t), s,
                       moe_align_histogram_kernel)(dropped, expert_counts, ids, pairs, experts);
        ISTHMUS_LAUNCH((experts + MOE_ALIGN_THREADS - 1) / MOE_ALIGN_THREADS, MOE_ALIGN_THREADS, 0, s,
                       moe_align_scan_kernel)(dropped, expert_counts, pairs, experts, chunks);
        ISTHMUS_LAUNCH(static_cast<unsigned>(chunks), MOE_ALIGN_THREADS,
                       (MOE_ALIGN_WARPS + 2) * experts * sizeof(int32_t), s,
                       moe_align_scatter_kernel)(sorted_pairs, tile_experts, padded_total, dropped, expert_counts, ids,
                                                 pairs, experts, tile, expert_capacity, capacity, tiles);
    }
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
        launch_combine_any_width<decltype(type)>(out, slot_out, dropped, shared, residual, tokens, top_k, hidden_size,
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
