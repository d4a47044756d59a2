// Launcher of the KV append + RoPE kernel (cuda/attention_append.cuh).
#include "../cuda/attention_append.cuh"
#include "status.h"

using namespace isthmus;

namespace {

constexpr int kAppendThreads = 256;

template <typename T>
void launch_quantized(int cache_type, void *q, void *k_cache, void *v_cache, float *k_scales, float *v_scales, const void *k,
                      const void *v, const int32_t *block_table, const int32_t *cached_lens, const int32_t *query_starts,
                      const int32_t *positions, int batch, int total_tokens, int max_blocks, int num_blocks, int block_size,
                      int q_heads, int kv_heads, int head_dim, const RopeSpec &rope, cudaStream_t stream) {
    if (cache_type == ISTHMUS_KV_INT8)
        ISTHMUS_LAUNCH(total_tokens, kAppendThreads, 0, stream, attention_append_quantized_kernel<T, int8_t>)(
            static_cast<T *>(q), static_cast<int8_t *>(k_cache), static_cast<int8_t *>(v_cache), k_scales, v_scales,
            static_cast<const T *>(k), static_cast<const T *>(v), block_table, cached_lens, query_starts, positions, batch,
            max_blocks, num_blocks, block_size, q_heads, kv_heads, head_dim, rope);
    else
        ISTHMUS_LAUNCH(total_tokens, kAppendThreads, 0, stream, attention_append_quantized_kernel<T, Fp8E4m3>)(
            static_cast<T *>(q), static_cast<Fp8E4m3 *>(k_cache), static_cast<Fp8E4m3 *>(v_cache), k_scales, v_scales,
            static_cast<const T *>(k), static_cast<const T *>(v), block_table, cached_lens, query_starts, positions, batch,
            max_blocks, num_blocks, block_size, q_heads, kv_heads, head_dim, rope);
}

template <typename T>
void launch(void *q, void *k_cache, void *v_cache, const void *k, const void *v, const int32_t *block_table,
            const int32_t *cached_lens, const int32_t *query_starts, const int32_t *positions, int batch, int total_tokens,
            int max_blocks, int num_blocks, int block_size, int q_heads, int kv_heads, int head_dim, const RopeSpec &rope,
            cudaStream_t stream) {
    ISTHMUS_LAUNCH(total_tokens, kAppendThreads, 0, stream, attention_append_kernel<T>)(
        static_cast<T *>(q), static_cast<T *>(k_cache), static_cast<T *>(v_cache), static_cast<const T *>(k),
        static_cast<const T *>(v), block_table, cached_lens, query_starts, positions, batch, max_blocks, num_blocks, block_size,
        q_heads, kv_heads, head_dim, rope);
}

}  // namespace

extern "C" int isthmus_attention_append(void *q, void *k_cache, void *v_cache, const void *k, const void *v,
                                        const int32_t *block_table, const int32_t *cached_lens, const int32_t *query_starts,
                                        const int32_t *positions, int32_t batch, int32_t total_tokens,
                                        int32_t max_blocks_per_seq, int32_t num_blocks, int32_t block_size, int32_t q_heads,
                                        int32_t kv_heads, int32_t head_dim, int32_t rope_mode, float rope_base,
                                        float position_scale, float llama3_factor, float llama3_low_freq_factor,
                                        float llama3_high_freq_factor, int32_t llama3_original_max_positions,
                                        const float *longrope_factors, int32_t longrope_original_max_positions,
                                        float longrope_attention_factor, int32_t cache_type, float *k_scales, float *v_scales,
                                        int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(k_cache != nullptr && v_cache != nullptr && k != nullptr && v != nullptr && block_table != nullptr &&
                        cached_lens != nullptr && query_starts != nullptr,
                    "isthmus_attention_append: the caches, k, v and the batch tables must not be NULL");
    ISTHMUS_REQUIRE(rope_mode >= 0 && rope_mode <= 2, "isthmus_attention_append: rope_mode %d is not 0, 1 or 2", rope_mode);
    ISTHMUS_REQUIRE(rope_mode == 0 || q != nullptr, "isthmus_attention_append: RoPE needs q");
    ISTHMUS_REQUIRE(rope_mode == 0 || (rope_base > 1.0f && isfinite(rope_base) && position_scale > 0.0f && isfinite(position_scale)),
                    "isthmus_attention_append: rope_base must be > 1 and position_scale > 0");
    ISTHMUS_REQUIRE(rope_mode == 0 || (isfinite(llama3_factor) && llama3_factor >= 1.0f),
                    "isthmus_attention_append: llama3_factor must be finite and >= 1, got %g", llama3_factor);
    ISTHMUS_REQUIRE(rope_mode == 0 || llama3_factor == 1.0f ||
                        (llama3_low_freq_factor > 0.0f && isfinite(llama3_high_freq_factor) &&
                         llama3_high_freq_factor > llama3_low_freq_factor && llama3_original_max_positions >= 1),
                    "isthmus_attention_append: llama3 scaling needs 0 < low_freq_factor < high_freq_factor (finite) and "
                    "original_max_positions >= 1, got %g, %g, %d",
                    llama3_low_freq_factor, llama3_high_freq_factor, llama3_original_max_positions);
    ISTHMUS_REQUIRE(batch >= 1 && total_tokens >= 0, "isthmus_attention_append: batch %d / total_tokens %d out of range", batch,
                    total_tokens);
    ISTHMUS_REQUIRE(max_blocks_per_seq >= 1 && num_blocks >= 1 && block_size >= 1,
                    "isthmus_attention_append: max_blocks_per_seq, num_blocks and block_size must be >= 1");
    ISTHMUS_REQUIRE(kv_heads >= 1 && q_heads >= 1 && q_heads % kv_heads == 0,
                    "isthmus_attention_append: q_heads %d is not a positive multiple of kv_heads %d", q_heads, kv_heads);
    ISTHMUS_REQUIRE(head_dim >= 2 && head_dim % 2 == 0, "isthmus_attention_append: head_dim %d must be even", head_dim);
    const bool longrope = rope_mode != 0 && longrope_factors != nullptr;
    ISTHMUS_REQUIRE(!longrope || (llama3_factor == 1.0f && head_dim / 2 <= kMaxRopePairs && longrope_original_max_positions >= 1 &&
                                  isfinite(longrope_attention_factor) && longrope_attention_factor > 0.0f),
                    "isthmus_attention_append: longrope needs llama3_factor 1, head_dim <= %d, original_max_positions >= 1 and a "
                    "finite attention factor > 0, got %g, %d, %d, %g",
                    2 * kMaxRopePairs, llama3_factor, head_dim, longrope_original_max_positions, longrope_attention_factor);
    RopeSpec rope{rope_mode, rope_base, position_scale, llama3_factor, llama3_low_freq_factor, llama3_high_freq_factor,
                  llama3_original_max_positions, longrope ? 1 : 0, longrope ? longrope_original_max_positions : INT32_MAX,
                  longrope ? longrope_attention_factor : 1.0f, {}};
    for (int j = 0; longrope && j < head_dim / 2; j++) {
        for (int set = 0; set < 2; set++) {
            const float e = longrope_factors[set * (head_dim / 2) + j];
            ISTHMUS_REQUIRE(isfinite(e) && e > 0.0f, "isthmus_attention_append: longrope factor %d of set %d is %g; must be finite and > 0",
                            j, set, e);
            rope.longrope_factors[set][j] = e;
        }
    }
    ISTHMUS_REQUIRE(cache_type >= ISTHMUS_KV_MODEL_DTYPE && cache_type <= ISTHMUS_KV_FP8_E4M3,
                    "isthmus_attention_append: cache_type %d is not 0 (model dtype), 1 (int8) or 2 (fp8 e4m3)", cache_type);
    ISTHMUS_REQUIRE(cache_type == ISTHMUS_KV_MODEL_DTYPE || (k_scales != nullptr && v_scales != nullptr),
                    "isthmus_attention_append: a quantized cache needs k_scales and v_scales");
    ISTHMUS_REQUIRE(cache_type == ISTHMUS_KV_MODEL_DTYPE || head_dim <= 32 * kAppendMaxPerLane,
                    "isthmus_attention_append: a quantized cache takes head_dim up to %d, got %d", 32 * kAppendMaxPerLane, head_dim);
    if (total_tokens == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    if (cache_type != ISTHMUS_KV_MODEL_DTYPE) {
        switch (dtype) {
            case ISTHMUS_F32:
                launch_quantized<float>(cache_type, q, k_cache, v_cache, k_scales, v_scales, k, v, block_table, cached_lens, query_starts,
                                        positions, batch, total_tokens, max_blocks_per_seq, num_blocks, block_size, q_heads, kv_heads,
                                        head_dim, rope, s);
                break;
            case ISTHMUS_F16:
                launch_quantized<__half>(cache_type, q, k_cache, v_cache, k_scales, v_scales, k, v, block_table, cached_lens, query_starts,
                                         positions, batch, total_tokens, max_blocks_per_seq, num_blocks, block_size, q_heads, kv_heads,
                                         head_dim, rope, s);
                break;
            case ISTHMUS_BF16:
                launch_quantized<__nv_bfloat16>(cache_type, q, k_cache, v_cache, k_scales, v_scales, k, v, block_table, cached_lens,
                                                query_starts, positions, batch, total_tokens, max_blocks_per_seq, num_blocks, block_size,
                                                q_heads, kv_heads, head_dim, rope, s);
                break;
            default:
                return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_attention_append: dtype %s is not f32, f16 or bf16",
                            dtype_name(dtype));
        }
        ISTHMUS_CHECK_LAUNCH("isthmus_attention_append");
        return ISTHMUS_OK;
    }
    switch (dtype) {
        case ISTHMUS_F32:
            launch<float>(q, k_cache, v_cache, k, v, block_table, cached_lens, query_starts, positions, batch, total_tokens,
                          max_blocks_per_seq, num_blocks, block_size, q_heads, kv_heads, head_dim, rope, s);
            break;
        case ISTHMUS_F16:
            launch<__half>(q, k_cache, v_cache, k, v, block_table, cached_lens, query_starts, positions, batch, total_tokens,
                           max_blocks_per_seq, num_blocks, block_size, q_heads, kv_heads, head_dim, rope, s);
            break;
        case ISTHMUS_BF16:
            launch<__nv_bfloat16>(q, k_cache, v_cache, k, v, block_table, cached_lens, query_starts, positions, batch,
                                  total_tokens, max_blocks_per_seq, num_blocks, block_size, q_heads, kv_heads, head_dim, rope, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_attention_append: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_attention_append");
    return ISTHMUS_OK;
}
