// The tile engine of the dense GEMM and of the MoE grouped GEMM (f16 and bf16 in, fp32 accumulate):
//
//   C[row, n] = epilogue( sum_k A[a_row, k] * B[group][n, k] )      (GemmArgs, cuda/moe_gemm.cuh)
//
// A block computes a 128 x BN tile of C (BN = 128: 4 warps; BN = 256: 8 warps, which halves the
// re-reads of A through L2 where there are blocks enough to fill the machine); each warp a 64 x 64
// piece as 4 x 8 mma.sync m16n8k16 accumulators (128 fp32 registers a thread). BN = 64 is the
// decode tile, for at most TILE_DECODE_ROWS real rows a tile: its 4 warps share one 64 x 64 piece
// (rows 0-63), each taking one 16-deep quarter of every stage (slice-K), and sum their partial
// accumulators through shared memory at the end; twice the blocks of BN = 128 for the same
// weights, and every warp busy, so that a decode batch streams its weights from every SM. Its
// stages hold only A's rows 0-63, and only those of slices with a real row are copied (48 KB and
// at most 168 registers: three blocks an SM). K advances 64 at a time through a 3-stage cp.async
// ring in dynamic shared memory: while the tensor cores work on one stage, the next two are in
// flight, and no loaded element passes through registers on its way to shared memory.
//
// Operand layouts. Each operand is either K-major (k contiguous: A as given, B given transposed,
// i.e. weights stored [out, in] as the models keep them) or MN-major (m or n contiguous: A given
// transposed, B as given). Either way a stage copies 16-byte chunks along the contiguous dimension:
//   K-major  tile of 128 or BN rows (m or n) x 64 k  = 8 chunks a row,  read with ldmatrix
//   MN-major tile of 64 k x 128 or BN columns        = 16 or 32 a row,   read with ldmatrix .trans
// and ldmatrix hands the mma its fragments in either case (cuda/mma.cuh gives the layouts).
// Swizzle: chunk c of tile row r lives at chunk (c ^ (r % 8)) of that row. ldmatrix reads one
// logical chunk of 8 consecutive rows, which the XOR spreads over 8 distinct 16-byte bank groups,
// so neither those reads nor the cp.async writes (a warp writes whole rows) conflict.
//
// Rows. In the grouped form the tile's 128 rows are one tile of the aligned pair list: the tile's
// expert picks B's group and each row's pair picks the row of A it gathers and of C it writes,
// as in the exact kernel. Rows past m (dense) or padding rows (grouped) are zero-filled by the
// copy (the decode tile skips them) and write nothing; a 16-row slice of the tile without any real row skips its mma.sync
// (decode-sized batches fill one or two slices of a tile: the weights stream, the MMAs do not
// run for padding).
//
// Split-K (the decode tile only): a decode batch of few weights' column tiles leaves SMs idle, so
// the launcher may cut K into `splits` runs of whole 64-deep stages, one block per (tile, run),
// blocks of a tile adjacent in the grid. After the slice-K sum, each block stores warp 0's fp32
// partial sums in the caller's workspace and counts itself in the tile's arrival counter; the
// block that arrives last adds the tile's partials in split order (0, 1, ...: the sum does not
// depend on which block came last, so results are bitwise reproducible), puts the counter back
// to 0 for the next launch (a CUDA graph replays the launch as it is) and runs the epilogue, so
// C is written once and beta reads it once. splits = 1 is the unsplit kernel. The kernel hands
// its B source each stage's place in the whole of K (a split's run starts at k_first), which a
// split quantized source needs (Q4_K picks its block's run by it).
//
// Block order: a 1-D grid walked in groups of TILE_GROUP_M row tiles, column tiles innermost
// within a group, so that the row tiles resident together share each B tile through L2 and
// a group's A rows stay there while its column tiles sweep.
//
// B source (BSRC, TileB16 below): where a stage's B tile comes from. TileB16 copies 16-bit
// weights into the ring and ldmatrix reads them there; TileBQuant (cuda/quant_tile.cuh) copies
// quantized bytes into the ring and dequantizes each stage into a 16-bit tile after it, so the
// rest of the kernel (A copies, fragments, mma.sync, epilogues) is the same for both.
//
// The launcher takes this kernel only where every copy is a whole aligned 16-byte chunk (see
// tile_operand in native/moe_gemm.cu); other views and f32 take grouped_gemm_kernel.
#pragma once

#include "mma.cuh"
#include "moe_gemm.cuh"

namespace isthmus {

constexpr int TILE_BM = 128, TILE_BK = 64;
constexpr int TILE_STAGES = 3;
constexpr int TILE_GROUP_M = 8;
constexpr int TILE_DECODE_ROWS = 64;
// Warp 0's accumulators of the decode tile after the slice-K sum: one split's partial of a tile.
constexpr int TILE_SPLIT_FLOATS = 4 * 8 * 4 * 32;

// The split-K plan of one launch (see above); splits = 1: no split, the pointers unused.
struct TileSplit {
    float *partials;    // [tile][split][TILE_SPLIT_FLOATS], laid out [slice][n8][element][lane]
    int32_t *arrivals;  // one counter a tile, 0 between launches
    int32_t splits;
    int32_t k_tiles;  // 64-deep K stages of one split (the last split may have fewer)
};
// Warps of a 128 x BN tile: 2 x (BN / 64) each 64 x 64, or for the decode tile 4 on one 64 x 64
// piece, each a quarter of K (tile_warps_k); 16-byte chunks of `extent` rows (m or n) of one
// operand in one stage; the dynamic shared memory of the ring.
template <int BN> constexpr int tile_warps_k() { return BN == 64 ? 4 : 1; }
template <int BN> constexpr int tile_threads() { return BN == 64 ? 4 * 32 : 2 * (BN / 64) * 32; }
template <int EXTENT> constexpr int tile_chunks() { return EXTENT * TILE_BK * 2 / 16; }
// Rows of A a stage holds: the decode tile computes rows 0-63 of its 128 only.
template <int BN> constexpr int tile_a_rows() { return BN == 64 ? TILE_DECODE_ROWS : TILE_BM; }
// The ring (A, the B source's stages and its own chunks after them), or for the decode tile the
// slice-K meeting of its K quarters in the same memory (quarters 1-3 store one warp's accumulators
// each) where that is larger, as with the quantized sources' smaller stages.
template <typename BSRC, int BN> constexpr int tile_shared_bytes() {
    constexpr int ring = (TILE_STAGES * (tile_chunks<tile_a_rows<BN>()>() + BSRC::template stage_chunks<BN>()) +
                          BSRC::template work_chunks<BN>()) * 16;
    constexpr int meeting = (tile_warps_k<BN>() - 1) * TILE_SPLIT_FLOATS * 4;
    return ring > meeting ? ring : meeting;
}

// Chunk index, within one operand's stage of EXTENT (m or n) by 64 k, of logical chunk `chunk` of
// tile row `row` (a row: one m or n when K-major, one k when MN-major).
template <bool K_MAJOR, int EXTENT> __device__ __forceinline__ int tile_chunk(int row, int chunk) {
    constexpr int per_row = K_MAJOR ? TILE_BK / 8 : EXTENT / 8;
    return row * per_row + (chunk ^ (row & 7));
}

// One operand's copy of one stage, EXTENT (m or n) by 64 k: the block's THREADS share its chunks,
// each thread's at the same place in the tile every stage. K-major: `rows[r]` points at tile row r's first element (NULL: zeros), `k` is K;
// a thread's chunks all sit at the same column (its thread index mod 8), so one test covers the
// K tail. MN-major: `src` is the source's first element, `stride` the distance between its k
// rows, `first` the tile's first column and `limit` the columns (m or n); a thread's chunks sit
// at one column and every row_step-th k row from its own. SKIP (K-major): chunk q of a thread is
// copied only where bit q of `wanted` is set (rows no MMA reads, those of slices without a real
// row, are left as they are).
template <bool K_MAJOR, int EXTENT, int THREADS, bool SKIP, typename T>
__device__ __forceinline__ void tile_copy(uint4 *stage, const T *src, const T *const *rows, int64_t first,
                                          int64_t stride, int64_t k0, int64_t k, int64_t limit, uint32_t wanted) {
    constexpr int per_row = K_MAJOR ? TILE_BK / 8 : EXTENT / 8;
    constexpr int row_step = THREADS / per_row;
    static_assert(tile_chunks<EXTENT>() % THREADS == 0, "the chunks split evenly");
    const int chunk = threadIdx.x % per_row, r0 = threadIdx.x / per_row;
    const int64_t col = K_MAJOR ? k0 + chunk * 8 : first + chunk * 8;
    const bool col_ok = col < (K_MAJOR ? k : limit);
    const T *from = src + (K_MAJOR ? 0 : (k0 + r0) * stride + col);
#pragma unroll
    for (int q = 0; q < tile_chunks<EXTENT>() / THREADS; ++q) {
        const int r = r0 + q * row_step;
        bool valid;
        const T *at;
        if constexpr (K_MAJOR) {
            if (SKIP && !(wanted >> q & 1)) continue;
            const T *row = rows[r];
            valid = col_ok && row != nullptr;
            at = valid ? row + col : src;
        } else {
            valid = col_ok && k0 + r < k;
            at = valid ? from + q * row_step * stride : src;
        }
        tc::cp_async<16>(stage + tile_chunk<K_MAJOR, EXTENT>(r, chunk), at, valid);
    }
}

// A fragments (16 x 16) of slice `row0` for k step `kk` (16 wide) from one stage of A_ROWS rows.
template <bool K_MAJOR, int A_ROWS>
__device__ __forceinline__ void tile_fragment_a(uint32_t (&a)[4], const uint4 *stage, int row0, int kk, int lane) {
    if constexpr (K_MAJOR) {
        // matrices: rows 0-7 / 8-15 (lanes 0-15) at k 0-7, then the same at k 8-15 (lanes 16-31)
        const int r = row0 + lane % 16;
        tc::ldmatrix_x4(a, stage + tile_chunk<true, A_ROWS>(r, kk / 8 + lane / 16));
    } else {
        // stored k by m: matrix i holds m (i % 2) * 8.., k (i / 2) * 8.., transposed on the way
        const int i = lane / 8, kr = kk + lane % 8 + (i / 2) * 8;
        tc::ldmatrix_x4_trans(a, stage + tile_chunk<false, A_ROWS>(kr, (row0 + (i % 2) * 8) / 8));
    }
}

// B fragments of two adjacent n8 tiles (columns col0.. and col0 + 8..) for k step kk.
template <bool K_MAJOR, int BN>
__device__ __forceinline__ void tile_fragment_b(uint32_t (&b0)[2], uint32_t (&b1)[2], const uint4 *stage, int col0,
                                                int kk, int lane) {
    uint32_t r[4];
    const int i = lane / 8;
    if constexpr (K_MAJOR) {
        // stored n by k: matrix i holds n (i / 2) * 8.., k (i % 2) * 8..
        const int n = col0 + lane % 8 + (i / 2) * 8;
        tc::ldmatrix_x4(r, stage + tile_chunk<true, BN>(n, kk / 8 + i % 2));
    } else {
        const int kr = kk + lane % 8 + (i % 2) * 8;
        tc::ldmatrix_x4_trans(r, stage + tile_chunk<false, BN>(kr, (col0 + (i / 2) * 8) / 8));
    }
    b0[0] = r[0];
    b0[1] = r[1];
    b1[0] = r[2];
    b1[1] = r[3];
}

// Where the kernel's B tiles come from (BSRC). This one: 16-bit elements in memory, K-major or
// MN-major, copied straight into the ring and read from there (the dense GEMM, the MoE weights).
// A source gives: Row (what the block keeps of each of its BN rows of B), stage_chunks (the
// ring's 16-byte chunks a stage) and work_chunks (more after the ring), row(), copy() of one
// stage, a Carry of per-thread state between passes with fetch() for a pass, and ready(): the
// stage as ldmatrix reads it, K-major or MN-major as kKMajor says. ready() is called by every
// thread of the block once a pass, after the barrier that publishes the stage.
template <bool K_MAJOR> struct TileB16 {
    static constexpr bool kKMajor = K_MAJOR;
    template <typename T> using Row = const T *;  // NULL: zeros
    template <int BN> static constexpr int stage_chunks() { return tile_chunks<BN>(); }
    template <int BN> static constexpr int work_chunks() { return 0; }
    struct Carry {};

    template <typename T, typename OutT>
    __device__ __forceinline__ static Row<T> row(const GemmArgs<T, OutT> &p, int64_t group, int64_t brow) {
        return brow >= 0 ? p.b + group * p.b_group_stride + brow * p.b_n_stride : nullptr;
    }
    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static void copy(uint4 *stage, const GemmArgs<T, OutT> &p, const Row<T> *rows, int64_t,
                                                int64_t n0, int64_t k0) {
        tile_copy<K_MAJOR, BN, THREADS, false>(stage, p.b, rows, n0, p.b_k_stride, k0, p.k, p.n, ~0u);
    }
    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static void fetch(Carry &, const GemmArgs<T, OutT> &, const Row<T> *, int64_t, int64_t) {}
    template <int BN, int THREADS, typename T, typename OutT>
    __device__ __forceinline__ static const uint4 *ready(const uint4 *stage, uint4 *, const Carry &,
                                                         const GemmArgs<T, OutT> &, const Row<T> *, int64_t) {
        return stage;
    }
};

// Split-K meeting of one decode tile, by warp 0 of each of its blocks (split_meet): its partial
// sums are the live slices' accumulators, laid out [slice][n8][element][lane]; true in the last
// block to arrive, with the sum of every split in `acc`.
__device__ __forceinline__ bool tile_split_meet(const TileSplit &split, int64_t tile, int part, float (&acc)[4][8][4],
                                                const bool (&live)[4], int lane) {
    return split_meet<4, 8 * 4>(
            split.partials + tile * split.splits * TILE_SPLIT_FLOATS, split.arrivals + tile, split.splits, part,
            [&](int e) -> float & { return acc[e / 32][e / 4 % 8][e % 4]; }, [&](int slice) { return live[slice]; }, lane);
}

template <typename T, typename OutT, int EPILOGUE, bool A_K_MAJOR, typename BSRC, int BN>
__global__ void __launch_bounds__(tile_threads<BN>(), BN == 256 ? 1 : BN == 128 ? 2 : 3)
    gemm_tile_kernel(const GemmArgs<T, OutT> p, const int64_t row_tiles, const int64_t col_tiles, const TileSplit split) {
    static_assert(sizeof(T) == 2, "tensor cores take f16 or bf16");
    static_assert(BN == 64 || BN == 128 || BN == 256, "tiles of 128 x 64 (decode), 128 x 128 or 128 x 256");
    constexpr int THREADS = tile_threads<BN>(), WARPS_K = tile_warps_k<BN>();
    constexpr int WARPS_M = WARPS_K == 1 ? 2 : 1, WARPS_N = BN / 64;
    static_assert(WARPS_K == 1 || tile_shared_bytes<BSRC, BN>() >= (WARPS_K - 1) * TILE_SPLIT_FLOATS * 4,
                  "the K quarters' partial sums fit in the ring");
    static_assert(A_K_MAJOR || EPILOGUE == GEMM_PLAIN, "gathered rows (the grouped form) are K-major");
    constexpr bool B_K_MAJOR = BSRC::kKMajor;
    static_assert(B_K_MAJOR || EPILOGUE == GEMM_PLAIN, "the grouped weights are K-major");
    constexpr int OUT_COLS = EPILOGUE == GEMM_SWIGLU ? BN / 2 : BN;
    constexpr int A_ROWS = tile_a_rows<BN>(), CHUNKS_A = tile_chunks<A_ROWS>(), CHUNKS_B = BSRC::template stage_chunks<BN>();
    extern __shared__ __align__(128) unsigned char gemm_tile_shared[];
    uint4 *const stages_a = reinterpret_cast<uint4 *>(gemm_tile_shared);
    uint4 *const stages_b = stages_a + TILE_STAGES * CHUNKS_A;
    uint4 *const work_b = stages_b + TILE_STAGES * CHUNKS_B;  // the source's own (a dequantized tile)
    __shared__ const T *a_rows[TILE_BM];  // row of A to gather, NULL for padding (K-major A)
    __shared__ int64_t c_rows[TILE_BM];   // row of C to write, -1 for padding
    using BRow = typename BSRC::template Row<T>;
    __shared__ BRow b_rows[BN];           // row of B in the group (K-major B), none past the edge
    __shared__ int slice_live[TILE_BM / 16];

    // Grouped rasterisation of the 1-D grid, whose blocks are (tile, split) pairs.
    const int splits = BN == 64 ? split.splits : 1;
    const int64_t id = blockIdx.x / splits, per_group = static_cast<int64_t>(TILE_GROUP_M) * col_tiles;
    const int64_t first_row_tile = id / per_group * TILE_GROUP_M;
    const int64_t group_rows = min(row_tiles - first_row_tile, static_cast<int64_t>(TILE_GROUP_M));
    const int64_t tile_m = first_row_tile + id % per_group % group_rows;
    const int64_t tile_n = id % per_group / group_rows;
    const int64_t m0 = tile_m * TILE_BM, n0 = tile_n * OUT_COLS;
    const int part = blockIdx.x % splits;

    const int tid = threadIdx.x;
    const int64_t group = gemm_block_group(p, m0);
    if (group < 0) return;  // uniform over the block
    if (tid < TILE_BM) {
        int64_t arow, crow;
        gemm_row(p, m0 + tid, arow, crow);
        a_rows[tid] = arow >= 0 ? p.a + arow * p.a_row_stride : nullptr;
        c_rows[tid] = crow;
    }
    if (tid < BN) {
        int64_t brow = -1;
        if constexpr (EPILOGUE == GEMM_SWIGLU) {
            // Warp column w holds output columns n0 + 32 w + [0, 32): their gate rows in its
            // first 32 columns, the matching up rows in the next 32.
            const int w = tid / 64, j = tid % 64;
            const int64_t col = n0 + w * 32 + j % 32;
            if (col < p.n) brow = j < 32 ? col : p.up_offset + col;
        } else if (n0 + tid < p.n) {
            brow = n0 + tid;
        }
        b_rows[tid] = BSRC::row(p, group, brow);
    }
    __syncthreads();
    if (tid < TILE_BM / 16) {
        int live = 0;
        for (int r = 0; r < 16; ++r) live |= c_rows[tid * 16 + r] >= 0;
        // the decode tile computes rows 0-63 only (the launcher gives it no more real rows)
        slice_live[tid] = live && (WARPS_K == 1 || tid < 4);
    }
    __syncthreads();  // slice_live
    // The decode tile copies only A's rows of slices with a real row (K-major: chunk q of this
    // thread is tile row tid / 8 + 16 q, in slice q); the wider tiles copy every row, as padding
    // rows are rare there.
    constexpr bool SKIP_A = A_K_MAJOR && BN == 64;
    uint32_t wanted_a = 0;
#pragma unroll
    for (int q = 0; q < CHUNKS_A / THREADS; ++q)
        wanted_a |= static_cast<uint32_t>(!SKIP_A || slice_live[(tid / 8 + q * THREADS / 8) / 16] != 0) << q;
    auto load_stage = [&](int stage, int64_t k0) {
        tile_copy<A_K_MAJOR, A_ROWS, THREADS, SKIP_A>(stages_a + stage * CHUNKS_A, p.a, a_rows, m0, p.a_k_stride, k0,
                                                      p.k, p.m, wanted_a);
        BSRC::template copy<BN, THREADS>(stages_b + stage * CHUNKS_B, p, b_rows, group, n0, k0);
    };

    // This block's K stages: all of them, or its split's run.
    const int64_t all_k_tiles = (p.k + TILE_BK - 1) / TILE_BK;
    const int64_t k_first = splits > 1 ? static_cast<int64_t>(part) * split.k_tiles : 0;
    const int64_t k_tiles = splits > 1 ? min(static_cast<int64_t>(split.k_tiles), all_k_tiles - k_first) : all_k_tiles;
#pragma unroll
    for (int s = 0; s < TILE_STAGES - 1; ++s) {
        if (s < k_tiles) load_stage(s, (k_first + s) * TILE_BK);
        tc::cp_async_commit();  // empty groups keep the count the wait below relies on
    }

    const int warp = tid / 32, lane = tid % 32;
    const int warp_k = WARPS_K == 1 ? 0 : warp / (WARPS_M * WARPS_N);  // the K quarter (decode tile)
    const int warp_m = warp % (WARPS_M * WARPS_N) / WARPS_N * 64, warp_n = warp % WARPS_N * 64;
    float acc[4][8][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.0f;
    bool live[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) live[i] = slice_live[warp_m / 16 + i] != 0;  // uniform over the warp
    // A warp whose 64 rows are all padding only copies (a decode batch: every warp below the first
    // 64 rows of the tile), so its B fragments are not read either.
    const bool warp_live = live[0] || live[1] || live[2] || live[3];
    typename BSRC::Carry carry;
    // The source sees K stages by their place in the whole of K (this split's run starts at k_first).
    BSRC::template fetch<BN, THREADS>(carry, p, b_rows, group, k_first * TILE_BK);

    int read = 0, write = TILE_STAGES - 1;  // the stages read and refilled this pass
    for (int64_t kt = 0; kt < k_tiles; ++kt) {
        // Stage kt has landed once at most STAGES - 2 younger groups are pending; the barrier
        // publishes every thread's copies and retires the reads of the stage refilled below.
        tc::cp_async_wait<TILE_STAGES - 2>();
        __syncthreads();
        if (kt + TILE_STAGES - 1 < k_tiles) load_stage(write, (k_first + kt + TILE_STAGES - 1) * TILE_BK);
        tc::cp_async_commit();
        const uint4 *const sa = stages_a + read * CHUNKS_A;
        const uint4 *const sb = BSRC::template ready<BN, THREADS>(stages_b + read * CHUNKS_B, work_b, carry, p, b_rows,
                                                                       k_first + kt);
        if (kt + 1 < k_tiles) BSRC::template fetch<BN, THREADS>(carry, p, b_rows, group, (k_first + kt + 1) * TILE_BK);
        read = read == TILE_STAGES - 1 ? 0 : read + 1;
        write = write == TILE_STAGES - 1 ? 0 : write + 1;
        if (!warp_live) continue;
#pragma unroll
        for (int k16 = 0; k16 < TILE_BK; k16 += 16 * WARPS_K) {
            const int kk = k16 + 16 * warp_k;
            uint32_t fb[8][2];
#pragma unroll
            for (int j = 0; j < 8; j += 2) tile_fragment_b<B_K_MAJOR, BN>(fb[j], fb[j + 1], sb, warp_n + j * 8, kk, lane);
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                if (!live[i]) continue;
                uint32_t fa[4];
                tile_fragment_a<A_K_MAJOR, A_ROWS>(fa, sa, warp_m + i * 16, kk, lane);
#pragma unroll
                for (int j = 0; j < 8; ++j) tc::mma_m16n8k16<T>(acc[i][j], fa, fb[j], acc[i][j]);
            }
        }
    }
    tc::cp_async_wait<0>();  // no copy outlives the block (the trailing groups are empty)
    if constexpr (WARPS_K > 1) {
        // The decode tile's K quarters meet in the ring, free once every warp is past its last
        // read: quarters 1.. store their partial sums, quarter 0 adds them in quarter order.
        float *const partial = reinterpret_cast<float *>(gemm_tile_shared);
        // f(accumulator, its place among quarter q's partial sums) for each live accumulator
        auto each = [&](int q, auto &&f) {
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 8; ++j)
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        if (live[i]) f(acc[i][j][e], partial[((((q - 1) * 4 + i) * 8 + j) * 4 + e) * 32 + lane]);
        };
        __syncthreads();
        if (warp_k > 0) each(warp_k, [](float a, float &slot) { slot = a; });
        __syncthreads();
        if (warp_k > 0) return;  // no barrier follows
        for (int q = 1; q < WARPS_K; ++q) each(q, [](float &a, float slot) { a += slot; });
        if (splits > 1 && !tile_split_meet(split, id, part, acc, live, lane)) return;
    }

    // Epilogue straight from the accumulators: element e of acc[i][j] is row g (+8 for e >= 2),
    // column 2t + e % 2 of the warp's (i, j) 16 x 8 piece, g = lane / 4, t = lane % 4.
    const int g = lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        if (!live[i]) continue;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int64_t crow = c_rows[warp_m + i * 16 + g + h * 8];
            if (crow < 0) continue;
            const float scale = EPILOGUE == GEMM_SCALED && p.row_scale != nullptr ? p.row_scale[crow] : 1.0f;
            OutT *const out = p.c + crow * p.ldc;
            constexpr int PIECES = EPILOGUE == GEMM_SWIGLU ? 4 : 8;
#pragma unroll
            for (int j = 0; j < PIECES; ++j) {
#pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const int local = j * 8 + 2 * t + e;
                    const int64_t col = n0 + (EPILOGUE == GEMM_SWIGLU ? warp_n / 2 : warp_n) + local;
                    if (col >= p.n) continue;
                    const float x = acc[i][j][2 * h + e];
                    float v;
                    if constexpr (EPILOGUE == GEMM_SWIGLU) {
                        v = x / (1.0f + expf(-x)) * acc[i][j + 4][2 * h + e];  // silu(gate) * up
                    } else if constexpr (EPILOGUE == GEMM_SCALED) {
                        v = x * scale;
                    } else {
                        v = p.alpha * x;
                        if (p.beta != 0.0f) v += p.beta * to_float(out[col]);
                    }
                    out[col] = from_float<OutT>(v);
                }
            }
        }
    }
}

}  // namespace isthmus
