// A small driver that calls every launcher of isthmus.h on small, awkward inputs, for
// compute-sanitizer (memcheck, racecheck, initcheck) on the GPU machine. Plain C ABI calls, as any
// user would make them; exits non-zero on the first failing status or CUDA error.
//
//   compute-sanitizer --tool memcheck build/native/sanitize_driver
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "isthmus.h"

#define CHECK_CUDA(call)                                                                      \
    do {                                                                                      \
        cudaError_t err_ = (call);                                                            \
        if (err_ != cudaSuccess) {                                                            \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define CHECK_STATUS(call)                                                                     \
    do {                                                                                       \
        int status_ = (call);                                                                  \
        if (status_ != ISTHMUS_OK) {                                                           \
            fprintf(stderr, "%s:%d %s: status %d: %s\n", __FILE__, __LINE__, #call, status_,     \
                    isthmus_last_error());                                                     \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

// Device buffer of `bytes` filled with small pseudo-random values of the dtype (not zeros).
static void *random_buffer(size_t elements, int dtype, unsigned seed) {
    std::vector<unsigned char> host(elements * 4);
    srand(seed);
    for (size_t i = 0; i < elements; ++i) {
        float v = (rand() / (float)RAND_MAX) * 2.0f - 1.0f;
        if (dtype == ISTHMUS_F32) reinterpret_cast<float *>(host.data())[i] = v;
        if (dtype == ISTHMUS_F16) reinterpret_cast<__half *>(host.data())[i] = __float2half(v);
        if (dtype == ISTHMUS_BF16) reinterpret_cast<__nv_bfloat16 *>(host.data())[i] = __float2bfloat16(v);
    }
    size_t bytes = elements * (dtype == ISTHMUS_F32 ? 4 : 2);
    void *device = nullptr;
    CHECK_CUDA(cudaMalloc(&device, bytes));
    CHECK_CUDA(cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice));
    return device;
}

static void rmsnorm_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    const long long shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {2, 4097}, {1, 9000}};
    for (int dtype : dtypes) {
        for (const auto &shape : shapes) {
            const long long rows = shape[0], cols = shape[1], n = rows * cols;
            // One extra element everywhere, so the +1 offsets below exercise the unaligned path.
            char *x = static_cast<char *>(random_buffer(n + 1, dtype, 1));
            char *r = static_cast<char *>(random_buffer(n + 1, dtype, 2));
            char *w = static_cast<char *>(random_buffer(cols + 1, dtype, 3));
            char *out = static_cast<char *>(random_buffer(n + 1, dtype, 4));
            const int size = dtype == ISTHMUS_F32 ? 4 : 2;
            for (int offset = 0; offset <= 1; ++offset) {
                char *o = out + offset * size, *xx = x + offset * size, *rr = r + offset * size;
                CHECK_STATUS(isthmus_rmsnorm(o, nullptr, xx, nullptr, w, rows, cols, 1e-6f, dtype, stream));
                CHECK_STATUS(isthmus_rmsnorm(o, rr, xx, rr, w, rows, cols, 1e-6f, dtype, stream));
                CHECK_STATUS(isthmus_rmsnorm(xx, rr, xx, rr, w, rows, cols, 1e-6f, dtype, stream));
            }
            CHECK_CUDA(cudaStreamSynchronize(stream));
            CHECK_CUDA(cudaFree(x));
            CHECK_CUDA(cudaFree(r));
            CHECK_CUDA(cudaFree(w));
            CHECK_CUDA(cudaFree(out));
        }
    }
    printf("rmsnorm: ok\n");
}

// Device buffer holding `values` (int32).
static int32_t *int_buffer(const std::vector<int32_t> &values) {
    int32_t *device = nullptr;
    CHECK_CUDA(cudaMalloc(&device, values.size() * sizeof(int32_t) + 4));
    CHECK_CUDA(cudaMemcpy(device, values.data(), values.size() * sizeof(int32_t), cudaMemcpyHostToDevice));
    return device;
}

// The split-K workspace, zeroed once (its counters must start at 0); its size in *bytes.
static void *split_workspace(int64_t *bytes) {
    void *ws = nullptr;
    CHECK_STATUS(isthmus_gemm_workspace_bytes(bytes));
    CHECK_CUDA(cudaMalloc(&ws, *bytes));
    CHECK_CUDA(cudaMemset(ws, 0, *bytes));
    return ws;
}

static void scan_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    // batch, channels, length, groups, nstate: L of 1, odd, over one 1024-step chunk; N of 1, 16, 17, 256.
    const long long shapes[][5] = {{1, 1, 1, 1, 1}, {2, 3, 7, 1, 16}, {1, 4, 33, 2, 17}, {2, 2, 1100, 1, 16}, {1, 2, 40, 2, 256}};
    for (int dtype : dtypes) {
        const int size = dtype == ISTHMUS_F32 ? 4 : 2;
        for (const auto &s : shapes) {
            const long long batch = s[0], channels = s[1], length = s[2], groups = s[3], nstate = s[4];
            const long long seq = batch * channels * length, bc = batch * groups * nstate * length;
            const long long states = batch * channels * nstate;
            // One extra element everywhere, so the +1 offsets below exercise the element-wise path.
            char *u = static_cast<char *>(random_buffer(seq + 1, dtype, 11));
            char *delta = static_cast<char *>(random_buffer(seq + 1, dtype, 12));
            char *z = static_cast<char *>(random_buffer(seq + 1, dtype, 13));
            char *y = static_cast<char *>(random_buffer(seq + 1, dtype, 14));
            char *b = static_cast<char *>(random_buffer(bc + 1, dtype, 15));
            char *c = static_cast<char *>(random_buffer(bc + 1, dtype, 16));
            float *a = static_cast<float *>(random_buffer(channels * nstate, ISTHMUS_F32, 17));
            float *d = static_cast<float *>(random_buffer(channels, ISTHMUS_F32, 18));
            float *bias = static_cast<float *>(random_buffer(channels, ISTHMUS_F32, 19));
            float *state = static_cast<float *>(random_buffer(states + 1, ISTHMUS_F32, 20));
            for (int offset = 0; offset <= 1; ++offset) {
                const long long o = offset * size;
                CHECK_STATUS(isthmus_selective_scan(y + o, state, u + o, delta + o, z + o, b + o, c + o, a, d, bias, state,
                                                    nullptr, 0, batch, channels, length, groups, nstate, 1, dtype, stream));
                CHECK_STATUS(isthmus_selective_scan(y + o, nullptr, u + o, delta + o, nullptr, b + o, c + o, a, nullptr,
                                                    nullptr, nullptr, nullptr, 0, batch, channels, length, groups, nstate,
                                                    0, dtype, stream));
            }
            // The rows of batch entry 0 packed as sequences of lengths 1, 0, the rest.
            if (length >= 2) {
                int32_t *starts = int_buffer({0, 1, 1, static_cast<int32_t>(length)});
                CHECK_STATUS(isthmus_selective_scan(y, state, u, delta, z, b, c, a, d, bias, state, starts, 3, 1, channels,
                                                    length, groups, nstate, 1, dtype, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                CHECK_CUDA(cudaFree(starts));
            }
            // Decode steps: batch rows as tokens, a pool of batch + 1 slots, one padding row.
            std::vector<int32_t> slot_values;
            for (long long r = 0; r < batch; ++r) slot_values.push_back(r == 1 ? -1 : static_cast<int32_t>(batch - r));
            int32_t *slots = int_buffer(slot_values);
            float *pool = static_cast<float *>(random_buffer((batch + 1) * channels * nstate, ISTHMUS_F32, 21));
            CHECK_STATUS(isthmus_selective_state_update(y, pool, slots, batch + 1, u, delta, z, b, c, a, d, bias, batch,
                                                        channels, groups, nstate, 1, dtype, stream));
            CHECK_STATUS(isthmus_selective_state_update(y + size, state, nullptr, batch, u, delta, nullptr, b, c, a,
                                                        nullptr, nullptr, batch, channels, groups, nstate, 0, dtype,
                                                        stream));
            CHECK_CUDA(cudaStreamSynchronize(stream));
            for (void *p : {static_cast<void *>(u), static_cast<void *>(delta), static_cast<void *>(z),
                            static_cast<void *>(y), static_cast<void *>(b), static_cast<void *>(c),
                            static_cast<void *>(a), static_cast<void *>(d), static_cast<void *>(bias),
                            static_cast<void *>(state), static_cast<void *>(slots), static_cast<void *>(pool)})
                CHECK_CUDA(cudaFree(p));
        }
    }
    printf("selective scan: ok\n");
}

static void ssd_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    // batch, length, heads, head_dim, groups, nstate: L of 1, across chunks; P and N off the tiles, the largest.
    const long long shapes[][6] = {{1, 1, 1, 1, 1, 1}, {2, 70, 4, 5, 2, 17}, {1, 130, 2, 64, 1, 128}, {1, 40, 1, 256, 1, 256}};
    for (int dtype : dtypes) {
        for (const auto &s : shapes) {
            const long long batch = s[0], length = s[1], heads = s[2], head_dim = s[3], groups = s[4], nstate = s[5];
            const long long xs = batch * length * heads * head_dim, bc = batch * length * groups * nstate;
            const long long states = batch * heads * head_dim * nstate;
            void *x = random_buffer(xs, dtype, 31), *y = random_buffer(xs, dtype, 32);
            void *dt = random_buffer(batch * length * heads, dtype, 33);
            void *b = random_buffer(bc, dtype, 34), *c = random_buffer(bc, dtype, 35);
            float *a = static_cast<float *>(random_buffer(heads, ISTHMUS_F32, 36));
            float *d = static_cast<float *>(random_buffer(heads, ISTHMUS_F32, 37));
            float *bias = static_cast<float *>(random_buffer(heads, ISTHMUS_F32, 38));
            float *state = static_cast<float *>(random_buffer(states, ISTHMUS_F32, 39));
            for (int chunk : {0, 16, 64})
                CHECK_STATUS(isthmus_ssd_scan(y, state, x, dt, b, c, a, d, bias, state, nullptr, 0, batch, length, heads,
                                              head_dim, groups, nstate, 1, 0.0f, 0.5f, chunk, dtype, stream));
            // batch entry 0 packed as sequences of lengths 1, 0, the rest (a boundary inside the first chunk)
            if (length >= 2) {
                int32_t *starts = int_buffer({0, 1, 1, static_cast<int32_t>(length)});
                float *packed = static_cast<float *>(random_buffer(3 * heads * head_dim * nstate, ISTHMUS_F32, 40));
                CHECK_STATUS(isthmus_ssd_scan(y, packed, x, dt, b, c, a, nullptr, nullptr, packed, starts, 3, 1, length,
                                              heads, head_dim, groups, nstate, 0, -1e30f, 1e30f, 0, dtype, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                CHECK_CUDA(cudaFree(starts));
                CHECK_CUDA(cudaFree(packed));
            }
            // decode steps: batch rows as tokens, a pool of batch + 1 slots, one padding row
            std::vector<int32_t> slot_values;
            for (long long r = 0; r < batch; ++r) slot_values.push_back(r == 1 ? -1 : static_cast<int32_t>(batch - r));
            int32_t *slots = int_buffer(slot_values);
            float *pool = static_cast<float *>(random_buffer((batch + 1) * heads * head_dim * nstate, ISTHMUS_F32, 41));
            CHECK_STATUS(isthmus_ssd_state_update(y, pool, slots, batch + 1, x, dt, b, c, a, d, bias, batch, heads, head_dim,
                                                  groups, nstate, 1, 0.0f, 1e30f, dtype, stream));
            // the gated RMSNorm over rows of heads * head_dim in groups of head_dim, in place
            void *w = random_buffer(heads * head_dim, dtype, 42);
            CHECK_STATUS(isthmus_gated_rmsnorm(y, y, x, w, batch * length, heads * head_dim, head_dim, 1e-5f, dtype, stream));
            CHECK_CUDA(cudaStreamSynchronize(stream));
            for (void *p : {x, y, dt, b, c, w, static_cast<void *>(a), static_cast<void *>(d), static_cast<void *>(bias),
                            static_cast<void *>(state), static_cast<void *>(slots), static_cast<void *>(pool)})
                CHECK_CUDA(cudaFree(p));
        }
    }
    printf("ssd scan: ok\n");
}

static void conv1d_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    const long long shapes[][3] = {{1, 1, 1}, {2, 3, 2}, {2, 5, 300}};  // batch, channels, length
    for (int dtype : dtypes) {
        for (const auto &s : shapes) {
            for (long long width : {1LL, 2LL, 4LL, 8LL}) {
                const long long batch = s[0], channels = s[1], length = s[2];
                void *x = random_buffer(batch * channels * length, dtype, 31);
                void *out = random_buffer(batch * channels * length, dtype, 32);
                void *w = random_buffer(channels * width, dtype, 33);
                void *bias = random_buffer(channels, dtype, 34);
                void *state = random_buffer(batch * channels * width, dtype, 35);  // >= W-1 per channel
                CHECK_STATUS(isthmus_causal_conv1d(out, state, x, w, bias, state, batch, channels, length, width, 1,
                                                   dtype, stream));
                CHECK_STATUS(isthmus_causal_conv1d(out, nullptr, x, w, nullptr, nullptr, batch, channels, length, width,
                                                   0, dtype, stream));
                CHECK_STATUS(isthmus_causal_conv1d_update(x, state, x, w, bias, batch, channels, width, 1, dtype,
                                                          stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                for (void *p : {x, out, w, bias, state}) CHECK_CUDA(cudaFree(p));
            }
        }
    }
    printf("causal conv1d: ok\n");
}

// Three sequences over a paged cache (cached 0 / 17 / 33 tokens, 5 / 1 / 2 new), block size 16,
// GQA 6 query heads over 2 kv heads: append with RoPE, attend unsplit and split in three, merge.
static void attention_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    const int head_dims[] = {64, 80, 128, 256};
    const int batch = 3, block_size = 16, max_blocks = 3, num_blocks = 9, q_heads = 6, kv_heads = 2;
    const int cached[batch] = {0, 17, 33}, starts[batch + 1] = {0, 5, 6, 8};
    const int tokens = starts[batch], max_new = 5;
    const int table[batch * max_blocks] = {4, 0, 0, 1, 7, 0, 2, 8, 3};  // unused entries are 0
    const int positions[tokens] = {0, 1, 7, 40, 9000, 31, 100000, 2};  // RoPE positions past the cache slots too
    int32_t *d_table, *d_cached, *d_starts, *d_positions;
    CHECK_CUDA(cudaMalloc(&d_table, sizeof(table)));
    CHECK_CUDA(cudaMalloc(&d_cached, sizeof(cached)));
    CHECK_CUDA(cudaMalloc(&d_starts, sizeof(starts)));
    CHECK_CUDA(cudaMalloc(&d_positions, sizeof(positions)));
    CHECK_CUDA(cudaMemcpy(d_table, table, sizeof(table), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_cached, cached, sizeof(cached), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_starts, starts, sizeof(starts), cudaMemcpyHostToDevice));
    CHECK_CUDA(cudaMemcpy(d_positions, positions, sizeof(positions), cudaMemcpyHostToDevice));
    for (int dtype : dtypes) {
        for (int d : head_dims) {
            const size_t cache_elems = (size_t)num_blocks * block_size * kv_heads * d;
            void *k_cache = random_buffer(cache_elems, dtype, 5), *v_cache = random_buffer(cache_elems, dtype, 6);
            void *q = random_buffer((size_t)tokens * q_heads * d, dtype, 7);
            void *k = random_buffer((size_t)tokens * kv_heads * d, dtype, 8), *v = random_buffer((size_t)tokens * kv_heads * d, dtype, 9);
            void *out = random_buffer((size_t)tokens * q_heads * d, dtype, 10);
            const int splits = 3, chunk = 16;
            float *lse, *partial_out, *partial_lse;
            int32_t *split_counts;
            CHECK_CUDA(cudaMalloc(&lse, sizeof(float) * tokens * q_heads));
            CHECK_CUDA(cudaMalloc(&partial_out, sizeof(float) * splits * tokens * q_heads * d));
            CHECK_CUDA(cudaMalloc(&partial_lse, sizeof(float) * splits * tokens * q_heads));
            CHECK_CUDA(cudaMalloc(&split_counts, sizeof(int32_t) * tokens * q_heads));
            CHECK_CUDA(cudaMemset(split_counts, 0, sizeof(int32_t) * tokens * q_heads));
            CHECK_STATUS(isthmus_attention_append(q, k_cache, v_cache, k, v, d_table, d_cached, d_starts, nullptr, batch, tokens,
                                                  max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 2, 10000.0f, 1.0f,
                                                  1.0f, 0.0f, 0.0f, 0, nullptr, 1, 1.0f, ISTHMUS_KV_MODEL_DTYPE, nullptr, nullptr, dtype, stream));
            // Again with Llama 3.1 scaling (all three frequency regimes at d >= 64), interleaved, explicit positions.
            CHECK_STATUS(isthmus_attention_append(q, k_cache, v_cache, k, v, d_table, d_cached, d_starts, d_positions, batch,
                                                  tokens, max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 1, 10000.0f,
                                                  1.0f, 4.0f, 1.0f, 4.0f, 32, nullptr, 1, 1.0f, ISTHMUS_KV_MODEL_DTYPE, nullptr, nullptr, dtype, stream));
            // Again with LongRoPE (d / 2 short then d / 2 long factors, a host array): sequences on both sides of 8 tokens.
            float longrope_factors[256];
            for (int j = 0; j < d; j++) longrope_factors[j] = 1.0f + 0.25f * j;
            CHECK_STATUS(isthmus_attention_append(q, k_cache, v_cache, k, v, d_table, d_cached, d_starts, nullptr, batch, tokens,
                                                  max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 2, 10000.0f, 1.0f,
                                                  1.0f, 0.0f, 0.0f, 0, longrope_factors, 8, 1.2f, ISTHMUS_KV_MODEL_DTYPE, nullptr, nullptr, dtype,
                                                  stream));
            CHECK_STATUS(isthmus_attention(out, lse, nullptr, nullptr, nullptr, q, k_cache, v_cache, d_table, d_cached, d_starts, batch,
                                           tokens, max_new, max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 1, 64, 1,
                                           0.1f, 7, -1, 0.0f, ISTHMUS_KV_MODEL_DTYPE, nullptr, nullptr, dtype, stream));
            CHECK_STATUS(isthmus_attention(out, lse, partial_out, partial_lse, split_counts, q, k_cache, v_cache, d_table, d_cached, d_starts,
                                           batch, tokens, max_new, max_blocks, num_blocks, block_size, q_heads, kv_heads, d,
                                           splits, chunk, 0, 0.1f, -1, 3, 30.0f, ISTHMUS_KV_MODEL_DTYPE, nullptr, nullptr, dtype, stream));
            CHECK_STATUS(isthmus_attention_merge(out, lse, partial_out, partial_lse, splits, (long long)tokens * q_heads, d, dtype,
                                                 ISTHMUS_F32, stream));
            CHECK_CUDA(cudaStreamSynchronize(stream));
            for (void *p : {k_cache, v_cache, q, k, v, out}) CHECK_CUDA(cudaFree(p));
            for (float *p : {lse, partial_out, partial_lse}) CHECK_CUDA(cudaFree(p));
            CHECK_CUDA(cudaFree(split_counts));
        }
    }
    // Quantized caches (int8 with per-token scales, fp8 with per-head scales): append with RoPE, a
    // decode-sized and a prefill-sized attend (20 new tokens in one sequence), split and unsplit.
    for (int cache_type : {ISTHMUS_KV_INT8, ISTHMUS_KV_FP8_E4M3}) {
        for (int dtype : {ISTHMUS_F32, ISTHMUS_BF16}) {
            for (int d : {64, 128}) {
                const size_t cache_elems = (size_t)num_blocks * block_size * kv_heads * d;
                const size_t scales = cache_type == ISTHMUS_KV_INT8 ? (size_t)num_blocks * block_size * kv_heads : kv_heads;
                void *k_cache, *v_cache;
                float *k_scales, *v_scales;
                CHECK_CUDA(cudaMalloc(&k_cache, cache_elems));
                CHECK_CUDA(cudaMalloc(&v_cache, cache_elems));
                CHECK_CUDA(cudaMemset(k_cache, 0, cache_elems));
                CHECK_CUDA(cudaMemset(v_cache, 0, cache_elems));
                k_scales = static_cast<float *>(random_buffer(scales, ISTHMUS_F32, 11));
                v_scales = static_cast<float *>(random_buffer(scales, ISTHMUS_F32, 12));
                const int starts20[batch + 1] = {0, 20, 21, 23};
                int32_t *d_starts20;
                CHECK_CUDA(cudaMalloc(&d_starts20, sizeof(starts20)));
                CHECK_CUDA(cudaMemcpy(d_starts20, starts20, sizeof(starts20), cudaMemcpyHostToDevice));
                const int tokens20 = starts20[batch];
                void *q = random_buffer((size_t)tokens20 * q_heads * d, dtype, 7);
                void *k = random_buffer((size_t)tokens20 * kv_heads * d, dtype, 8), *v = random_buffer((size_t)tokens20 * kv_heads * d, dtype, 9);
                void *out = random_buffer((size_t)tokens20 * q_heads * d, dtype, 10);
                const int splits = 3, chunk = 16;
                float *lse, *partial_out, *partial_lse;
                int32_t *split_counts;
                CHECK_CUDA(cudaMalloc(&lse, sizeof(float) * tokens20 * q_heads));
                CHECK_CUDA(cudaMalloc(&partial_out, sizeof(float) * splits * tokens20 * q_heads * d));
                CHECK_CUDA(cudaMalloc(&partial_lse, sizeof(float) * splits * tokens20 * q_heads));
                CHECK_CUDA(cudaMalloc(&split_counts, sizeof(int32_t) * tokens20 * q_heads));
                CHECK_CUDA(cudaMemset(split_counts, 0, sizeof(int32_t) * tokens20 * q_heads));
                // Sequence 0 takes 20 tokens in 3 blocks of 16 from slot 0 (table row 4, 0, 0 reaches 32: 20 fit).
                CHECK_STATUS(isthmus_attention_append(q, k_cache, v_cache, k, v, d_table, d_cached, d_starts20, nullptr, batch, tokens20,
                                                      max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 2, 10000.0f, 1.0f, 1.0f,
                                                      0.0f, 0.0f, 0, nullptr, 1, 1.0f, cache_type, k_scales, v_scales, dtype, stream));
                CHECK_STATUS(isthmus_attention(out, lse, nullptr, nullptr, nullptr, q, k_cache, v_cache, d_table, d_cached, d_starts,
                                               batch, tokens, max_new, max_blocks, num_blocks, block_size, q_heads, kv_heads, d, 1, 64, 1,
                                               0.1f, 7, -1, 0.0f, cache_type, k_scales, v_scales, dtype, stream));
                CHECK_STATUS(isthmus_attention(out, lse, partial_out, partial_lse, split_counts, q, k_cache, v_cache, d_table, d_cached,
                                               d_starts20, batch, tokens20, 20, max_blocks, num_blocks, block_size, q_heads, kv_heads, d,
                                               splits, chunk, 1, 0.1f, -1, -1, 0.0f, cache_type, k_scales, v_scales, dtype, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                for (void *p : {k_cache, v_cache, q, k, v, out}) CHECK_CUDA(cudaFree(p));
                for (float *p : {lse, partial_out, partial_lse, k_scales, v_scales}) CHECK_CUDA(cudaFree(p));
                CHECK_CUDA(cudaFree(split_counts));
                CHECK_CUDA(cudaFree(d_starts20));
            }
        }
    }
    CHECK_CUDA(cudaFree(d_table));
    CHECK_CUDA(cudaFree(d_cached));
    CHECK_CUDA(cudaFree(d_starts));
    CHECK_CUDA(cudaFree(d_positions));
    printf("attention: ok\n");
}

// The MoE layer launch by launch, with E, k, H, I and token counts that are no multiple of any
// tile, a grouped sigmoid router, and one expert that receives nothing; then the dense GEMM.
static void moe_cases(cudaStream_t stream) {
    const int tile = ISTHMUS_MOE_TILE_M;
    for (int dtype : {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16}) {
        for (int tokens : {1, 37}) {
            const int experts = 8, k = 2, hidden = 40, inter = 23;
            const int64_t pairs = int64_t(tokens) * k;
            const int64_t capacity = pairs + (experts < pairs ? experts : pairs) * (tile - 1);
            const int64_t tiles = (capacity + tile - 1) / tile;
            void *x = random_buffer(size_t(tokens) * hidden, dtype, 20);
            void *logits = random_buffer(size_t(tokens) * experts, dtype, 21);
            void *w13 = random_buffer(size_t(experts) * 2 * inter * hidden, dtype, 22);
            void *w2 = random_buffer(size_t(experts) * hidden * inter, dtype, 23);
            void *residual = random_buffer(size_t(tokens) * hidden, dtype, 24);
            float *bias = static_cast<float *>(random_buffer(experts, ISTHMUS_F32, 25));
            float *weights, *stats;
            int32_t *ids, *sorted, *tile_experts, *total, *counts, *dropped;
            void *act, *slots, *out;
            const int size = dtype == ISTHMUS_F32 ? 4 : 2;
            CHECK_CUDA(cudaMalloc(&weights, pairs * 4));
            CHECK_CUDA(cudaMalloc(&stats, (experts + 2) * 4));
            CHECK_CUDA(cudaMalloc(&ids, pairs * 4));
            CHECK_CUDA(cudaMalloc(&sorted, capacity * 4));
            CHECK_CUDA(cudaMalloc(&tile_experts, tiles * 4));
            CHECK_CUDA(cudaMalloc(&total, 4));
            CHECK_CUDA(cudaMalloc(&counts, experts * 4));
            CHECK_CUDA(cudaMalloc(&dropped, pairs * 4));
            CHECK_CUDA(cudaMalloc(&act, pairs * inter * size));
            CHECK_CUDA(cudaMalloc(&slots, pairs * hidden * size));
            CHECK_CUDA(cudaMalloc(&out, size_t(tokens) * hidden * size));
            int64_t split_bytes = 0;
            void *split_ws = split_workspace(&split_bytes);
            CHECK_STATUS(isthmus_moe_topk(weights, ids, logits, bias, tokens, experts, k, ISTHMUS_MOE_SIGMOID, 1, 4, 2,
                                          2.5f, dtype, stream));
            CHECK_STATUS(isthmus_moe_topk(weights, ids, logits, nullptr, tokens, experts, k, ISTHMUS_MOE_SOFTMAX, 1, 1, 1,
                                          1.0f, dtype, stream));
            // Align, both expert GEMMs and the combine for one routing.
            auto experts_pass = [&](const int32_t *route, int32_t expert_capacity, const float *route_weights,
                                    void *dst, const void *shared) {
                CHECK_STATUS(isthmus_moe_align(sorted, tile_experts, total, counts, dropped, route, pairs, experts, tile,
                                               expert_capacity, capacity, stream));
                CHECK_STATUS(isthmus_moe_gate_up(act, x, w13, sorted, tile_experts, total, tokens, k, experts, hidden,
                                                 inter, capacity, dtype, split_ws, split_bytes, stream));
                CHECK_STATUS(isthmus_moe_down(slots, act, w2, route_weights, sorted, tile_experts, total, pairs, experts,
                                              hidden, inter, capacity, dtype, split_ws, split_bytes, stream));
                CHECK_STATUS(isthmus_moe_combine(dst, slots, dropped, shared, residual, tokens, k, hidden, dtype, stream));
            };
            experts_pass(ids, 0, weights, out, nullptr);
            CHECK_STATUS(isthmus_moe_router_stats(stats, stats + experts, stats + experts + 1, logits, counts, tokens,
                                                  experts, k, ISTHMUS_MOE_SOFTMAX, dtype, stream));
            // User-given routing in which expert 3 receives nothing and expert 0 takes most pairs,
            // aligned with a capacity of 5 pairs per expert, so that pairs are dropped; the combine
            // writes in place over the residual.
            std::vector<int32_t> given(pairs);
            for (int64_t p = 0; p < pairs; ++p) given[p] = p % 5 == 0 ? 7 : (p % k == 0 ? 0 : 1 + int32_t(p % 2));
            int32_t *given_ids = int_buffer(given);
            experts_pass(given_ids, 5, nullptr, residual, out);
            // The dense GEMM: C (tokens, inter) = x (tokens, hidden) * op(B), all transposes, f32 and dtype outputs.
            for (int ta = 0; ta < 2; ++ta)
                for (int tb = 0; tb < 2; ++tb) {
                    CHECK_STATUS(isthmus_gemm(out, x, w13, tokens, inter, hidden, ta, tb, 1.0f, 0.0f, dtype, dtype, nullptr,
                                              0, stream));
                    CHECK_STATUS(isthmus_gemm(act, x, w13, tokens, inter, hidden, ta, tb, 1.0f, 0.0f, dtype, ISTHMUS_F32,
                                              split_ws, split_bytes, stream));
                }
            CHECK_STATUS(isthmus_gemm(act, x, w13, tokens, inter, hidden, 0, 1, 0.5f, 0.5f, dtype, ISTHMUS_F32, split_ws,
                                      split_bytes, stream));
            if (dtype != ISTHMUS_F32) {
                // Aligned views the tile engine takes: the decode tile split over K (1000: not a
                // whole number of stages), beta reading C once, both transposes of B.
                const int64_t dm = 3, dn = 72, dk = 1000;
                void *da = random_buffer(size_t(dm) * dk, dtype, 26), *db = random_buffer(size_t(dk) * dn, dtype, 27);
                void *dc = random_buffer(size_t(dm) * dn, ISTHMUS_F32, 28);
                for (int tb = 0; tb < 2; ++tb)
                    CHECK_STATUS(isthmus_gemm(dc, da, db, dm, dn, dk, 0, tb, 1.0f, 0.5f, dtype, ISTHMUS_F32, split_ws,
                                              split_bytes, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                for (void *p : {da, db, dc}) CHECK_CUDA(cudaFree(p));
            }
            CHECK_CUDA(cudaStreamSynchronize(stream));
            for (void *p : {x, logits, w13, w2, residual, static_cast<void *>(bias), static_cast<void *>(weights),
                            static_cast<void *>(stats), static_cast<void *>(ids), static_cast<void *>(sorted),
                            static_cast<void *>(tile_experts), static_cast<void *>(total), static_cast<void *>(counts),
                            static_cast<void *>(dropped),
                            act, slots, out, static_cast<void *>(given_ids), split_ws})
                CHECK_CUDA(cudaFree(p));
        }
    }
    printf("moe: ok\n");
}

static void model_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    // rows (tokens), cols (hidden); vocab 7, with ids at both ends and one out of range (a NaN row).
    const long long shapes[][2] = {{1, 1}, {3, 7}, {5, 129}};
    for (int dtype : dtypes) {
        for (const auto &shape : shapes) {
            const long long rows = shape[0], cols = shape[1], n = rows * cols, vocab = 7;
            void *table = random_buffer(vocab * cols, dtype, 5);
            void *x = random_buffer(n, dtype, 6);
            void *y = random_buffer(n, dtype, 7);
            void *bias = random_buffer(cols, dtype, 8);
            void *out = random_buffer(n, dtype, 9);
            std::vector<int32_t> ids(rows);
            for (long long t = 0; t < rows; ++t) ids[t] = t == 1 ? 7 : static_cast<int32_t>((t * 6) % vocab);
            int32_t *d_ids = int_buffer(ids);
            CHECK_STATUS(isthmus_embedding(out, table, d_ids, rows, vocab, cols, dtype, stream));
            CHECK_STATUS(isthmus_add_bias(out, x, bias, rows, cols, dtype, stream));
            CHECK_STATUS(isthmus_add_bias(x, x, bias, rows, cols, dtype, stream));
            CHECK_STATUS(isthmus_silu_mul(out, x, y, n, dtype, stream));
            CHECK_STATUS(isthmus_silu_mul(x, x, y, n, dtype, stream));
            if (dtype == ISTHMUS_F32) CHECK_STATUS(isthmus_argmax(d_ids, static_cast<const float *>(out), rows, cols, stream));
            CHECK_CUDA(cudaStreamSynchronize(stream));
            for (void *p : {table, x, y, bias, out, static_cast<void *>(d_ids)}) CHECK_CUDA(cudaFree(p));
        }
    }
    printf("model glue: ok\n");
}

// Sampling at vocabularies below, at and above the block's width, with every cut on and off.
static void sample_cases(cudaStream_t stream) {
    const long long shapes[][2] = {{1, 1}, {3, 37}, {2, 513}, {4, 5001}};
    for (const auto &shape : shapes) {
        const long long rows = shape[0], cols = shape[1];
        void *logits = random_buffer(rows * cols, ISTHMUS_F32, 11);
        uint64_t *seeds = nullptr, *offsets = nullptr;
        int32_t *ids = nullptr;
        float *probs = nullptr;
        CHECK_CUDA(cudaMalloc(&seeds, rows * sizeof(uint64_t)));
        CHECK_CUDA(cudaMalloc(&offsets, rows * sizeof(uint64_t)));
        CHECK_CUDA(cudaMalloc(&ids, rows * sizeof(int32_t)));
        CHECK_CUDA(cudaMalloc(&probs, rows * sizeof(float)));
        CHECK_CUDA(cudaMemset(seeds, 7, rows * sizeof(uint64_t)));
        CHECK_CUDA(cudaMemset(offsets, 0, rows * sizeof(uint64_t)));
        const float *l = static_cast<const float *>(logits);
        CHECK_STATUS(isthmus_sample(ids, probs, l, rows, cols, seeds, offsets, 1.0f, 0, 1.0f, 0.0f, stream));
        CHECK_STATUS(isthmus_sample(ids, nullptr, l, rows, cols, seeds, offsets, 0.7f, 5, 0.9f, 0.05f, stream));
        CHECK_CUDA(cudaStreamSynchronize(stream));
        for (void *p : {logits, static_cast<void *>(seeds), static_cast<void *>(offsets), static_cast<void *>(ids), static_cast<void *>(probs)})
            CHECK_CUDA(cudaFree(p));
    }
    printf("sample: ok\n");
}

// Fills of every float dtype and both distributions, at sizes around the grid's cap.
static void random_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    const long long counts[] = {1, 257, 4096 * 256 + 5};
    for (int dtype : dtypes) {
        for (long long n : counts) {
            void *out = nullptr;
            CHECK_CUDA(cudaMalloc(&out, n * (dtype == ISTHMUS_F32 ? 4 : 2)));
            CHECK_STATUS(isthmus_fill_random(out, n, dtype, 42, ISTHMUS_RANDOM_UNIFORM, -1.0f, 1.0f, stream));
            CHECK_STATUS(isthmus_fill_random(out, n, dtype, 43, ISTHMUS_RANDOM_NORMAL, 0.0f, 2.0f, stream));
            CHECK_CUDA(cudaStreamSynchronize(stream));
            CHECK_CUDA(cudaFree(out));
        }
    }
    printf("random fills: ok\n");
}

// The quantized expert GEMMs on every format and 16-bit dtype, for one token (the decode tile, split
// over K with the workspace), 37 and 600 (the wide tile), routed round-robin; weights of random
// bytes, as for the GEMV below.
static void quant_moe_cases(cudaStream_t stream) {
    const int tile = ISTHMUS_MOE_TILE_M, experts = 8, k = 2;
    int64_t split_bytes = 0;
    void *split_ws = split_workspace(&split_bytes);
    const int64_t hidden = 256, inter = 256;
    for (int format : {ISTHMUS_Q8_0, ISTHMUS_Q4_0, ISTHMUS_Q4_K}) {
        const int64_t block = format == ISTHMUS_Q4_K ? 256 : 32, block_bytes = format == ISTHMUS_Q8_0 ? 34 : format == ISTHMUS_Q4_0 ? 18 : 144;
        const int64_t expert_bytes = (2 * inter * hidden / block * block_bytes + 15) / 16 * 16;  // w13's, the larger
        std::vector<unsigned char> host(experts * expert_bytes);
        for (auto &b : host) b = static_cast<unsigned char>(rand());
        void *w = nullptr;
        CHECK_CUDA(cudaMalloc(&w, host.size()));
        CHECK_CUDA(cudaMemcpy(w, host.data(), host.size(), cudaMemcpyHostToDevice));
        for (int dtype : {ISTHMUS_F16, ISTHMUS_BF16})
            for (int tokens : {1, 37, 600}) {
                const int64_t pairs = int64_t(tokens) * k;
                const int64_t capacity = pairs + (experts < pairs ? experts : pairs) * (tile - 1);
                std::vector<int32_t> route(pairs);
                for (int64_t p = 0; p < pairs; ++p) route[p] = int32_t((p / k + p % k) % experts);
                int32_t *ids = int_buffer(route), *sorted, *tile_experts, *total, *counts, *dropped;
                CHECK_CUDA(cudaMalloc(&sorted, capacity * 4));
                CHECK_CUDA(cudaMalloc(&tile_experts, (capacity + tile - 1) / tile * 4));
                CHECK_CUDA(cudaMalloc(&total, 4));
                CHECK_CUDA(cudaMalloc(&counts, experts * 4));
                CHECK_CUDA(cudaMalloc(&dropped, pairs * 4));
                void *x = random_buffer(size_t(tokens) * hidden, dtype, 30);
                void *act = random_buffer(size_t(pairs) * inter, dtype, 31);
                void *slots = random_buffer(size_t(pairs) * hidden, dtype, 32);
                CHECK_STATUS(isthmus_moe_align(sorted, tile_experts, total, counts, dropped, ids, pairs, experts, tile, 0,
                                               capacity, stream));
                CHECK_STATUS(isthmus_moe_gate_up_quant(act, x, w, format, expert_bytes, sorted, tile_experts, total, tokens,
                                                       k, experts, hidden, inter, capacity, dtype, split_ws, split_bytes, stream));
                CHECK_STATUS(isthmus_moe_down_quant(slots, act, w, format, expert_bytes, nullptr, sorted, tile_experts, total,
                                                    pairs, experts, hidden, inter, capacity, dtype, split_ws, split_bytes, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                for (void *p : {x, act, slots, static_cast<void *>(ids), static_cast<void *>(sorted),
                                static_cast<void *>(tile_experts), static_cast<void *>(total), static_cast<void *>(counts),
                                static_cast<void *>(dropped)})
                    CHECK_CUDA(cudaFree(p));
            }
        CHECK_CUDA(cudaFree(w));
    }
    CHECK_CUDA(cudaFree(split_ws));
    printf("quantized experts: ok\n");
}

// The quantized GEMV on every format, dtype and unrolled row count, and the tensor-core tiles (f16,
// bf16) on each tile width (decode, 128 x 128, wide) with a K tail of 32 where the format has one,
// each without and with the split-K workspace (the GEMV's wide kernel, spread or not, and the
// decode tile's split), with weights of random bytes (finite scales are not needed for memcheck:
// every byte is read, none out of bounds). n = 300: three 128-row tiles of W, the last partly past it.
static void quant_cases(cudaStream_t stream) {
    const int formats[] = {ISTHMUS_Q8_0, ISTHMUS_Q4_0, ISTHMUS_Q4_K};
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    int64_t split_bytes = 0;
    void *split_ws = split_workspace(&split_bytes);
    for (long long n : {37LL, 300LL})
    for (int format : formats) {
        const long long k = format == ISTHMUS_Q4_K ? 512 : 544;
        const long long bytes = format == ISTHMUS_Q8_0 ? n * k / 32 * 34 : format == ISTHMUS_Q4_0 ? n * k / 32 * 18 : n * k / 256 * 144;
        std::vector<unsigned char> host((bytes + 15) / 16 * 16);
        for (auto &b : host) b = static_cast<unsigned char>(rand());
        void *w = nullptr;
        CHECK_CUDA(cudaMalloc(&w, host.size()));
        CHECK_CUDA(cudaMemcpy(w, host.data(), host.size(), cudaMemcpyHostToDevice));
        for (int dtype : dtypes)
            for (long long rows : {1LL, 2LL, 3LL, 8LL, 16LL, 64LL, 129LL, 1100LL}) {
                if (dtype == ISTHMUS_F32 && rows > 16) continue;
                void *x = random_buffer(rows * k, dtype, 20);
                void *out = random_buffer(rows * n, dtype, 21);
                CHECK_STATUS(isthmus_quant_gemv(out, x, w, format, rows, n, k, dtype, nullptr, 0, stream));
                CHECK_STATUS(isthmus_quant_gemv(out, x, w, format, rows, n, k, dtype, split_ws, split_bytes, stream));
                CHECK_CUDA(cudaStreamSynchronize(stream));
                for (void *p : {x, out}) CHECK_CUDA(cudaFree(p));
            }
        CHECK_CUDA(cudaFree(w));
    }
    CHECK_CUDA(cudaFree(split_ws));
    printf("quantized gemv: ok\n");
}

// A captured launch, replayed twice.
static void graph_cases(cudaStream_t stream) {
    const long long rows = 3, cols = 65;
    void *x = random_buffer(rows * cols, ISTHMUS_BF16, 10);
    void *w = random_buffer(cols, ISTHMUS_BF16, 11);
    void *out = random_buffer(rows * cols, ISTHMUS_BF16, 12);
    void *graph = nullptr;
    CHECK_STATUS(isthmus_graph_begin_capture(stream));
    CHECK_STATUS(isthmus_rmsnorm(out, nullptr, x, nullptr, w, rows, cols, 1e-6f, ISTHMUS_BF16, stream));
    CHECK_STATUS(isthmus_graph_end_capture(stream, &graph));
    for (int replay = 0; replay < 2; ++replay) CHECK_STATUS(isthmus_graph_launch(graph, stream));
    CHECK_CUDA(cudaStreamSynchronize(stream));
    CHECK_STATUS(isthmus_graph_destroy(graph));
    for (void *p : {x, w, out}) CHECK_CUDA(cudaFree(p));
    printf("graphs: ok\n");
}

int main() {
    int count = 0;
    CHECK_STATUS(isthmus_device_count(&count));
    if (count == 0) {
        fprintf(stderr, "no CUDA device\n");
        return 1;
    }
    CHECK_STATUS(isthmus_set_device(0));
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    rmsnorm_cases(stream);
    scan_cases(stream);
    ssd_cases(stream);
    conv1d_cases(stream);
    attention_cases(stream);
    moe_cases(stream);
    model_cases(stream);
    sample_cases(stream);
    random_cases(stream);
    quant_cases(stream);
    quant_moe_cases(stream);
    graph_cases(stream);
    CHECK_CUDA(cudaStreamDestroy(stream));
    printf("sanitize driver: all kernels ran\n");
    return 0;
}
