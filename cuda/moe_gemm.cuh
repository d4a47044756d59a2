// The grouped GEMM of the MoE layer, which with one group is also the project's dense GEMM.
//
//   C[row, n] = epilogue( sum_k A[a_row, k] * B[group][n, k] )
//
// Two kernels share these arguments and epilogues: the tile engine (cuda/gemm_tile.cuh: 128 x 128
// tiles, mma.sync, cp.async) for f16/bf16 views it can copy in aligned 16-byte chunks, and the
// exact kernel below for f32 and for every other view (any strides, K not a multiple of 8,
// unaligned starts). The exact kernel computes a 32 x 64 tile of C. In the grouped form its 32
// rows lie within one tile of the aligned pair list (group_rows rows, a multiple of 32): that
// tile's expert picks B's group, and each row's pair index picks the row
// of A it gathers (pair / a_row_div: the token for gate+up, the pair itself for down) and the
// row of C it writes (the pair), so no permuted copy of the activations is ever made. Padding
// rows (the sentinel) load zeros and write nothing; tiles past the padded total exit at once.
//
// Tensor cores through nvcuda::wmma (16x16x16, f16/bf16 in, fp32 accumulate) for f16 and bf16;
// plain fp32 FMAs for f32 (keeps fp32 accuracy, without tensor-core speed). Global loads are
// 16-byte vectors where rows are contiguous and aligned (f32 only: such 16-bit views take the
// tile engine), else single elements through arbitrary strides, which serves every transpose
// and every tail.
//
// Epilogues: PLAIN   alpha * acc + beta * C_old (C_old read only when beta != 0)
//            SWIGLU  B's rows [n0, n0+32) are gate rows and [up+n0, up+n0+32) the matching up
//                    rows, so one tile holds both halves: C = silu(gate) * up
//            SCALED  acc * row_scale[pair] (the routing weight)
#pragma once

#include <mma.h>

#include <type_traits>

#include "common.cuh"

namespace isthmus {

constexpr int GEMM_BM = 32;
constexpr int GEMM_BN = 64;
// K depth of a tile: deep on the vector path, so that a block keeps 16 KB (16-bit) of weights in
// flight per step, which is what a decode-sized batch (one row tile, weights streamed once) needs;
// 32 on the element-wise fallback, whose per-thread registers grow with the depth.
template <typename T, int WIDTH> constexpr int gemm_bk() { return WIDTH == 1 ? 32 : 256 / static_cast<int>(sizeof(T)); }
constexpr int GEMM_THREADS = 128;
constexpr int GEMM_PAD = 8;  // keeps wmma's 16-element leading dimensions and staggers banks

enum GemmEpilogue { GEMM_PLAIN = 0, GEMM_SWIGLU = 1, GEMM_SCALED = 2 };

template <typename T, typename OutT> struct GemmArgs {
    OutT *c;
    int64_t ldc;
    const T *a;
    int64_t a_row_stride, a_k_stride;
    const T *b;
    int64_t b_n_stride, b_k_stride, b_group_stride;
    // B quantized instead (the tile engine's quantized source, cuda/quant_tile.cuh; b unused): each
    // group's bq_rows x k matrix in its format's device layout, bq_group_bytes after the previous.
    const uint8_t *bq;
    int64_t bq_rows, bq_group_bytes;
    // Grouped form (all three non-NULL) or dense form (all NULL: rows 0..m-1, group 0).
    const int32_t *sorted_rows;
    const int32_t *tile_groups;
    const int32_t *padded_total;
    int32_t group_rows;  // rows of one tile of the aligned pair list (tile_groups has one entry each)
    int32_t a_row_div;
    int32_t sentinel;
    const float *row_scale;  // SCALED only; NULL = 1
    int64_t m, n, k;         // m: rows of the dense form; n: columns of C; k: the inner dimension
    int64_t up_offset;       // SWIGLU: B's row where the up projection starts
    float alpha, beta;
};

// The B group of the block whose rows start at row m0, or -1 when the block has no work (past the
// padded total, or a tile no expert uses). The dense form has the one group 0.
template <typename T, typename OutT>
__device__ __forceinline__ int64_t gemm_block_group(const GemmArgs<T, OutT> &p, int64_t m0) {
    if (p.sorted_rows == nullptr) return 0;
    if (m0 >= *p.padded_total) return -1;
    return p.tile_groups[m0 / p.group_rows];
}

// Row r of the block's rows: the row of A it gathers and the row of C it writes, both -1 for a
// padding row (grouped) or a row past m (dense).
template <typename T, typename OutT>
__device__ __forceinline__ void gemm_row(const GemmArgs<T, OutT> &p, int64_t r, int64_t &arow, int64_t &crow) {
    arow = crow = -1;
    if (p.sorted_rows != nullptr) {
        const int32_t pair = p.sorted_rows[r];
        if (pair >= 0 && pair < p.sentinel) {
            arow = pair / p.a_row_div;
            crow = pair;
        }
    } else if (r < p.m) {
        arow = crow = r;
    }
}

// WIDTH elements of row `row` from column k on (zeros for a padding row or past the end).
// WIDTH > 1 only where the launcher checked that k is contiguous, k_count a multiple of WIDTH and
// every row start 16-byte aligned, so a piece is either wholly inside the row or wholly past it.
template <typename T, int WIDTH>
__device__ __forceinline__ Vec<T, WIDTH> load_piece(const T *base, int64_t row, int64_t row_stride, int64_t k,
                                                    int64_t k_stride, int64_t k_count) {
    Vec<T, WIDTH> piece;
    if (row >= 0 && k < k_count) {
        if constexpr (WIDTH > 1) {
            piece = *reinterpret_cast<const Vec<T, WIDTH> *>(base + row * row_stride + k);
        } else {
            piece.v[0] = base[row * row_stride + k * k_stride];
        }
    } else {
#pragma unroll
        for (int i = 0; i < WIDTH; ++i) piece.v[i] = from_float<T>(0.0f);
    }
    return piece;
}

// WIDTH: elements per global load, 16 / sizeof(T) when the launcher found every row start
// 16-byte aligned and k contiguous (a multiple of WIDTH), else 1 (any strides, any tails).
template <typename T, typename OutT, int EPILOGUE, int WIDTH>
__global__ void __launch_bounds__(GEMM_THREADS) grouped_gemm_kernel(const GemmArgs<T, OutT> p) {
    constexpr int GEMM_BK = gemm_bk<T, WIDTH>();
    constexpr int LDS = GEMM_BK + GEMM_PAD;
    constexpr int LDC = GEMM_BN + 4;
    constexpr int OUT_COLS = EPILOGUE == GEMM_SWIGLU ? GEMM_BN / 2 : GEMM_BN;
    constexpr int PIECES_PER_ROW = GEMM_BK / WIDTH;
    constexpr int A_PIECES = GEMM_BM * PIECES_PER_ROW / GEMM_THREADS;  // per thread
    constexpr int B_PIECES = GEMM_BN * PIECES_PER_ROW / GEMM_THREADS;
    static_assert(A_PIECES * GEMM_THREADS == GEMM_BM * PIECES_PER_ROW, "A tile splits evenly");
    static_assert(B_PIECES * GEMM_THREADS == GEMM_BN * PIECES_PER_ROW, "B tile splits evenly");
    using Piece = Vec<T, WIDTH>;
    __shared__ __align__(128) T tile_a[GEMM_BM][LDS];
    __shared__ __align__(128) T tile_b[GEMM_BN][LDS];
    __shared__ __align__(128) float tile_c[GEMM_BM][LDC];
    __shared__ int64_t a_rows[GEMM_BM];  // row of A to gather, -1 for padding
    __shared__ int64_t c_rows[GEMM_BM];  // row of C to write, -1 for padding
    __shared__ int64_t b_rows[GEMM_BN];  // row of B (within the group), -1 past the edge

    const int tid = threadIdx.x;
    const int64_t tile_m = blockIdx.x;
    const int64_t n0 = static_cast<int64_t>(blockIdx.y) * OUT_COLS;
    const int64_t group = gemm_block_group(p, tile_m * GEMM_BM);
    if (group < 0) return;  // uniform over the block
    if (tid < GEMM_BM) {
        int64_t arow, crow;
        gemm_row(p, tile_m * GEMM_BM + tid, arow, crow);
        a_rows[tid] = arow;
        c_rows[tid] = crow;
    }
    if (tid < GEMM_BN) {
        int64_t brow = -1;
        if (EPILOGUE == GEMM_SWIGLU) {
            const int64_t col = n0 + (tid % OUT_COLS);
            if (col < p.n) brow = tid < OUT_COLS ? col : p.up_offset + col;
        } else if (n0 + tid < p.n) {
            brow = n0 + tid;
        }
        b_rows[tid] = brow;
    }
    const T *b = p.b + group * p.b_group_stride;
    __syncthreads();

    // Each thread moves the same pieces of every K step: piece c covers row c / PIECES_PER_ROW,
    // columns (c % PIECES_PER_ROW) * WIDTH + [0, WIDTH). The next step's pieces are fetched into
    // registers while the tensor cores work on the current one (a two-stage pipeline).
    Piece next_a[A_PIECES], next_b[B_PIECES];
    auto fetch = [&](int64_t k0) {
#pragma unroll
        for (int q = 0; q < A_PIECES; ++q) {
            const int c = tid + q * GEMM_THREADS;
            const int64_t row = a_rows[c / PIECES_PER_ROW], k = k0 + (c % PIECES_PER_ROW) * WIDTH;
            next_a[q] = load_piece<T, WIDTH>(p.a, row, p.a_row_stride, k, p.a_k_stride, p.k);
        }
#pragma unroll
        for (int q = 0; q < B_PIECES; ++q) {
            const int c = tid + q * GEMM_THREADS;
            const int64_t row = b_rows[c / PIECES_PER_ROW], k = k0 + (c % PIECES_PER_ROW) * WIDTH;
            next_b[q] = load_piece<T, WIDTH>(b, row, p.b_n_stride, k, p.b_k_stride, p.k);
        }
    };
    auto stash = [&]() {
#pragma unroll
        for (int q = 0; q < A_PIECES; ++q) {
            const int c = tid + q * GEMM_THREADS;
            *reinterpret_cast<Piece *>(&tile_a[c / PIECES_PER_ROW][(c % PIECES_PER_ROW) * WIDTH]) = next_a[q];
        }
#pragma unroll
        for (int q = 0; q < B_PIECES; ++q) {
            const int c = tid + q * GEMM_THREADS;
            *reinterpret_cast<Piece *>(&tile_b[c / PIECES_PER_ROW][(c % PIECES_PER_ROW) * WIDTH]) = next_b[q];
        }
    };

    constexpr bool TENSOR_CORES = !std::is_same<T, float>::value;
    // Tensor cores: 4 warps as 2 x 2, each 16 rows x 32 columns (two 16x16 accumulators).
    const int warp = tid / 32;
    const int warp_row = (warp / 2) * 16;
    const int warp_col = (warp % 2) * 32;
    using namespace nvcuda;
    using MmaT = typename std::conditional<TENSOR_CORES, T, __half>::type;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2];
    wmma::fill_fragment(acc[0], 0.0f);
    wmma::fill_fragment(acc[1], 0.0f);
    // FMA path: thread (ty, tx) owns rows ty*4..+4 and columns tx*4..+4.
    const int ty = tid / 16, tx = tid % 16;
    float sums[4][4] = {};

    fetch(0);
    stash();
    __syncthreads();
    for (int64_t k0 = 0; k0 < p.k; k0 += GEMM_BK) {
        const bool more = k0 + GEMM_BK < p.k;  // uniform over the block
        if (more) fetch(k0 + GEMM_BK);
        if constexpr (TENSOR_CORES) {
#pragma unroll
            for (int kk = 0; kk < GEMM_BK; kk += 16) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, MmaT, wmma::row_major> fa;
                wmma::load_matrix_sync(fa, reinterpret_cast<const MmaT *>(&tile_a[warp_row][kk]), LDS);
#pragma unroll
                for (int j = 0; j < 2; ++j) {
                    // tile_b holds B as (n, k) rows, i.e. op(B) = (k, n) in column-major order.
                    wmma::fragment<wmma::matrix_b, 16, 16, 16, MmaT, wmma::col_major> fb;
                    wmma::load_matrix_sync(fb, reinterpret_cast<const MmaT *>(&tile_b[warp_col + j * 16][kk]), LDS);
                    wmma::mma_sync(acc[j], fa, fb, acc[j]);
                }
            }
        } else {
#pragma unroll 4
            for (int kk = 0; kk < GEMM_BK; ++kk) {
                float av[4], bv[4];
#pragma unroll
                for (int i = 0; i < 4; ++i) av[i] = to_float(tile_a[ty * 4 + i][kk]);
#pragma unroll
                for (int j = 0; j < 4; ++j) bv[j] = to_float(tile_b[tx * 4 + j][kk]);
#pragma unroll
                for (int i = 0; i < 4; ++i)
#pragma unroll
                    for (int j = 0; j < 4; ++j) sums[i][j] = fmaf(av[i], bv[j], sums[i][j]);
            }
        }
        __syncthreads();  // everyone is done reading the tiles
        if (more) {
            stash();
            __syncthreads();
        }
    }
    if constexpr (TENSOR_CORES) {
        wmma::store_matrix_sync(&tile_c[warp_row][warp_col], acc[0], LDC, wmma::mem_row_major);
        wmma::store_matrix_sync(&tile_c[warp_row][warp_col + 16], acc[1], LDC, wmma::mem_row_major);
    } else {
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) tile_c[ty * 4 + i][tx * 4 + j] = sums[i][j];
    }
    __syncthreads();

    for (int i = tid; i < GEMM_BM * OUT_COLS; i += GEMM_THREADS) {
        const int r = i / OUT_COLS, j = i % OUT_COLS;
        const int64_t crow = c_rows[r], col = n0 + j;
        if (crow < 0 || col >= p.n) continue;
        OutT *dst = p.c + crow * p.ldc + col;
        float v;
        if constexpr (EPILOGUE == GEMM_SWIGLU) {
            const float gate = tile_c[r][j], up = tile_c[r][j + OUT_COLS];
            v = gate / (1.0f + expf(-gate)) * up;
        } else if constexpr (EPILOGUE == GEMM_SCALED) {
            v = tile_c[r][j] * (p.row_scale != nullptr ? p.row_scale[crow] : 1.0f);
        } else {
            v = p.alpha * tile_c[r][j];
            if (p.beta != 0.0f) v += p.beta * to_float(*dst);
        }
        *dst = from_float<OutT>(v);
    }
}

}  // namespace isthmus
