// Launcher of the products with quantized weights: checks the arguments and picks the kernel for
// the format, the dtype and the row count. f16/bf16 up to QGEMV_MAX_ROWS rows: the decode GEMV on
// the tensor cores (cuda/quant_gemv_mma.cuh, one or two 8-row N tiles; its narrow or wide kernel
// and the wide one's split by plan_gemv); from QGEMM_MIN_ROWS rows: the tile engine with the
// quantized B source (cuda/quant_tile.cuh), its decode tile up to 64 rows (split over K with a
// workspace) and its wide tile for prompts. The boundary follows the static estimates
// (bench/perf-model, rows quant-gemv-*): up to 16 rows the tiles' decode tile unpacks too much a
// pass; past 16 the GEMV would stream the weights again for every 16. f32 x (up to QGEMV_MAX_ROWS
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

template <QFormat F, typename T, int NT>
void launch_mma_wide(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, const QGemvSplit &split,
                     cudaStream_t stream) {
    ISTHMUS_LAUNCH(static_cast<unsigned>(split.blocks), QMMA_WIDE_WARPS * 32, 0, stream, quant_gemv_mma_wide_kernel<F, T, NT>)(
            static_cast<T *>(out), static_cast<const T *>(x), static_cast<const uint8_t *>(w), rows, n_out, k, split);
}

// The tensor-core GEMV's launch, by the time the busiest SM takes to move its blocks' bytes (the
// estimate the static performance model makes): the narrow kernel, or the wide one unsplit (a
// block a 256-row tile) or shared out over QMMA_BLOCKS_PER_SM blocks an SM, 1 to 4 times, as far
// as the workspace holds the parts' partials. A block's bytes: its weights, the x it reads (a
// 16-row block x whole, a wide one x for its runs) and for a spread tile its share of the parts'
// partials, written and read back; all of them cross L2, taken as QMMA_L2_SPEEDUP times as fast
// as memory, which x does not cross. The device is planned as one of at least QMMA_PLAN_MIN_SMS
// SMs, so that the host emulation's single SM takes the spread launches a GPU does.
constexpr int64_t QMMA_WIDE_ROWS = QMMA_WIDE_WARPS * QMMA_ROWS, QMMA_BLOCKS_PER_SM = 1, QMMA_PLAN_MIN_SMS = 8;
constexpr double QMMA_L2_SPEEDUP = 1.4;  // H100: 1.8, H200: 1.3 (bench/perf-model/machines.json)

struct GemvPlan {
    bool wide;
    QGemvSplit split;
};

template <QFormat F>
GemvPlan plan_gemv(int64_t rows, int64_t n_out, int64_t k, Workspace ws, int device) {
    using Unit = QMmaUnit<F>;
    const int64_t sms = std::max<int64_t>(device_attribute<cudaDevAttrMultiProcessorCount>(device), QMMA_PLAN_MIN_SMS);
    const int64_t units = k / Unit::kValues, runs = (units + Unit::kUnroll - 1) / Unit::kUnroll;
    const int64_t tiles = (n_out + QMMA_WIDE_ROWS - 1) / QMMA_WIDE_ROWS, groups = (n_out + QMMA_ROWS - 1) / QMMA_ROWS;
    const int64_t work = tiles * runs, nt = rows <= 8 ? 1 : 2;
    const double run_weights = QMMA_WIDE_ROWS * Unit::kUnroll * Unit::kBytes, run_x = rows * Unit::kUnroll * Unit::kValues * 2;
    const double part_bytes = 2 * QMMA_WIDE_ROWS * nt * 8 * 4;  // a part's partials, written and read back
    const auto busiest = [&](int64_t blocks, double memory_bytes, double x_bytes) {
        return static_cast<double>((blocks + sms - 1) / sms) * std::max(memory_bytes, (memory_bytes + x_bytes) / QMMA_L2_SPEEDUP);
    };

    GemvPlan plan{false, {}};
    double best = busiest(groups, static_cast<double>(QMMA_ROWS * units * Unit::kBytes), static_cast<double>(rows * k * 2));
    if (work > 0xffffffffLL) return plan;
    // Unsplit, only where the tiles give every SM its QMMA_BLOCKS_PER_SM blocks (fewer warps would
    // not issue fast enough to keep the bytes streaming).
    if (const double unsplit = busiest(tiles, runs * run_weights, runs * run_x);
        tiles >= QMMA_BLOCKS_PER_SM * sms && unsplit < best) {
        best = unsplit;
        plan = {true, {nullptr, nullptr, static_cast<uint32_t>(runs), static_cast<uint32_t>(work), static_cast<uint32_t>(tiles), 1}};
    }
    if (ws.base == nullptr) return plan;
    const int64_t counters = split_counter_bytes(groups);
    for (int64_t j = 1; j <= 4; ++j) {
        const int64_t blocks = j * QMMA_BLOCKS_PER_SM * sms;
        if (blocks <= tiles || blocks > work || (work + 1) * blocks > 0xffffffffLL) continue;
        const int64_t max_parts = (runs + work / blocks - 1) / (work / blocks) + 1;
        if (counters + groups * max_parts * nt * 4 * 32 * 4 > ws.bytes) continue;
        const int64_t share = (work + blocks - 1) / blocks;  // runs of the busiest block
        const double partials = part_bytes * static_cast<double>(tiles + blocks) / static_cast<double>(blocks);
        if (const double cost = busiest(blocks, share * run_weights + partials, share * run_x); cost < best) {
            best = cost;
            plan = {true, {reinterpret_cast<float *>(static_cast<char *>(ws.base) + counters), static_cast<int32_t *>(ws.base),
                           static_cast<uint32_t>(runs), static_cast<uint32_t>(work), static_cast<uint32_t>(blocks),
                           static_cast<uint32_t>(max_parts)}};
        }
    }
    return plan;
}

template <QFormat F, typename T>
int launch_mma(void *out, const void *x, const void *w, int rows, int64_t n_out, int64_t k, Workspace ws, cudaStream_t stream) {
    const int device = current_device();
    if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "isthmus_quant_gemv: no current device below %d", kMaxDevices);
    const GemvPlan plan = plan_gemv<F>(rows, n_out, k, ws, device);
    if (!plan.wide) {
        if (rows <= 8) launch_mma_tiles<F, T, 1>(out, x, w, rows, n_out, k, stream);
        else launch_mma_tiles<F, T, 2>(out, x, w, rows, n_out, k, stream);
    } else {
        if (rows <= 8) launch_mma_wide<F, T, 1>(out, x, w, rows, n_out, k, plan.split, stream);
        else launch_mma_wide<F, T, 2>(out, x, w, rows, n_out, k, plan.split, stream);
    }
    return ISTHMUS_OK;
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
int launch_gemm(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, Workspace ws, cudaStream_t stream) {
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
    return isthmus::launch_tile<T, T, GEMM_PLAIN, true, TileBQuant<F>>(args, rows, ws, "isthmus_quant_gemv", stream);
}

template <QFormat F, typename T>
int launch_dtype(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, Workspace ws, cudaStream_t stream) {
    if constexpr (sizeof(T) == 2) {
        if (rows >= QGEMM_MIN_ROWS) return launch_gemm<F, T>(out, x, w, rows, n_out, k, ws, stream);
        if (int status = launch_mma<F, T>(out, x, w, static_cast<int>(rows), n_out, k, ws, stream)) return status;
    } else {
        launch<F, T>(out, x, w, static_cast<int>(rows), n_out, k, stream);
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_quant_gemv");
    return ISTHMUS_OK;
}

template <QFormat F>
int launch_format(void *out, const void *x, const void *w, int64_t rows, int64_t n_out, int64_t k, int32_t dtype, Workspace ws,
                  cudaStream_t stream) {
    switch (dtype) {
        case ISTHMUS_F32:
            ISTHMUS_REQUIRE(rows <= QGEMV_MAX_ROWS, "isthmus_quant_gemv: rows %lld of f32 not in 1..%d (f16 and bf16 take more)",
                            static_cast<long long>(rows), QGEMV_MAX_ROWS);
            return launch_dtype<F, float>(out, x, w, rows, n_out, k, ws, stream);
        case ISTHMUS_F16: return launch_dtype<F, __half>(out, x, w, rows, n_out, k, ws, stream);
        case ISTHMUS_BF16: return launch_dtype<F, __nv_bfloat16>(out, x, w, rows, n_out, k, ws, stream);
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_quant_gemv: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
}

}  // namespace

extern "C" int isthmus_quant_gemv(void *out, const void *x, const void *weights, int32_t format, int64_t rows, int64_t n_out,
                                  int64_t k, int32_t dtype, void *workspace, int64_t workspace_bytes, void *stream) {
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
    if (int status = check_workspace("isthmus_quant_gemv", workspace, workspace_bytes)) return status;
    const Workspace ws{workspace, workspace == nullptr ? 0 : workspace_bytes};
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (format) {
        case ISTHMUS_Q8_0: return launch_format<QFormat::Q8_0>(out, x, weights, rows, n_out, k, dtype, ws, s);
        case ISTHMUS_Q4_0: return launch_format<QFormat::Q4_0>(out, x, weights, rows, n_out, k, dtype, ws, s);
        case ISTHMUS_Q4_K: return launch_format<QFormat::Q4_K>(out, x, weights, rows, n_out, k, dtype, ws, s);
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_quant_gemv: format %d is not Q8_0 (8), Q4_0 (2) or Q4_K (12)", format);
    }
}
