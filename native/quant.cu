// Launcher of the products with quantized weights: checks the arguments and picks the kernel for
// the format, the dtype and the row count. f16/bf16 up to QGEMV_MAX_ROWS rows: the decode GEMV on
// the tensor cores (cuda/quant_gemv_mma.cuh, one or two 8-row N tiles, a block per 16 output
// features); from QGEMM_MIN_ROWS rows: the tile engine with the quantized B source
// (cuda/quant_tile.cuh), its decode tile up to 64 rows and its wide tile for prompts. The
// boundary follows the static estimates (bench/perf-model, rows quant-gemv-*): up to 16 rows the
// tiles' decode tile has too few blocks (one per 64 output features) and unpacks too much a pass;
// past 16 the GEMV would stream the weights again for every 16. f32 x (up to QGEMV_MAX_ROWS
// rows, no more) takes the GEMV on CUDA cores (cuda/quant_gemv.cuh, unrolled for 1, 2, 4, 8 or
// 16 rows, one warp an output): the tensor cores would round x to 16 bits.
#include "../cuda/quant_gemv_mma.cuh"
#include "../cuda/quant_tile.cuh"
#include "gemm_tile_launch.h"
#include "status.h"

using namespace isthmus;

namespace {

constexpr int64_t QGEMM_MIN_ROWS = QGEMV_MAX_ROWS + 1;
constexpr int64_t QGEMM_MAX_ROWS = 0x7fffffff;

template <QFormat F, typename T, int M>
void launch_rows(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((n_out + QGEMV_WARPS - 1) / QGEMV_WARPS));
    ISTHMUS_LAUNCH(grid, QGEMV_WARPS * 32, 0, stream, quant_gemv_kernel<F, T, M>)(
            static_cast<T *>(out), static_cast<const T *>(x), static_cast<const uint8_t *>(w), rows, n_out, k);
}

template <QFormat F, typename T, int NT>
void launch_mma_tiles(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>((n_out + QMMA_ROWS - 1) / QMMA_ROWS));
    ISTHMUS_LAUNCH(grid, QMMA_WARPS * 32, 0, stream, quant_gemv_mma_kernel<F, T, NT>)(
            static_cast<T *>(out), static_cast<const T *>(x), static_cast<const uint8_t *>(w), rows, n_out, k);
}

template <QFormat F, typename T>
void launch_mma(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    if (rows <= 8) launch_mma_tiles<F, T, 1>(out, x, w, rows, n_out, k, stream);
    else launch_mma_tiles<F, T, 2>(out, x, w, rows, n_out, k, stream);
}

template <QFormat F, typename T>
void launch(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    if (rows == 1) launch_rows<F, T, 1>(out, x, w, rows, n_out, k, stream);
    else if (rows == 2) launch_rows<F, T, 2>(out, x, w, rows, n_out, k, stream);
    else if (rows <= 4) launch_rows<F, T, 4>(out, x, w, rows, n_out, k, stream);
    else if (rows <= 8) launch_rows<F, T, 8>(out, x, w, rows, n_out, k, stream);
    else launch_rows<F, T, 16>(out, x, w, rows, n_out, k, stream);
}

// out = x W^T on the tensor cores: the dense form of the tile engine, B the quantized matrix.
template <QFormat F, typename T>
int launch_gemm(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    GemmArgs<T, T> args{};
    args.c = static_cast<T *>(out);
    args.ldc = n_out;
    args.a = static_cast<const T *>(x);
    args.a_row_stride = k;
    args.a_k_stride = 1;
    args.bq = static_cast<const uint8_t *>(w);
    args.bq_rows = n_out;
    args.m = rows;
    args.n = n_out;
    args.k = k;
    args.alpha = 1.0f;
    const Workspace unsplit{nullptr, 0};  // isthmus_quant_gemv takes no workspace: no split-K
    return isthmus::launch_tile<T, T, GEMM_PLAIN, true, TileBQuant<F>>(args, rows, unsplit, "isthmus_quant_gemv", stream);
}

template <QFormat F, typename T>
int launch_dtype(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, cudaStream_t stream) {
    if constexpr (sizeof(T) == 2) {
        if (rows >= QGEMM_MIN_ROWS) return launch_gemm<F, T>(out, x, w, rows, n_out, k, stream);
        launch_mma<F, T>(out, x, w, static_cast<int>(rows), n_out, k, stream);
    } else {
        launch<F, T>(out, x, w, static_cast<int>(rows), n_out, k, stream);
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_quant_gemv");
    return ISTHMUS_OK;
}

template <QFormat F>
int launch_format(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, int32_t dtype,
                  cudaStream_t stream) {
    switch (dtype) {
        case ISTHMUS_F32:
            ISTHMUS_REQUIRE(rows <= QGEMV_MAX_ROWS, "isthmus_quant_gemv: rows %lld of f32 not in 1..%d (f16 and bf16 take more)",
                            static_cast<long long>(rows), QGEMV_MAX_ROWS);
            return launch_dtype<F, float>(out, x, w, rows, n_out, k, stream);
        case ISTHMUS_F16: return launch_dtype<F, __half>(out, x, w, rows, n_out, k, stream);
        case ISTHMUS_BF16: return launch_dtype<F, __nv_bfloat16>(out, x, w, rows, n_out, k, stream);
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_quant_gemv: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
}

}  // namespace

extern "C" int isthmus_quant_gemv(void *out, const void *x, const void *weights, int32_t format, int64_t rows, int64_t n_out,
                                  int64_t k, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && x != nullptr && weights != nullptr, "isthmus_quant_gemv: out, x and weights must not be NULL");
    ISTHMUS_REQUIRE(rows >= 1 && rows <= QGEMM_MAX_ROWS, "isthmus_quant_gemv: rows %lld not in 1..%lld", static_cast<long long>(rows),
                    static_cast<long long>(QGEMM_MAX_ROWS));
    ISTHMUS_REQUIRE(n_out >= 1 && n_out <= (static_cast<int64_t>(0x7fffffff) * QGEMV_WARPS), "isthmus_quant_gemv: n_out %lld out of range",
                    static_cast<long long>(n_out));
    const int64_t block = format == ISTHMUS_Q4_K ? 256 : 32;
    ISTHMUS_REQUIRE(k >= block && k % block == 0, "isthmus_quant_gemv: k %lld is not a positive multiple of %lld",
                    static_cast<long long>(k), static_cast<long long>(block));
    ISTHMUS_REQUIRE(is_aligned(x, 16) && is_aligned(weights, 16), "isthmus_quant_gemv: x and weights must be 16-byte aligned");
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (format) {
        case ISTHMUS_Q8_0: return launch_format<QFormat::Q8_0>(out, x, weights, rows, n_out, k, dtype, s);
        case ISTHMUS_Q4_0: return launch_format<QFormat::Q4_0>(out, x, weights, rows, n_out, k, dtype, s);
        case ISTHMUS_Q4_K: return launch_format<QFormat::Q4_K>(out, x, weights, rows, n_out, k, dtype, s);
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_quant_gemv: format %d is not Q8_0 (8), Q4_0 (2) or Q4_K (12)", format);
    }
}
