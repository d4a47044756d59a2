// The tile engine (cuda/gemm_tile.cuh) on quantized weights: a B source (the BSRC of
// gemm_tile_kernel) for Q8_0, Q4_0 and Q4_K matrices in their device layouts (cuda/quant_gemv.cuh).
//
// Each 64-deep pass copies the quantized bytes of the tile's BN weight rows into the cp.async ring
// as they lie in memory (16-byte chunks, no registers on the way), so the ring holds 2 to 4 times
// fewer bytes a stage than for 16-bit weights. Once the pass's stage has landed, every thread of
// the block dequantizes its share into one BN x 64 tile of f16/bf16 after the ring, in the 16-bit
// K-major stage's own swizzled layout, and after one more barrier the warps read their B fragments
// from it with the same ldmatrix as the 16-bit GEMM and multiply with the same mma.sync.
//
// Why shared memory, not B fragments dequantized straight from lane-ordered weights: a tile's B is
// read by every warp row of the block (2 on the 128 x 128 and 128 x 256 tiles), so dequantizing
// into fragments would do the unpacking once per warp row; here it is done once per block and the
// weights keep their one layout for the GEMV and for this kernel.
//
// A stage per weight row: Q8_0 the 64 int8 values (4 chunks); Q4_0 two 32-value blocks of nibbles
// (2 chunks); Q4_K the block's 16-byte head (d, dmin, packed scales) and the 32 bytes of nibbles of
// the pass's 64-value run r = (k0 / 64) % 4, whose low nibbles are sub-block 2r and high ones 2r + 1
// (3 chunks). The f16 scales of Q8_0 and Q4_0 lie apart at 2-byte alignment, which cp.async cannot
// copy: each thread loads the few it needs into registers (Carry) one pass ahead instead.
//
// Dequantized value (the format's definition, in fp32, then rounded once to T):
//   Q8_0 d q;  Q4_0 d (q - 8);  Q4_K (d sc) q - (dmin mn).
// K tails (k a multiple of 32 but not of 64, Q8_0 and Q4_0) are zero-filled chunks with scale 0.
#pragma once

#include "gemm_tile.cuh"
#include "quant_gemv.cuh"

namespace isthmus {

// Where one of a tile's weight rows lies in its group's bytes, found once a tile (not once a pass):
// the offsets of its values (Q4_K: of its blocks) and of its f16 scales (Q8_0, Q4_0); values < 0:
// no row (past the edge).
struct QuantRowBytes {
    int64_t values, scales;
};

template <QFormat F> struct TileBQuant {
    static constexpr bool kKMajor = true;
    template <typename T> using Row = QuantRowBytes;
    static constexpr int kRowChunks = F == QFormat::Q8_0 ? 4 : F == QFormat::Q4_0 ? 2 : 3;
    static constexpr int kMaxItems = 8;  // 8-value chunks of the dequantized tile a thread makes
    template <int BN> static constexpr int stage_chunks() { return BN * kRowChunks; }
    template <int BN> static constexpr int work_chunks() { return tile_chunks<BN>(); }
    // Thread t makes the chunks at column t % 8 of rows t / 8 + i * (THREADS / 8).
    template <int BN, int THREADS> static constexpr int items() { return tile_chunks<BN>() / THREADS; }
    struct Carry {
        float d[kMaxItems];  // the scale of each of the thread's chunks in the next pass (Q8_0, Q4_0)
    };

    template <typename T, typename OutT>
    __device__ __forceinline__ static QuantRowBytes row(const GemmArgs<T, OutT> &p, int64_t, int64_t brow) {
        if (brow < 0) return {-1, 0};
        const int64_t k = p.k;
        if constexpr (F == QFormat::Q4_K) return {brow * (k / 256) * 144, 0};
        const int64_t value_bytes = F == QFormat::Q8_0 ? k : k / 2;  // a row's; the scales follow all rows' values
        return {brow * value_bytes, p.bq_rows * value_bytes + brow * (k / 32) * 2};
    }

    template <typename T, typename OutT>
    __device__ __forceinline__ static const uint8_t *group_bytes(const GemmArgs<T, OutT> &p, int64_t group) {
        return p.bq + group * p.bq_group_bytes;
    }

    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static void copy(uint4 *stage, const GemmArgs<T, OutT> &p, const QuantRowBytes *rows,
                                                int64_t group, int64_t, int64_t k0) {
        constexpr int total = stage_chunks<BN>();
        const uint8_t *const base = group_bytes(p, group);
        const int64_t k = p.k;
#pragma unroll
        for (int q = 0; q < (total + THREADS - 1) / THREADS; ++q) {
            const int i = static_cast<int>(threadIdx.x) + q * THREADS;
            if (total % THREADS != 0 && i >= total) break;
            const int r = i / kRowChunks, c = i % kRowChunks;
            const int64_t w = rows[r].values;
            bool valid = w >= 0;
            const uint8_t *at;
            if constexpr (F == QFormat::Q8_0) {
                at = base + w + k0 + 16 * c;
                valid = valid && k0 + 16 * c < k;
            } else if constexpr (F == QFormat::Q4_0) {
                at = base + w + k0 / 2 + 16 * c;
                valid = valid && k0 + 32 * c < k;
            } else {
                // the head (c = 0), then the two halves of run (k0 / 64) % 4's nibbles
                const int run = static_cast<int>(k0 / 64 % 4);
                at = base + w + k0 / 256 * 144 + (c == 0 ? 0 : 16 * (2 * run + c));
            }
            tc::cp_async<16>(stage + i, valid ? at : p.bq, valid);
        }
    }

    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static void fetch(Carry &carry, const GemmArgs<T, OutT> &p, const QuantRowBytes *rows,
                                                 int64_t group, int64_t k0) {
        if constexpr (F != QFormat::Q4_K) {
            static_assert(items<BN, THREADS>() <= kMaxItems, "the carry holds every chunk's scale");
            const int c = threadIdx.x % 8;
            // this thread's chunks' block of K: its scale lies (k0 + 8c) / 32 halves into the row's
            const uint8_t *const at = group_bytes(p, group) + (k0 + 8 * c) / 32 * 2;
            const bool in_k = k0 + 8 * c < p.k;
#pragma unroll
            for (int i = 0; i < items<BN, THREADS>(); ++i) {
                const QuantRowBytes row = rows[threadIdx.x / 8 + i * (THREADS / 8)];
                carry.d[i] = row.values >= 0 && in_k ? __half2float(*reinterpret_cast<const __half *>(at + row.scales)) : 0.0f;
            }
        }
    }

    // Values k0 + 8c .. k0 + 8c + 7 of the weight row whose stage chunks start at `row`; d is the
    // block's scale (Q8_0, Q4_0), `run` the pass's 64-value run of its Q4_K block.
    __device__ __forceinline__ static void values(float (&v)[8], const uint4 *row, int c, float d, int run) {
        if constexpr (F == QFormat::Q8_0) {
            const uint2 w = reinterpret_cast<const uint2 *>(row)[c];
#pragma unroll
            for (int j = 0; j < 8; ++j) v[j] = d * byte_to_float((j < 4 ? w.x : w.y) ^ 0x80808080u, j % 4, 128.0f);
        } else if constexpr (F == QFormat::Q4_0) {
            // values 0-15 of a block are the low nibbles of its bytes 0-15, values 16-31 the high ones
            const uint2 w = reinterpret_cast<const uint2 *>(row + c / 4)[c % 2];
            const int shift = (c % 4) / 2 * 4;
#pragma unroll
            for (int j = 0; j < 8; ++j) v[j] = d * byte_to_float(((j < 4 ? w.x : w.y) >> shift) & 0x0F0F0F0Fu, j % 4, 8.0f);
        } else {
            // sub-block 2 run + c / 4: its values 8 (c % 4) .. are nibbles (low or high) of those bytes
            const uint4 head = row[0];
            const __half *const h = reinterpret_cast<const __half *>(row);
            uint32_t sc, mn;
            q4k_scale_min(head, 2 * run + c / 4, sc, mn);
            const float scale = __half2float(h[0]) * static_cast<float>(sc), min = __half2float(h[1]) * static_cast<float>(mn);
            const uint2 w = reinterpret_cast<const uint2 *>(row + 1)[c % 4];
            const int shift = c / 4 * 4;
#pragma unroll
            for (int j = 0; j < 8; ++j) v[j] = fmaf(scale, byte_to_float(((j < 4 ? w.x : w.y) >> shift) & 0x0F0F0F0Fu, j % 4, 0.0f), -min);
        }
    }

    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static const uint4 *ready(const uint4 *stage, uint4 *work, const Carry &carry,
                                                         const GemmArgs<T, OutT> &, const QuantRowBytes *, int64_t kt) {
        const int c = threadIdx.x % 8;
#pragma unroll
        for (int i = 0; i < items<BN, THREADS>(); ++i) {
            const int r = threadIdx.x / 8 + i * (THREADS / 8);
            float v[8];
            values(v, stage + r * kRowChunks, c, F == QFormat::Q4_K ? 0.0f : carry.d[i], static_cast<int>(kt % 4));
            uint4 out;
            out.x = tc::pack2<T>(v[0], v[1]);
            out.y = tc::pack2<T>(v[2], v[3]);
            out.z = tc::pack2<T>(v[4], v[5]);
            out.w = tc::pack2<T>(v[6], v[7]);
            work[tile_chunk<true, BN>(r, c)] = out;
        }
        __syncthreads();  // the tile is whole before any warp reads its fragments
        return work;
    }
};

}  // namespace isthmus
