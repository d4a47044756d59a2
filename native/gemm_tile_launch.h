// Host side of the tile engine (cuda/gemm_tile.cuh), shared by the GEMM and MoE launchers
// (native/moe_gemm.cu) and the quantized-weight launchers (native/quant.cu): the tile width for a
// row count, the grid, the shared-memory opt-in and the launch. Not part of the ABI.
#pragma once

#include "../cuda/gemm_tile.cuh"
#include "device.h"
#include "status.h"

namespace isthmus {

// From this many rows (m, or pairs) on, 128 x 256 tiles: a GEMM this tall has blocks enough to
// fill the machine with the wider tile, which reads A through L2 half as often. Up to
// TILE_DECODE_ROWS rows (then no tile holds more), the decode tile 128 x 64 with slice-K: twice
// the blocks of 128 x 128, so that a decode batch streams its weights through every SM.
constexpr int64_t WIDE_TILE_ROWS = 1024;

template <typename T, typename OutT, int EPILOGUE, bool A_K_MAJOR, typename BSRC, int BN>
int launch_tile(const GemmArgs<T, OutT> &args, int64_t rows, const char *who, cudaStream_t s) {
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
    ISTHMUS_LAUNCH(static_cast<unsigned>(row_tiles * col_tiles), tile_threads<BN>(), shared, s, kernel)(
        args, row_tiles, col_tiles);
    ISTHMUS_CHECK_LAUNCH(who);
    return ISTHMUS_OK;
}

// `rows`: the dense form's m, or the aligned pair list's capacity; the tile width follows the real
// rows (m, or the pairs).
template <typename T, typename OutT, int EPILOGUE, bool A_K_MAJOR, typename BSRC>
int launch_tile(const GemmArgs<T, OutT> &args, int64_t rows, const char *who, cudaStream_t s) {
    const int64_t real_rows = args.sorted_rows != nullptr ? args.sentinel : args.m;
    if (real_rows >= WIDE_TILE_ROWS) return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 256>(args, rows, who, s);
    if (real_rows <= TILE_DECODE_ROWS) return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 64>(args, rows, who, s);
    return launch_tile<T, OutT, EPILOGUE, A_K_MAJOR, BSRC, 128>(args, rows, who, s);
}

}  // namespace isthmus
