// Launchers of the attention kernels (cuda/attention_prefill.cuh on tensor cores for prefill,
// cuda/attention_decode.cuh on tensor cores for decode in f16/bf16 at head_dim 64/128 over pages
// of multiples of 16 tokens, cuda/attention.cuh for everything else) and of the log-sum-exp merge
// (cuda/attention_merge.cuh): check the arguments, pick the kernel and instantiation, launch on
// the caller's stream. With splits > 1 the caller's workspace receives the partials; the decode
// kernel merges them itself (the last block of each row group), after the other kernels the merge
// folds them into out and lse in a second launch on the same stream.
#include "../cuda/attention.cuh"
#include "../cuda/attention_decode.cuh"
#include "../cuda/attention_prefill.cuh"
#include "../cuda/attention_merge.cuh"
#include "device.h"
#include "status.h"

#include <mutex>
#include <type_traits>

using namespace isthmus;

namespace {

template <typename TOut, typename TPart>
void launch_merge(void *out, float *lse, const void *parts, const float *part_lse, int num_parts, int64_t rows,
                  int head_dim, cudaStream_t stream) {
    const unsigned blocks = static_cast<unsigned>((rows + kMergeRowsPerBlock - 1) / kMergeRowsPerBlock);
    constexpr int kVec = 16 / sizeof(TPart);  // one 16-byte load per part when the rows allow it
    if (head_dim % kVec == 0 && is_aligned(parts, 16))
        ISTHMUS_LAUNCH(blocks, kMergeRowsPerBlock * 32, 0, stream, attention_merge_kernel<TOut, TPart, kVec>)(
            static_cast<TOut *>(out), lse, static_cast<const TPart *>(parts), part_lse, num_parts, rows, head_dim);
    else
        ISTHMUS_LAUNCH(blocks, kMergeRowsPerBlock * 32, 0, stream, attention_merge_kernel<TOut, TPart, 1>)(
            static_cast<TOut *>(out), lse, static_cast<const TPart *>(parts), part_lse, num_parts, rows, head_dim);
}

template <typename TOut>
int merge_from(int32_t part_dtype, void *out, float *lse, const void *parts, const float *part_lse, int num_parts,
               int64_t rows, int head_dim, cudaStream_t stream) {
    switch (part_dtype) {
        case ISTHMUS_F32: launch_merge<TOut, float>(out, lse, parts, part_lse, num_parts, rows, head_dim, stream); break;
        case ISTHMUS_F16: launch_merge<TOut, __half>(out, lse, parts, part_lse, num_parts, rows, head_dim, stream); break;
        case ISTHMUS_BF16: launch_merge<TOut, __nv_bfloat16>(out, lse, parts, part_lse, num_parts, rows, head_dim, stream); break;
        default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_attention_merge: part dtype %s is not f32, f16 or bf16",
                             dtype_name(part_dtype));
    }
    return ISTHMUS_OK;
}

int merge_any(int32_t out_dtype, int32_t part_dtype, void *out, float *lse, const void *parts, const float *part_lse,
              int num_parts, int64_t rows, int head_dim, cudaStream_t stream) {
    switch (out_dtype) {
        case ISTHMUS_F32: return merge_from<float>(part_dtype, out, lse, parts, part_lse, num_parts, rows, head_dim, stream);
        case ISTHMUS_F16: return merge_from<__half>(part_dtype, out, lse, parts, part_lse, num_parts, rows, head_dim, stream);
        case ISTHMUS_BF16:
            return merge_from<__nv_bfloat16>(part_dtype, out, lse, parts, part_lse, num_parts, rows, head_dim, stream);
        default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_attention_merge: out dtype %s is not f32, f16 or bf16",
                             dtype_name(out_dtype));
    }
}

// The device attributes a launch depends on are read, and the kernels' attributes set, once per
// device (the first call that needs them), not at every launch: they cost a driver round trip
// each, and a launch inside a graph capture then makes no runtime call besides the launch.
// The device's opt-in maximum of dynamic shared memory per block (0 when it cannot be read).
int shared_memory_optin(int device) { return device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(device); }

// The tensor-core kernel takes batches with at least an mma tile's worth of new tokens in some
// sequence, in f16/bf16, when the device grants its shared memory (head_dim 256 needs 198 KiB:
// sm_80/86/89 take the CUDA-core path there), the outputs allow its 4-byte (out) and 8-byte
// (partials) stores and a cache block holds fewer than 2^31 elements.
constexpr int kPrefillMinTokens = 16;

template <typename T, int D, typename C> bool prefill_fits(const AttentionParams &p, int batch, int max_new_tokens, int device) {
    if constexpr (sizeof(T) != 2) {
        return false;
    } else {
        if (max_new_tokens < kPrefillMinTokens || static_cast<int64_t>(batch) * p.q_heads > 65535) return false;
        if (p.splits == 1 ? !is_aligned(p.out, 4) : !is_aligned(p.partial_out, 8)) return false;
        if (static_cast<int64_t>(p.block_size) * p.kv_heads * D > INT32_MAX) return false;  // a block's elements in 32 bits
        return PrefillLayout<T, D, C>::kBytes <= static_cast<size_t>(shared_memory_optin(device));
    }
}

// *merged: whether the kernel launched merges the splits itself. C: the cache's element (T, or a
// quantized code, cuda/kv_quant.cuh).
template <typename T, int D, typename C>
int launch_attention(const AttentionParams &p, int batch, int max_new_tokens, cudaStream_t stream, bool *merged) {
    *merged = false;
    const int device = current_device();
    if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "isthmus_attention: no current device below %d", kMaxDevices);
    if constexpr (sizeof(T) == 2) {
        if (prefill_fits<T, D, C>(p, batch, max_new_tokens, device)) {
            constexpr size_t smem = PrefillLayout<T, D, C>::kBytes;
            const int status = allow_shared_memory<attention_prefill_kernel<T, D, C>>(smem, device, "isthmus_attention");
            if (status != ISTHMUS_OK) return status;
            const dim3 grid(static_cast<unsigned>((max_new_tokens + kPrefillRows - 1) / kPrefillRows),
                            static_cast<unsigned>(batch * p.q_heads), static_cast<unsigned>(p.splits));
            ISTHMUS_LAUNCH(grid, kPrefillThreads, smem, stream, attention_prefill_kernel<T, D, C>)(p);
            return ISTHMUS_OK;
        }
    }
    if constexpr (decode_fast_path<T, D>()) {
        constexpr size_t smem = DecodeLayout<T, D, C>::kBytes;
        // a step's 16 keys then lie in one block; sm_80 and later grant the 96 KiB (99 KiB on sm_86/89)
        if (p.block_size % kDecodeStep == 0 && smem <= static_cast<size_t>(shared_memory_optin(device))) {
            const int status = allow_shared_memory<attention_decode_kernel<T, D, C>>(smem, device, "isthmus_attention");
            if (status != ISTHMUS_OK) return status;
            const int64_t row_groups = (static_cast<int64_t>(max_new_tokens) * (p.q_heads / p.kv_heads) + kDecodeRows - 1) / kDecodeRows;
            const dim3 grid(static_cast<unsigned>(row_groups), static_cast<unsigned>(batch * p.kv_heads), static_cast<unsigned>(p.splits));
            ISTHMUS_LAUNCH(grid, kDecodeWarps * 32, smem, stream, attention_decode_kernel<T, D, C>)(p);
            *merged = true;
            return ISTHMUS_OK;
        }
    }
    constexpr size_t smem = attention_smem_bytes<T, D>();
    const int status = allow_shared_memory<attention_kernel<T, D, C>>(smem, device, "isthmus_attention");  // f32 at head_dim 256 needs the opt-in
    if (status != ISTHMUS_OK) return status;
    const int64_t row_groups = (static_cast<int64_t>(max_new_tokens) * (p.q_heads / p.kv_heads) + kAttentionRows - 1) / kAttentionRows;
    const dim3 grid(static_cast<unsigned>(row_groups), static_cast<unsigned>(batch * p.kv_heads), static_cast<unsigned>(p.splits));
    ISTHMUS_LAUNCH(grid, kAttentionRows * 32, smem, stream, attention_kernel<T, D, C>)(p);
    return ISTHMUS_OK;
}

// The instantiation of (dtype, cache type, head_dim): op.template run<T, D, C>(), or a failure
// naming the value that has none. A quantized cache (C a code type) takes head_dim 64 or 128 (the
// instantiations are kept to the common head sizes).
template <typename T, typename C, typename Op> int for_head_dim(int head_dim, const char *who, const Op &op) {
    if constexpr (std::is_same_v<T, C>) {
        switch (head_dim) {
            case 64: return op.template run<T, 64, C>();
            case 80: return op.template run<T, 80, C>();
            case 96: return op.template run<T, 96, C>();
            case 128: return op.template run<T, 128, C>();
            case 256: return op.template run<T, 256, C>();
            default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: head_dim %d is not 64, 80, 96, 128 or 256", who, head_dim);
        }
    } else {
        switch (head_dim) {
            case 64: return op.template run<T, 64, C>();
            case 128: return op.template run<T, 128, C>();
            default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: a quantized cache takes head_dim 64 or 128, not %d", who, head_dim);
        }
    }
}

template <typename T, typename Op> int for_cache(int cache_type, int head_dim, const char *who, const Op &op) {
    switch (cache_type) {
        case ISTHMUS_KV_MODEL_DTYPE: return for_head_dim<T, T>(head_dim, who, op);
        case ISTHMUS_KV_INT8: return for_head_dim<T, int8_t>(head_dim, who, op);
        case ISTHMUS_KV_FP8_E4M3: return for_head_dim<T, Fp8E4m3>(head_dim, who, op);
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: cache_type %d is not 0 (model dtype), 1 (int8) or 2 (fp8 e4m3)", who,
                        cache_type);
    }
}

template <typename Op> int for_instantiation(int32_t dtype, int cache_type, int head_dim, const char *who, const Op &op) {
    switch (dtype) {
        case ISTHMUS_F32: return for_cache<float>(cache_type, head_dim, who, op);
        case ISTHMUS_F16: return for_cache<__half>(cache_type, head_dim, who, op);
        case ISTHMUS_BF16: return for_cache<__nv_bfloat16>(cache_type, head_dim, who, op);
        default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: dtype %s is not f32, f16 or bf16", who, dtype_name(dtype));
    }
}

struct Launch {
    const AttentionParams &p;
    int batch, max_new_tokens;
    cudaStream_t stream;
    bool *merged;
    template <typename T, int D, typename C> int run() const { return launch_attention<T, D, C>(p, batch, max_new_tokens, stream, merged); }
};

// The blocks one SM holds at once (the CUDA runtime's occupancy, after the shared-memory opt-in)
// of the kernel launch_attention takes for a decode step (one new token a sequence): the decode
// kernel, or the CUDA-core kernel where that does not take the cache.
template <auto Kernel> int resident_blocks(int threads, size_t smem, int device, const char *who, int32_t *blocks) {
    if (int status = allow_shared_memory<Kernel>(smem, device, who)) return status;
    int count = 0;
    const cudaError_t err = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&count, Kernel, threads, smem);
    if (err != cudaSuccess) return fail(ISTHMUS_ERROR_CUDA, "%s: %s", who, cudaGetErrorString(err));
    *blocks = count;
    return ISTHMUS_OK;
}

struct DecodeOccupancy {
    int block_size;
    int32_t *blocks;
    template <typename T, int D, typename C> int run() const {
        const char *who = "isthmus_attention_blocks_per_sm";
        const int device = current_device();
        if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "%s: no current device below %d", who, kMaxDevices);
        if constexpr (decode_fast_path<T, D>()) {
            constexpr size_t smem = DecodeLayout<T, D, C>::kBytes;
            if (block_size % kDecodeStep == 0 && smem <= static_cast<size_t>(shared_memory_optin(device)))
                return resident_blocks<attention_decode_kernel<T, D, C>>(kDecodeWarps * 32, smem, device, who, blocks);
        }
        return resident_blocks<attention_kernel<T, D, C>>(kAttentionRows * 32, attention_smem_bytes<T, D>(), device, who, blocks);
    }
};

}  // namespace

extern "C" int isthmus_attention_merge(void *out, float *lse, const void *part_outs, const float *part_lses, int32_t parts,
                                       int64_t rows, int32_t head_dim, int32_t out_dtype, int32_t part_dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && part_outs != nullptr && part_lses != nullptr,
                    "isthmus_attention_merge: out, part_outs and part_lses must not be NULL");
    ISTHMUS_REQUIRE(parts >= 1, "isthmus_attention_merge: parts must be >= 1, got %d", parts);
    ISTHMUS_REQUIRE(rows >= 0 && rows <= 0x7fffffffLL * kMergeRowsPerBlock, "isthmus_attention_merge: rows %lld out of range",
                    static_cast<long long>(rows));
    ISTHMUS_REQUIRE(head_dim >= 1, "isthmus_attention_merge: head_dim must be >= 1, got %d", head_dim);
    if (rows == 0) return ISTHMUS_OK;
    const int status = merge_any(out_dtype, part_dtype, out, lse, part_outs, part_lses, parts, rows, head_dim,
                                 static_cast<cudaStream_t>(stream));
    if (status != ISTHMUS_OK) return status;
    ISTHMUS_CHECK_LAUNCH("isthmus_attention_merge");
    return ISTHMUS_OK;
}

extern "C" int isthmus_attention(void *out, float *lse, float *partial_out, float *partial_lse, int32_t *split_counts, const void *q,
                                 const void *k_cache, const void *v_cache, const int32_t *block_table,
                                 const int32_t *cached_lens, const int32_t *query_starts, int32_t batch, int32_t total_tokens,
                                 int32_t max_new_tokens, int32_t max_blocks_per_seq, int32_t num_blocks, int32_t block_size,
                                 int32_t q_heads, int32_t kv_heads, int32_t head_dim, int32_t splits, int32_t split_chunk,
                                 int32_t causal, float scale, int32_t window_left, int32_t window_right, float softcap,
                                 int32_t cache_type, const float *k_scales, const float *v_scales, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && q != nullptr && k_cache != nullptr && v_cache != nullptr && block_table != nullptr &&
                        cached_lens != nullptr && query_starts != nullptr,
                    "isthmus_attention: out, q, the caches and the batch tables must not be NULL");
    ISTHMUS_REQUIRE(batch >= 1 && total_tokens >= 0 && max_new_tokens >= 0 && max_new_tokens <= total_tokens,
                    "isthmus_attention: batch %d, total_tokens %d, max_new_tokens %d are inconsistent", batch, total_tokens,
                    max_new_tokens);
    ISTHMUS_REQUIRE(max_blocks_per_seq >= 1 && num_blocks >= 1 && block_size >= 1,
                    "isthmus_attention: max_blocks_per_seq, num_blocks and block_size must be >= 1");
    ISTHMUS_REQUIRE(kv_heads >= 1 && q_heads >= 1 && q_heads % kv_heads == 0,
                    "isthmus_attention: q_heads %d is not a positive multiple of kv_heads %d", q_heads, kv_heads);
    ISTHMUS_REQUIRE(static_cast<int64_t>(batch) * kv_heads <= 65535, "isthmus_attention: batch x kv_heads = %lld exceeds 65535",
                    static_cast<long long>(batch) * kv_heads);
    ISTHMUS_REQUIRE(splits >= 1 && splits <= 1024 && split_chunk >= 1, "isthmus_attention: splits %d / split_chunk %d out of range",
                    splits, split_chunk);
    ISTHMUS_REQUIRE(splits == 1 || (partial_out != nullptr && partial_lse != nullptr && split_counts != nullptr),
                    "isthmus_attention: %d splits need the partial_out, partial_lse and split_counts workspace", splits);
    ISTHMUS_REQUIRE(scale > 0.0f && isfinite(scale), "isthmus_attention: scale must be positive and finite");
    ISTHMUS_REQUIRE(softcap >= 0.0f && isfinite(softcap), "isthmus_attention: softcap must be >= 0 and finite");
    ISTHMUS_REQUIRE(window_left >= -1 && window_right >= -1, "isthmus_attention: windows must be >= -1");
    ISTHMUS_REQUIRE(is_aligned(k_cache, 16) && is_aligned(v_cache, 16) && is_aligned(q, 16),
                    "isthmus_attention: q and the caches must be 16-byte aligned");
    ISTHMUS_REQUIRE(cache_type == ISTHMUS_KV_MODEL_DTYPE || (k_scales != nullptr && v_scales != nullptr),
                    "isthmus_attention: a quantized cache needs k_scales and v_scales");
    if (total_tokens == 0) return ISTHMUS_OK;

    AttentionParams p{};
    p.out = out;
    p.lse = lse;
    p.partial_out = partial_out;
    p.partial_lse = partial_lse;
    p.split_counts = split_counts;
    p.q = q;
    p.k_cache = k_cache;
    p.v_cache = v_cache;
    p.k_scales = k_scales;
    p.v_scales = v_scales;
    p.block_table = block_table;
    p.cached_lens = cached_lens;
    p.query_starts = query_starts;
    p.total_tokens = total_tokens;
    p.max_blocks = max_blocks_per_seq;
    p.num_blocks = num_blocks;
    p.block_size = block_size;
    p.q_heads = q_heads;
    p.kv_heads = kv_heads;
    p.splits = splits;
    p.split_chunk = split_chunk;
    p.scale = scale;
    p.softcap = softcap;
    p.window_left = window_left;
    p.window_right = causal ? 0 : window_right;  // causal: no key after the query

    cudaStream_t s = static_cast<cudaStream_t>(stream);
    bool merged = false;
    int status = for_instantiation(dtype, cache_type, head_dim, "isthmus_attention", Launch{p, batch, max_new_tokens, s, &merged});
    if (status != ISTHMUS_OK) return status;
    ISTHMUS_CHECK_LAUNCH("isthmus_attention");
    if (splits > 1 && !merged) {
        status = merge_any(dtype, ISTHMUS_F32, out, lse, partial_out, partial_lse, splits,
                           static_cast<int64_t>(total_tokens) * q_heads, head_dim, s);
        if (status != ISTHMUS_OK) return status;
        ISTHMUS_CHECK_LAUNCH("isthmus_attention (merge of the splits)");
    }
    return ISTHMUS_OK;
}

extern "C" int isthmus_attention_blocks_per_sm(int32_t dtype, int32_t head_dim, int32_t cache_type, int32_t block_size,
                                               int32_t *blocks) {
    clear_error();
    ISTHMUS_REQUIRE(blocks != nullptr, "isthmus_attention_blocks_per_sm: blocks must not be NULL");
    ISTHMUS_REQUIRE(block_size >= 1, "isthmus_attention_blocks_per_sm: block_size must be >= 1, got %d", block_size);
    return for_instantiation(dtype, cache_type, head_dim, "isthmus_attention_blocks_per_sm", DecodeOccupancy{block_size, blocks});
}
