/*
 * isthmus.h — the one C ABI of libisthmus.so. Java binds exactly these symbols (FFM downcalls).
 *
 * Conventions, for every launcher:
 *   - the destination comes first, then inputs, then sizes and options, then the stream;
 *   - pointers are device pointers unless a name says otherwise; `stream` is a cudaStream_t
 *     (NULL = the legacy default stream);
 *   - arguments are checked again here (never trust the caller), the kernel is launched on the
 *     caller's stream, nothing synchronizes and nothing allocates, so every launcher is safe
 *     inside CUDA graph capture;
 *   - the return value is an isthmus_status; on failure isthmus_last_error() (thread-local)
 *     says why in one line.
 *
 * Bump ISTHMUS_ABI_VERSION whenever a signature or struct here changes: the Java side refuses a
 * library whose ABI version differs from the one it was written against.
 */
#ifndef ISTHMUS_H
#define ISTHMUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ISTHMUS_ABI_VERSION 6

#if defined(__GNUC__)
#define ISTHMUS_API __attribute__((visibility("default")))
#else
#define ISTHMUS_API
#endif

typedef enum isthmus_status {
    ISTHMUS_OK = 0,
    ISTHMUS_ERROR_INVALID_ARGUMENT = 1, /* a shape, pointer, dtype or option the kernel cannot take */
    ISTHMUS_ERROR_CUDA = 2,             /* the CUDA runtime reported an error; the message names it */
    ISTHMUS_ERROR_UNSUPPORTED = 3       /* valid, but not implemented for this combination */
} isthmus_status;

/* Element types. The numbers are part of the ABI (Java's DType.code()). */
typedef enum isthmus_dtype {
    ISTHMUS_F32 = 0,
    ISTHMUS_F16 = 1,
    ISTHMUS_BF16 = 2,
    ISTHMUS_I32 = 3,
    ISTHMUS_I64 = 4,
    ISTHMUS_I8 = 5
} isthmus_dtype;

/* What a KV cache element holds (cuda/kv_quant.cuh defines the formats). The numbers are part of
 * the ABI (Java's KvCacheType.code()). */
typedef enum isthmus_kv_cache_type {
    ISTHMUS_KV_MODEL_DTYPE = 0, /* the dtype of q / k / v */
    ISTHMUS_KV_INT8 = 1,        /* int8 codes, x = q * s, s f32 per (token, kv head) */
    ISTHMUS_KV_FP8_E4M3 = 2     /* OCP FP8 E4M3 codes, x = e4m3(c) * s, s f32 per kv head */
} isthmus_kv_cache_type;

/* ---- library and device ------------------------------------------------------------------ */

ISTHMUS_API int isthmus_abi_version(void);
/* "MAJOR.MINOR.PATCH"; a static string. */
ISTHMUS_API const char *isthmus_version(void);
/* The CUDA architectures the library carries machine code for, e.g. "sm_80 sm_90 +PTX compute_90". */
ISTHMUS_API const char *isthmus_cuda_architectures(void);
/* The CUDA runtime the library was built against (e.g. 13000), and the driver's (0 if none). */
ISTHMUS_API int isthmus_runtime_version(void);
ISTHMUS_API int isthmus_driver_version(void);

/* The message of the last failed call on this thread ("" if none). Valid until the next call. */
ISTHMUS_API const char *isthmus_last_error(void);

/* Number of visible CUDA devices; ISTHMUS_ERROR_CUDA (with the CUDA error text) without a driver. */
ISTHMUS_API int isthmus_device_count(int *count);

typedef struct isthmus_device_properties {
    char name[256];
    int32_t compute_major;
    int32_t compute_minor;
    int32_t multiprocessor_count;
    int32_t max_threads_per_block;
    int64_t total_global_memory;           /* bytes */
    int64_t shared_memory_per_block_optin; /* bytes a block may opt in to */
    int64_t l2_cache_size;                 /* bytes */
    int32_t warp_size;
    int32_t memory_bus_width;              /* bits */
} isthmus_device_properties;

ISTHMUS_API int isthmus_get_device_properties(isthmus_device_properties *out, int device);

/* Makes `device` current for the calling thread in this library's CUDA runtime (which is linked
 * statically, so it keeps its own notion of the current device beside the caller's). */
ISTHMUS_API int isthmus_set_device(int device);

/* ---- RMSNorm ------------------------------------------------------------------------------ */

/*
 * Row-wise RMSNorm over a contiguous (rows, cols) matrix, with the residual add fused:
 *
 *   h   = residual == NULL ? x : x + residual           (summed in fp32, rounded to dtype)
 *   out = h / sqrt(mean_j(h_j^2) + eps) * weight        (fp32 accumulation)
 *
 * When residual is given, h is also written to residual_out (which may alias residual, for the
 * usual in-place update of the residual stream), and out is exactly the RMSNorm of the stored h.
 * x, residual, residual_out, weight (cols) and out share one dtype: F32, F16 or BF16.
 * out may alias x.
 */
ISTHMUS_API int isthmus_rmsnorm(void *out, void *residual_out, const void *x, const void *residual,
                                const void *weight, int64_t rows, int64_t cols, float eps,
                                int32_t dtype, void *stream);

/* ---- quantized weights ---------------------------------------------------------------------- */

/* Weight formats of isthmus_quant_gemv: the GGML type numbers (Java's GgmlType.id()). */
typedef enum isthmus_qformat {
    ISTHMUS_Q4_0 = 2,
    ISTHMUS_Q8_0 = 8,
    ISTHMUS_Q4_K = 12
} isthmus_qformat;

/*
 * out[m][n] = sum_j x[m][j] W[n][j] for m < rows, n < n_out, j < k, W in the device layout of its
 * format (cuda/quant_gemv.cuh: Q8_0 and Q4_0 values then f16 scales, Q4_K its own blocks). k is a
 * multiple of 32 (256 for Q4_K); x (rows x k) and out (rows x n_out) are contiguous, of one dtype
 * (F32, F16, BF16), x and weights 16-byte aligned. fp32 accumulation. 1..16 rows (F32: no more):
 * W dequantized in registers (the GEMV). F16 and BF16 from 17 rows (up to 2^31 - 1): the
 * tensor-core tiles, W dequantized into tiles of the dtype in shared memory (cuda/quant_tile.cuh),
 * each weight rounded once to the dtype. workspace / workspace_bytes: the split-K workspace (see
 * isthmus_gemm_workspace_bytes), or NULL: with it, the f16/bf16 GEMV may share every 128 output
 * features' K out over several blocks and the decode tiles (17 to 64 rows) split K, each adding
 * the parts in a fixed order (bitwise reproducible on one device); without it, neither splits.
 */
ISTHMUS_API int isthmus_quant_gemv(void *out, const void *x, const void *weights, int32_t format, int64_t rows,
                                   int64_t n_out, int64_t k, int32_t dtype, void *workspace, int64_t workspace_bytes,
                                   void *stream);

/* ---- Mamba: selective scan, state update, causal conv1d ------------------------------------ */

/*
 * The selective scan of Mamba-1 over whole sequences (Gu & Dao 2023, Algorithm 2). Per batch b,
 * channel d, state n, time t, with g = d / (channels / groups):
 *
 *   dt      = delta[b,d,t] + delta_bias[d]           (bias optional; then softplus if delta_softplus)
 *   h[n]    = exp(dt * a[d,n]) * h[n] + dt * b[b,g,n,t] * u[b,d,t]        (fp32 state)
 *   y[b,d,t] = sum_n c[b,g,n,t] * h[n] + d[d] * u[b,d,t]                   (d optional)
 *   y      *= silu(z[b,d,t])                                               (z optional)
 *
 * y, u, delta, z: (batch, channels, length); b, c: (batch, groups, nstate, length), all of `dtype`
 * (F32, F16, BF16) and contiguous. a: (channels, nstate), d and delta_bias: (channels), fp32.
 * h starts from initial_state (rows, channels, nstate) fp32, or 0 when it is NULL, and the state
 * after the last step is written to final_state (same shape) unless it is NULL; it may be
 * initial_state itself. nstate is 1..256.
 *
 * Packed variable-length input: seq_starts (sequences + 1 int32, non-decreasing, from 0 to at
 * most length) splits the single row of a batch of 1 into sequences; the state restarts (from its
 * initial state) at every start and rows = sequences. Without seq_starts, sequences is 0 and
 * rows = batch.
 */
ISTHMUS_API int isthmus_selective_scan(void *y, float *final_state, const void *u, const void *delta, const void *z,
                                       const void *b, const void *c, const float *a, const float *d,
                                       const float *delta_bias, const float *initial_state,
                                       const int32_t *seq_starts, int64_t sequences, int64_t batch,
                                       int64_t channels, int64_t length, int64_t groups, int64_t nstate,
                                       int32_t delta_softplus, int32_t dtype, void *stream);

/*
 * One decode step of the selective scan: the same recurrence for a single token, the state
 * updated in place. y, u, delta, z: (batch, channels); b, c: (batch, groups, nstate) of `dtype`;
 * a, d, delta_bias as above. state is a pool (pool, channels, nstate) fp32; batch row r uses
 * slot slots[r] (int32, batch entries) or slot r when slots is NULL (then pool == batch). A
 * negative slot marks a padding row: its state is not touched and its y is 0. A slot >= pool is
 * not touched either and its y is NaN (callers are expected to have checked the slots).
 */
ISTHMUS_API int isthmus_selective_state_update(void *y, float *state, const int32_t *slots, int64_t pool,
                                               const void *u, const void *delta, const void *z, const void *b,
                                               const void *c, const float *a, const float *d,
                                               const float *delta_bias, int64_t batch, int64_t channels,
                                               int64_t groups, int64_t nstate, int32_t delta_softplus,
                                               int32_t dtype, void *stream);

/*
 * Causal depthwise conv1d over sequences, width 1..8:
 *
 *   out[b,d,t] = bias[d] + sum_{k<width} weight[d,k] * x[b,d,t-(width-1)+k]    (then silu if asked)
 *
 * where the width-1 inputs before t = 0 come from initial_state (batch, channels, width-1), or
 * are 0 when it is NULL. The last width-1 inputs (from initial_state where length < width-1) are
 * written to final_state unless it is NULL; it may be initial_state itself. x, out: (batch,
 * channels, length); weight (channels, width); bias (channels) optional; all of `dtype`. out must
 * not overlap x.
 */
ISTHMUS_API int isthmus_causal_conv1d(void *out, void *final_state, const void *x, const void *weight,
                                      const void *bias, const void *initial_state, int64_t batch, int64_t channels,
                                      int64_t length, int64_t width, int32_t silu, int32_t dtype, void *stream);

/*
 * One token of the causal conv1d against a rolling conv state (batch, channels, width-1), oldest
 * input first: out[b,d] is the conv of (state, x[b,d]), then the state drops its oldest input
 * and appends x. x, out: (batch, channels); out may be x itself. conv_state may be NULL only for
 * width 1.
 */
ISTHMUS_API int isthmus_causal_conv1d_update(void *out, void *conv_state, const void *x, const void *weight,
                                             const void *bias, int64_t batch, int64_t channels, int64_t width,
                                             int32_t silu, int32_t dtype, void *stream);
/* ---- Mamba-2: the SSD scan, its state update, the gated RMSNorm ------------------------------ */

/*
 * The state-space-dual scan of Mamba-2 (Dao & Gu 2024) over whole sequences. Per row, head h,
 * time t, head channel p and state n, with g = h / (heads / groups):
 *
 *   dt'      = clamp(softplus(dt[t,h] + dt_bias[h]), dt_min, dt_max)   (softplus if dt_softplus)
 *   S[p,n]   = exp(dt' a[h]) S[p,n] + dt' x[t,h,p] b[t,g,n]                (fp32 state)
 *   y[t,h,p] = sum_n c[t,g,n] S[p,n] + d[h] x[t,h,p]                       (d optional)
 *
 * x, y: (batch, length, heads, head_dim); dt: (batch, length, heads); b, c: (batch, length, groups,
 * nstate); all of `dtype` (F32, F16, BF16), contiguous. a, d, dt_bias: (heads) fp32. S starts from
 * initial_states (rows, heads, head_dim, nstate) fp32 or 0, and ends in final_states (same shape)
 * unless it is NULL; it may be initial_states itself. head_dim and nstate are 1..256. Packed input
 * as isthmus_selective_scan's (seq_starts, sequences; the boundaries anywhere). chunk is the
 * kernel's chunk length: 16, 32 or 64, or 0 for the launcher's choice (the result is the same up
 * to rounding).
 */
ISTHMUS_API int isthmus_ssd_scan(void *y, float *final_states, const void *x, const void *dt, const void *b,
                                 const void *c, const float *a, const float *d, const float *dt_bias,
                                 const float *initial_states, const int32_t *seq_starts, int64_t sequences,
                                 int64_t batch, int64_t length, int64_t heads, int64_t head_dim, int64_t groups,
                                 int64_t nstate, int32_t dt_softplus, float dt_min, float dt_max, int32_t chunk,
                                 int32_t dtype, void *stream);

/*
 * One decode step of the SSD scan, the state updated in place: x, y (batch, heads, head_dim); dt
 * (batch, heads); b, c (batch, groups, nstate) of `dtype`; state a pool (pool, heads, head_dim,
 * nstate) fp32 with slots as isthmus_selective_state_update's (a negative slot is padding: y = 0,
 * state untouched; a slot >= pool or one an earlier row names: y = NaN, state untouched).
 */
ISTHMUS_API int isthmus_ssd_state_update(void *y, float *state, const int32_t *slots, int64_t pool, const void *x,
                                         const void *dt, const void *b, const void *c, const float *a,
                                         const float *d, const float *dt_bias, int64_t batch, int64_t heads,
                                         int64_t head_dim, int64_t groups, int64_t nstate, int32_t dt_softplus,
                                         float dt_min, float dt_max, int32_t dtype, void *stream);

/*
 * The gated RMSNorm of Mamba-2: v = y * silu(z) (z may be NULL: v = y), then per group of
 * group_size consecutive channels out = v / sqrt(mean(v^2) + eps) * weight. out, y, z (rows,
 * width) and weight (width) of `dtype`; group_size divides width; out may be y.
 */
ISTHMUS_API int isthmus_gated_rmsnorm(void *out, const void *y, const void *z, const void *weight, int64_t rows,
                                      int64_t width, int64_t group_size, float eps, int32_t dtype, void *stream);

/* ---- Attention over a paged KV cache ------------------------------------------------------ */

/*
 * The cache is a pool of blocks, k_cache and v_cache each [num_blocks, block_size, kv_heads,
 * head_dim]. A batch of `batch` sequences is described by three int32 device arrays:
 *   block_table [batch, max_blocks_per_seq]  block ids each sequence owns, in token order;
 *   cached_lens [batch]                      tokens already in the cache;
 *   query_starts [batch + 1]                 offsets of each sequence's new tokens in the packed
 *                                            q / k / v / out (query_starts[batch] = total_tokens).
 * Token t of sequence b lives in block block_table[b][t / block_size] at slot t % block_size; new
 * token i of sequence b is at position cached_lens[b] + i, and sequence b attends over
 * kv_len = cached_lens[b] + (its new tokens) keys. q / out are [total_tokens, q_heads, head_dim],
 * k / v (new tokens) [total_tokens, kv_heads, head_dim], one dtype (F32, F16, BF16) for all of them
 * and the cache; query head h reads kv head h / (q_heads / kv_heads). Block ids outside the pool are
 * skipped, never dereferenced (the caller checks them; this only keeps a bad table from faulting).
 */

/*
 * Writes the new k and v into their cache slots. rope_mode 0: as they are; 1 (interleaved pairs
 * (2j, 2j+1)) or 2 (NeoX pairs (j, j + head_dim/2)): k is rotated on its way into the cache and q
 * in place, pair j by the angle position * position_scale * f_j, where position is
 * positions[token] (int32 [total_tokens]) or, when positions is NULL, the cache slot index
 * cached_lens[b] + i. q may be NULL when rope_mode is 0.
 *
 * f_j = rope_base^(-2j / head_dim), rescaled by Llama 3.1's rule (config.json rope_type "llama3")
 * when llama3_factor > 1: with the wavelength w = 2 pi / f_j, L = llama3_original_max_positions,
 * lo = llama3_low_freq_factor and hi = llama3_high_freq_factor,
 *   w < L / hi:  f_j unchanged;   w > L / lo:  f_j / llama3_factor;
 *   otherwise    (1 - s) f_j / llama3_factor + s f_j  with  s = (L / w - lo) / (hi - lo).
 * llama3_factor must be >= 1; at exactly 1 nothing is rescaled and the other three llama3
 * parameters are not read (pass 1, 0, 0, 0); above 1 they need 0 < lo < hi and L >= 1.
 *
 * LongRoPE (config.json rope_type "longrope", Phi-3) when longrope_factors is not NULL: a HOST
 * array of head_dim / 2 short factors then head_dim / 2 long ones (finite, > 0), read during the
 * call (so a captured graph keeps the values it was captured with). Sequence b uses the long ones
 * when cached_lens[b] + its new tokens > longrope_original_max_positions (>= 1), else the short
 * ones, e_j: f_j = rope_base^(-2j / head_dim) / e_j, and cos, sin are multiplied by
 * longrope_attention_factor (finite, > 0). llama3_factor must then be 1. head_dim <= 256.
 *
 * cache_type ISTHMUS_KV_MODEL_DTYPE: the caches hold `dtype`, k_scales / v_scales are not read
 * (NULL). ISTHMUS_KV_INT8: the caches hold int8 codes and k_scales / v_scales (f32 [num_blocks,
 * block_size, kv_heads]) receive each new row's scale s = max|x| / 127, the codes being
 * rne(x / s) (0 for an all-zero row). ISTHMUS_KV_FP8_E4M3: the caches hold E4M3 codes
 * rne(x / s) saturated to +-448, s read from k_scales / v_scales (f32 [kv_heads], in (0, 256)). A
 * quantized cache takes head_dim up to 256; k is quantized after its rotation, in f32.
 */
ISTHMUS_API int isthmus_attention_append(void *q, void *k_cache, void *v_cache, const void *k, const void *v,
                                         const int32_t *block_table, const int32_t *cached_lens,
                                         const int32_t *query_starts, const int32_t *positions, int32_t batch,
                                         int32_t total_tokens, int32_t max_blocks_per_seq, int32_t num_blocks,
                                         int32_t block_size, int32_t q_heads, int32_t kv_heads, int32_t head_dim,
                                         int32_t rope_mode, float rope_base, float position_scale, float llama3_factor,
                                         float llama3_low_freq_factor, float llama3_high_freq_factor,
                                         int32_t llama3_original_max_positions, const float *longrope_factors,
                                         int32_t longrope_original_max_positions, float longrope_attention_factor,
                                         int32_t cache_type, float *k_scales, float *v_scales, int32_t dtype, void *stream);

/*
 * out = softmax(s) v per (new token, query head) row over its sequence's keys, with
 *   s_t = scale * q.k_t, then softcap * tanh(s_t / softcap) when softcap > 0,
 *   key t visible when t < kv_len, (window_left < 0 or t >= pos - window_left),
 *   (window_right < 0 or t <= pos + window_right), and (causal == 0 or t <= pos).
 * lse (f32 [total_tokens, q_heads], may be NULL) receives ln(sum_t exp(s_t)) over visible keys; a
 * row with none gets out 0 and lse -inf. head_dim is 64, 80, 96, 128 or 256; q and the caches must
 * be 16-byte aligned. Each sequence's KV length is cut into `splits` pieces of split_chunk keys
 * (piece i covers [i * split_chunk, (i + 1) * split_chunk)); with splits > 1 the pieces go to the
 * caller's f32 workspace partial_out [splits, total_tokens, q_heads, head_dim] and partial_lse
 * [splits, total_tokens, q_heads] and are merged into out and lse, by the decode kernel itself
 * (the last block of each group of rows, counted in split_counts, int32 [total_tokens, q_heads],
 * which must hold zeros before the launch and holds zeros again after it) or by a second launch
 * on the same stream. max_new_tokens is the largest per-sequence new-token count (it sizes the
 * grid and picks the kernel: with 16 or more, f16/bf16 and head_dim <= 128 the prefill tiles run on
 * tensor cores; below that, f16/bf16 at head_dim 64 or 128 over blocks of a multiple of 16 tokens
 * take the decode kernel, also on tensor cores; everything else runs on CUDA cores).
 * cache_type and k_scales / v_scales as for isthmus_attention_append (read only here): the
 * kernels dequantize the cache as they stage it; a quantized cache takes head_dim 64 or 128.
 */
ISTHMUS_API int isthmus_attention(void *out, float *lse, float *partial_out, float *partial_lse, int32_t *split_counts,
                                  const void *q, const void *k_cache, const void *v_cache, const int32_t *block_table,
                                  const int32_t *cached_lens, const int32_t *query_starts, int32_t batch,
                                  int32_t total_tokens, int32_t max_new_tokens, int32_t max_blocks_per_seq,
                                  int32_t num_blocks, int32_t block_size, int32_t q_heads, int32_t kv_heads,
                                  int32_t head_dim, int32_t splits, int32_t split_chunk, int32_t causal, float scale,
                                  int32_t window_left, int32_t window_right, float softcap, int32_t cache_type,
                                  const float *k_scales, const float *v_scales, int32_t dtype, void *stream);

/*
 * *blocks: how many blocks of the kernel isthmus_attention takes for a decode step (one new token a
 * sequence) on a cache of (dtype, head_dim, cache_type) in pages of block_size tokens one SM of the
 * current device holds at once (the CUDA runtime's occupancy), which the split-KV planning of a
 * decode batch sizes its waves by (Java's Attention.splitCount).
 */
ISTHMUS_API int isthmus_attention_blocks_per_sm(int32_t dtype, int32_t head_dim, int32_t cache_type, int32_t block_size,
                                                int32_t *blocks);

/*
 * Merges `parts` partial attention results by their log-sum-exp (natural log):
 *   L = ln(sum_i exp(L_i)),  out = sum_i exp(L_i - L) * out_i,
 * part_outs [parts, rows, head_dim] (part_dtype), part_lses f32 [parts, rows], out [rows, head_dim]
 * (out_dtype), lse f32 [rows] or NULL. Parts with L_i = -inf are ignored; a row where all are -inf
 * gets out 0 and lse -inf. Split-KV decoding, cascade attention and ring attention use this.
 */
ISTHMUS_API int isthmus_attention_merge(void *out, float *lse, const void *part_outs, const float *part_lses,
                                        int32_t parts, int64_t rows, int32_t head_dim, int32_t out_dtype,
                                        int32_t part_dtype, void *stream);
/* ---- Mixture of Experts ------------------------------------------------------------------- */

/*
 * An MoE layer in five launches, none of which waits on the host, so the whole layer can be
 * captured in a CUDA graph. T tokens, E experts, k slots per token, hidden size H, expert
 * intermediate size I; a "pair" is (token t, slot s), numbered t * k + s.
 *
 *   isthmus_moe_topk -> isthmus_moe_align -> isthmus_moe_gate_up -> isthmus_moe_down
 *   -> isthmus_moe_combine          (router logits come from isthmus_gemm or any GEMM)
 *
 * Limits: 1 <= E <= ISTHMUS_MOE_MAX_EXPERTS, 1 <= k <= min(E, ISTHMUS_MOE_MAX_TOP_K), groups
 * divide E and are at most ISTHMUS_MOE_MAX_GROUPS.
 */
#define ISTHMUS_MOE_MAX_EXPERTS 1024
#define ISTHMUS_MOE_MAX_TOP_K 32
#define ISTHMUS_MOE_MAX_GROUPS 64
/* The row-tile height of the grouped GEMM: isthmus_moe_align's `tile` for the GEMMs below. */
#define ISTHMUS_MOE_TILE_M 128

typedef enum isthmus_moe_scoring {
    ISTHMUS_MOE_SOFTMAX = 0, /* score = softmax(z) over all experts */
    ISTHMUS_MOE_SIGMOID = 1  /* score = sigmoid(z) */
} isthmus_moe_scoring;

/*
 * Router top-k. logits (T, E) in F32/F16/BF16 (dtype); bias (E) F32 or NULL; weights (T, k) F32
 * and ids (T, k) I32 out, slot 0 the best. All arithmetic in fp32:
 *   choice_e = score_e + bias_e            picks the experts (ties: the lower expert index)
 *   w_s      = score_s [/ sum_S score] * routed_scaling     (divided when renormalize != 0)
 * With groups > 1, a group scores the sum of its two best choices (its best one when a group has
 * a single expert); only the top_groups best groups (ties: the lower group) are eligible.
 * Softmax renormalized over the top k equals the softmax of the top-k logits (Mixtral).
 */
ISTHMUS_API int isthmus_moe_topk(float *weights, int32_t *ids, const void *logits, const float *bias,
                                 int64_t tokens, int32_t experts, int32_t top_k, int32_t scoring,
                                 int32_t renormalize, int32_t groups, int32_t top_groups,
                                 float routed_scaling, int32_t dtype, void *stream);

/*
 * Align: groups the `pairs` = T * k pairs of ids (I32, pairs) by expert, each expert's segment
 * padded to a multiple of `tile`. Outputs, all I32 and sized for the worst case so that nothing
 * depends on the routing:
 *   sorted_pairs (capacity), capacity = pairs + min(E, pairs) * (tile - 1): pair indices, each
 *                segment in ascending order, padding and the unused tail = the sentinel `pairs`;
 *   tile_experts (ceil(capacity / tile)): the expert of each tile, -1 past the padded total;
 *   padded_total (1): the used length of sorted_pairs;
 *   expert_counts (E): pairs routed to each expert (before capacity and padding);
 *   dropped (pairs): 1 for a pair left out, else 0.
 * expert_capacity > 0 keeps each expert's first expert_capacity pairs in pair order (earlier
 * tokens first; Switch/GShard token dropping) and drops the rest; 0 keeps every pair. Ids outside
 * [0, E) are dropped too (check them before; the Java API does).
 */
ISTHMUS_API int isthmus_moe_align(int32_t *sorted_pairs, int32_t *tile_experts, int32_t *padded_total,
                                  int32_t *expert_counts, int32_t *dropped, const int32_t *ids, int64_t pairs,
                                  int32_t experts, int32_t tile, int32_t expert_capacity, int64_t capacity,
                                  void *stream);

/*
 * Grouped gate+up GEMM with SwiGLU: for each pair p of expert e (from isthmus_moe_align with
 * tile = ISTHMUS_MOE_TILE_M and the same `capacity`), token t = p / k,
 *   hidden[p, j] = silu(x[t] . w13[e, j]) * (x[t] . w13[e, I + j])      j < I
 * x (T, H), w13 (E, 2I, H) (gate rows then up rows), hidden (T * k, I); one dtype, F32/F16/BF16.
 * workspace / workspace_bytes: the split-K workspace (see isthmus_gemm_workspace_bytes), or NULL.
 */
ISTHMUS_API int isthmus_moe_gate_up(void *hidden, const void *x, const void *w13, const int32_t *sorted_pairs,
                                    const int32_t *tile_experts, const int32_t *padded_total, int64_t tokens,
                                    int32_t top_k, int32_t experts, int64_t hidden_size, int64_t intermediate,
                                    int64_t capacity, int32_t dtype, void *workspace, int64_t workspace_bytes,
                                    void *stream);

/*
 * Grouped down GEMM with the routing weight in the epilogue:
 *   slot_out[p, n] = weights[p] * (hidden[p] . w2[e, n])                 n < H
 * hidden (pairs, I), w2 (E, H, I), slot_out (pairs, H) in dtype; weights (pairs) F32 or NULL (1).
 * workspace / workspace_bytes: the split-K workspace (see isthmus_gemm_workspace_bytes), or NULL.
 */
ISTHMUS_API int isthmus_moe_down(void *slot_out, const void *hidden, const void *w2, const float *weights,
                                 const int32_t *sorted_pairs, const int32_t *tile_experts,
                                 const int32_t *padded_total, int64_t pairs, int32_t experts,
                                 int64_t hidden_size, int64_t intermediate, int64_t capacity, int32_t dtype,
                                 void *workspace, int64_t workspace_bytes, void *stream);

/*
 * isthmus_moe_gate_up and isthmus_moe_down with the experts' matrices quantized: expert e's
 * (2I, H) gate-then-up or (H, I) down matrix at w13 / w2 + e * expert_bytes, in the device layout
 * of `format` (isthmus_qformat; see isthmus_quant_gemv), expert_bytes a multiple of 16 at least the
 * format's byte count of one matrix. H (gate+up) or I (down) a multiple of the format's block (32,
 * 256 for Q4_K); activations F16 or BF16 (the tensor-core tiles, each weight rounded once to the
 * dtype), 16-byte aligned, as are the weights. fp32 accumulation; the same rows gathered, the same
 * SwiGLU and routing-weight epilogues. workspace / workspace_bytes: the split-K workspace (see
 * isthmus_gemm_workspace_bytes), or NULL, as for isthmus_moe_gate_up and isthmus_moe_down.
 */
ISTHMUS_API int isthmus_moe_gate_up_quant(void *hidden, const void *x, const void *w13, int32_t format,
                                          int64_t expert_bytes, const int32_t *sorted_pairs, const int32_t *tile_experts,
                                          const int32_t *padded_total, int64_t tokens, int32_t top_k, int32_t experts,
                                          int64_t hidden_size, int64_t intermediate, int64_t capacity, int32_t dtype,
                                          void *workspace, int64_t workspace_bytes, void *stream);
ISTHMUS_API int isthmus_moe_down_quant(void *slot_out, const void *hidden, const void *w2, int32_t format,
                                       int64_t expert_bytes, const float *weights, const int32_t *sorted_pairs,
                                       const int32_t *tile_experts, const int32_t *padded_total, int64_t pairs,
                                       int32_t experts, int64_t hidden_size, int64_t intermediate, int64_t capacity,
                                       int32_t dtype, void *workspace,
                                       int64_t workspace_bytes, void *stream);

/*
 * Combine in a fixed order: out[t] = sum_{s<k, not dropped} slot_out[t*k+s] (in slot order, fp32)
 *                                    (+ shared[t]) (+ residual[t]), rounded once.
 * slot_out (T * k, H); dropped (T * k) I32 from isthmus_moe_align, or NULL (none dropped);
 * shared, residual (T, H) or NULL; out (T, H) may alias residual or shared.
 */
ISTHMUS_API int isthmus_moe_combine(void *out, const void *slot_out, const int32_t *dropped, const void *shared,
                                    const void *residual, int64_t tokens, int32_t top_k, int64_t hidden_size,
                                    int32_t dtype, void *stream);

/*
 * Routing statistics, computed in a fixed order (bit-identical on repeat), all F32 out:
 *   mean_prob[e] = mean over tokens of P(t, e), P = softmax(z_t) (SOFTMAX) or
 *                  sigmoid(z_t) / sum_j sigmoid(z_tj) (SIGMOID)
 *   aux_loss     = E * sum_e f_e * mean_prob[e], f_e = expert_counts[e] / (T * k)
 *                  (a balanced router scores 1 for any k; HF's Mixtral loss is k times this)
 *   z_loss       = mean over tokens of logsumexp(z_t)^2
 * logits (T, E) in dtype; expert_counts (E) I32 from isthmus_moe_align.
 */
ISTHMUS_API int isthmus_moe_router_stats(float *mean_prob, float *aux_loss, float *z_loss, const void *logits,
                                         const int32_t *expert_counts, int64_t tokens, int32_t experts,
                                         int32_t top_k, int32_t scoring, int32_t dtype, void *stream);

/*
 * The project's dense GEMM (the MoE grouped GEMM with one group), row-major:
 *   C = alpha * op(A) * op(B) + beta * C,  op(A) (m, k), op(B) (k, n), C (m, n)
 * A and B in ab_dtype (F32/F16/BF16), C in ab_dtype or F32; C is read only when beta != 0.
 * f16/bf16 run on tensor cores, f32 on fp32 FMAs. workspace / workspace_bytes: the split-K
 * workspace (see isthmus_gemm_workspace_bytes), or NULL.
 */
ISTHMUS_API int isthmus_gemm(void *c, const void *a, const void *b, int64_t m, int64_t n, int64_t k,
                             int32_t transpose_a, int32_t transpose_b, float alpha, float beta,
                             int32_t ab_dtype, int32_t c_dtype, void *workspace, int64_t workspace_bytes,
                             void *stream);

/*
 * The split-K workspace of the tensor-core GEMMs (isthmus_gemm, isthmus_moe_gate_up,
 * isthmus_moe_down). A decode-sized product (at most 64 rows, or 64 routed pairs) on f16/bf16
 * views the tile engine takes has few column tiles to spread over the SMs; given a workspace,
 * it cuts K into up to 16 runs, one block each, and the last block of a tile to finish adds the
 * runs' fp32 partial sums in run order (bitwise reproducible) and writes C. The workspace holds
 * one int32 arrival counter a tile, which must be 0 before the first launch (zero it once when
 * allocating it) and which each launch leaves at 0 again (safe to capture in a CUDA graph), and
 * the partials. *bytes: the size that lets every such launch on the current device split as far
 * as it would; a smaller workspace splits less, a NULL one not at all (the same kernel unsplit).
 * One workspace serves launches that follow each other on one stream, not concurrent ones.
 * It must be 256-byte aligned (device allocations are).
 */
ISTHMUS_API int isthmus_gemm_workspace_bytes(int64_t *bytes);

/* ---- Model glue: embedding lookup, row bias, SwiGLU product, argmax ---------------------- */

/*
 * Element-wise steps of a decoder model, over contiguous tensors of one float dtype (F32, F16,
 * BF16; fp32 arithmetic):
 *
 *   isthmus_embedding: out[t, :] = table[ids[t], :] for out (tokens, hidden), table
 *                      (vocab, hidden), ids int32 (tokens); an id outside [0, vocab) gives a
 *                      NaN row rather than an out-of-range read.
 *   isthmus_add_bias:  out[r, c] = x[r, c] + bias[c] for (rows, cols); out may alias x.
 *   isthmus_silu_mul:  out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)), over
 *                      count elements; out may alias gate or up.
 */
ISTHMUS_API int isthmus_embedding(void *out, const void *table, const int32_t *ids, int64_t tokens,
                                  int64_t vocab, int64_t hidden, int32_t dtype, void *stream);
ISTHMUS_API int isthmus_add_bias(void *out, const void *x, const void *bias, int64_t rows,
                                 int64_t cols, int32_t dtype, void *stream);
ISTHMUS_API int isthmus_silu_mul(void *out, const void *gate, const void *up, int64_t count,
                                 int32_t dtype, void *stream);
/*
 * Greedy sampling: out[r] = the column of the largest value of row r of the f32 logits
 * (rows, cols), the lowest column on ties; NaNs are ignored (a row of only NaNs gives 0).
 * cols in [1, 2^31 - 1].
 */
ISTHMUS_API int isthmus_argmax(int32_t *out, const float *logits, int64_t rows, int64_t cols, void *stream);
/*
 * Sampling: ids[r] drawn from row r of the f32 logits (rows, cols) by softmax(logits / temperature)
 * restricted to the top_k largest (0: no limit; ties go to the lower column), then to the shortest
 * prefix, largest first, whose probability reaches top_p (1: all), then to the tokens whose
 * probability is at least min_p times the largest (0: all). NaN logits are never drawn; a row
 * with no finite logit gives its argmax (isthmus_argmax's answer). The uniform number is the counter generator's (isthmus_fill_random)
 * at (seeds[r], offsets[r]), and offsets[r] is incremented, so a replayed CUDA graph draws anew.
 * probs (rows) F32 or NULL: the drawn token's probability under the restricted distribution.
 * seeds (rows) U64 read-only, offsets (rows) U64 read and written. temperature > 0 (greedy is
 * isthmus_argmax); top_p in (0, 1]; min_p in [0, 1]; cols in [1, 2^31 - 1].
 */
ISTHMUS_API int isthmus_sample(int32_t *ids, float *probs, const float *logits, int64_t rows, int64_t cols,
                               const uint64_t *seeds, uint64_t *offsets, float temperature, int64_t top_k,
                               float top_p, float min_p, void *stream);

/* ---- random fills ------------------------------------------------------------------------- */

/*
 * Fills `count` contiguous elements of a float tensor (F32, F16, BF16) with random values from a
 * counter-based generator: element i depends only on (seed, i), through SplitMix64's output
 * function of seed + (i + 1) * 0x9E3779B97F4A7C15. With u = (bits >> 40) * 2^-24:
 *   ISTHMUS_RANDOM_UNIFORM: fma(u, b - a, a), uniform in [a, b) (bit-identical to the host's);
 *   ISTHMUS_RANDOM_NORMAL:  mean a, standard deviation b, by Box-Muller from u1 = ((bits >> 40) + 1)
 *                           * 2^-24 and u2 = ((bits >> 16) & 0xFFFFFF) * 2^-24.
 * For benchmark and test inputs made on the device instead of drawn on the host.
 */
typedef enum isthmus_random_distribution {
    ISTHMUS_RANDOM_UNIFORM = 0,
    ISTHMUS_RANDOM_NORMAL = 1
} isthmus_random_distribution;

ISTHMUS_API int isthmus_fill_random(void *out, int64_t count, int32_t dtype, uint64_t seed, int32_t distribution,
                                    float a, float b, void *stream);

/* ---- CUDA graphs ------------------------------------------------------------------------------ */

/*
 * Records the work issued on `stream` between begin and end (this library's launchers, cuBLAS
 * calls, device-to-device copies) as a CUDA graph and replays it with one launch: a model's
 * decode step then costs one host call instead of one per kernel. The capture is in relaxed mode,
 * so allocations on the capturing thread do not break it; work that cannot be captured (a copy
 * from pageable host memory, a synchronize) ends it with ISTHMUS_ERROR_CUDA naming the cause.
 *
 *   isthmus_graph_begin_capture: starts capturing `stream` (not the legacy default stream).
 *   isthmus_graph_end_capture:   ends it and instantiates the graph into *graph.
 *   isthmus_graph_launch:        replays *graph on `stream`, with the pointers and arguments of
 *                                the capture: refresh inputs in place before each launch.
 *   isthmus_graph_destroy:       frees it (NULL does nothing).
 */
ISTHMUS_API int isthmus_graph_begin_capture(void *stream);
ISTHMUS_API int isthmus_graph_end_capture(void *stream, void **graph);
ISTHMUS_API int isthmus_graph_launch(void *graph, void *stream);
ISTHMUS_API int isthmus_graph_destroy(void *graph);

#ifdef __cplusplus
}
#endif

#endif /* ISTHMUS_H */
