// Host side of the tile engine (cuda/gemm_tile.cuh), shared by the GEMM and MoE launchers
// (native/moe_gemm.cu) and the quantized-weight launchers (native/quant.cu): the tile width for a
// row count, the split-K plan of the decode tile, the grid, the shared-memory opt-in and the
// launch. Not part of the ABI.
#pragma once

#include <algorithm>

#include "../cuda/gemm_tile.cuh"
#include "device.h"
#include "status.h"

namespace isthmus {

// From this many rows (m, or pairs) on, 128 x 256 tiles: a GEMM this tall has blocks enough to
// fill the machine with the wider tile, which reads A through L2 half as often. Up to
// TILE_DECODE_ROWS rows (then no tile holds more), the decode tile 128 x 64 with slice-K: twice
// the blocks of 128 x 128, so that a decode batch streams its weights through every SM.
constexpr int64_t WIDE_TILE_ROWS = 1024;

// Split-K of the decode tile (cuda/gemm_tile.cuh): as many splits as give the launch
// SPLIT_BLOCKS_PER_SM (tile, split) blocks an SM, the blocks of the decode tile one SM holds at
// once, so that a batch of few column tiles still streams its weights through every SM; the
// target is at least SPLIT_MIN_BLOCKS blocks (which also puts the split under test on the host
// emulation's one SM). Each split is at least SPLIT_MIN_K_TILES stages deep, there are at most
// SPLIT_MAX, and no more than the caller's workspace holds.
constexpr int64_t SPLIT_BLOCKS_PER_SM = 3, SPLIT_MIN_BLOCKS = 16, SPLIT_MIN_K_TILES = 2, SPLIT_MAX = 16;

inline int64_t split_target_blocks(int device) {
    return std::max<int64_t>(SPLIT_BLOCKS_PER_SM * device_attribute<cudaDevAttrMultiProcessorCount>(device),
                             SPLIT_MIN_BLOCKS);
}

// The workspace: one int32 arrival counter a tile, then (256-byte aligned) the partials.
inline int64_t split_counter_bytes(int64_t tiles) { return (tiles * 4 + 255) / 256 * 256; }

// A caller's split-K workspace: NULL, or 256-byte aligned with a size >= 0.
inline int check_workspace(const char *who, const void *workspace, int64_t workspace_bytes) {
    ISTHMUS_REQUIRE(workspace == nullptr || (workspace_bytes >= 0 && is_aligned(workspace, 256)),
                    "%s: the workspace must be 256-byte aligned, with a size >= 0", who);
    return ISTHMUS_OK;
}

// Where a launch's workspace comes from: the caller's pointer and size (NULL: no split).
struct Workspace {
    void *base;
    int64_t bytes;
};

// The split of a decode-tile launch of `tiles` tiles over K, or splits = 1 (no workspace, too
// little of it, enough tiles already, or too short a K).
inline TileSplit plan_split(int64_t tiles, int64_t k, Workspace ws, int device) {
    TileSplit plan{nullptr, nullptr, 1, 0};
    if (ws.base == nullptr || tiles == 0) return plan;
    const int64_t k_tiles = (k + TILE_BK - 1) / TILE_BK;
    int64_t splits = std::min({split_target_blocks(device) / tiles, k_tiles / SPLIT_MIN_K_TILES, SPLIT_MAX});
    const int64_t room = ws.bytes - split_counter_bytes(tiles);
    splits = std::min(splits, room > 0 ? room / (tiles * TILE_SPLIT_FLOATS * 4) : 0);
    if (splits < 2) return plan;
    const int64_t per_split = (k_tiles + splits - 1) / splits;  // whole stages; no split left empty
    plan.splits = static_cast<int32_t>((k_tiles + per_split - 1) / per_split);
    plan.k_tiles = static_cast<int32_t>(per_split);
    plan.arrivals = static_cast<int32_t *>(ws.base);
    plan.partials = reinterpret_cast<float *>(static_cast<char *>(ws.base) + split_counter_bytes(tiles));
    return plan;
}

template <typename T, typename OutT, int EPILOGUE, bool A_K_MAJOR, typename BSRC, int BN>
int launch_tile(const GemmArgs<T, OutT> &args, int64_t rows, Workspace ws, const char *who, cudaStream_t s) {
    constexpr int out_cols = EPILOGUE == GEMM_SWIGLU ? BN / 2 : BN;
    const int64_t row_tiles = (rows + TILE_BM - 1) / TILE_BM, col_tiles = (args.n + out_cols - 1) / out_cols;
    ISTHMUS_REQUIRE(row_tiles * col_tiles <= 0x7fffffff, "%s: %lld x %lld tiles exceed the grid", who,
                    static_cast<long long>(row_tiles), static_cast<long long>(col_tiles));
    if (row_tiles == 0 || col_tiles == 0) return ISTHMUS_OK;
    constexpr auto kernel = gemm_tile_kernel<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, BN>;
    constexpr int shared = tile_shared_bytes<BSRC, BN>();
    const int device = current_device();
    if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "%s: no current device below %d", who, kMaxDevices);
    if (int status = allow_shared_memory<kernel>(shared, device, who)) return status;
    const TileSplit split = BN == 64 ? plan_split(row_tiles * col_tiles, args.k, ws, device)
                                     : TileSplit{nullptr, nullptr, 1, 0};
    ISTHMUS_REQUIRE(row_tiles * col_tiles * split.splits <= 0x7fffffff, "%s: %d splits of %lld tiles exceed the grid",
                    who, split.splits, static_cast<long long>(row_tiles * col_tiles));
    ISTHMUS_LAUNCH(static_cast<unsigned>(row_tiles * col_tiles * split.splits), tile_threads<BN>(), shared, s, kernel)(
        args, row_tiles, col_tiles, split);
    ISTHMUS_CHECK_LAUNCH(who);
    return ISTHMUS_OK;
}

// `rows`: the dense form's m, or the aligned pair list's capacity; the tile width follows the real
// rows (m, or the pairs). `ws`: the split-K workspace (the decode tile only; base NULL: unsplit).
template <typename T, typename OutT, int EPILOGUE, bool A_K_MAJOR, typename BSRC>
int launch_tile(const GemmArgs<T, OutT> &args, int64_t rows, Workspace ws, const char *who, cudaStream_t s) {
    const int64_t real_rows = args.sorted_rows != nullptr ? args.sentinel : args.m;
    if (real_rows >= WIDE_TILE_ROWS) return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 256>(args, rows, ws, who, s);
    if (real_rows <= TILE_DECODE_ROWS) return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 64>(args, rows, ws, who, s);
    return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 128>(args, rows, ws, who, s);
}

}  // namespace isthmus
