// Launchers of the grouped GEMM: the MoE gate+up and down projections, and the same kernels with
// one group as the project's dense GEMM. f16/bf16 views the tile engine (cuda/gemm_tile.cuh) can
// copy in aligned 16-byte chunks take it; f32 and every other view take the exact kernel
// (cuda/moe_gemm.cuh). Given a workspace, the decode tile splits K across blocks (split-K,
// native/gemm_tile_launch.h), the quantized experts' too.
#include "../cuda/quant_tile.cuh"
#include "gemm_tile_launch.h"
#include "moe_common.h"
#include "status.h"

using namespace isthmus;

static_assert(TILE_BM == ISTHMUS_MOE_TILE_M, "the tile engine's row tile is the ABI's align tile");

static_assert(ISTHMUS_MOE_TILE_M % GEMM_BM == 0, "the exact kernel's row tiles lie within one align tile");

namespace {

// How the tile engine copies one operand, or that it cannot: K-major where k is contiguous,
// MN-major where the other dimension is (the dense form only). Either way every chunk must be
// 8 whole elements at a 16-byte aligned address: the contiguous extent, the row stride, the
// group stride and the base all multiples of 8 elements (16 bytes).
enum class TileOperand { NONE, K_MAJOR, MN_MAJOR };

TileOperand tile_operand(const void *base, int64_t k_stride, int64_t other_stride, int64_t group_stride, int64_t k,
                         int64_t other, bool gathered) {
    if (!is_aligned(base, 16) || group_stride % 8 != 0) return TileOperand::NONE;
    if (k_stride == 1 && other_stride % 8 == 0 && k % 8 == 0) return TileOperand::K_MAJOR;
    if (!gathered && other_stride == 1 && k_stride % 8 == 0 && other % 8 == 0) return TileOperand::MN_MAJOR;
    return TileOperand::NONE;
}

template <typename T, typename OutT, int EPILOGUE>
int launch_exact(const GemmArgs<T, OutT> &args, int64_t rows, const char *who, cudaStream_t s) {
    constexpr int out_cols = EPILOGUE == GEMM_SWIGLU ? GEMM_BN / 2 : GEMM_BN;
    const int64_t row_tiles = (rows + GEMM_BM - 1) / GEMM_BM, col_tiles = (args.n + out_cols - 1) / out_cols;
    ISTHMUS_REQUIRE(col_tiles <= 65535, "%s: %lld output columns exceed the grid (at most %lld)", who,
                    static_cast<long long>(args.n), 65535LL * out_cols);
    ISTHMUS_REQUIRE(row_tiles <= 0x7fffffff, "%s: too many rows", who);
    if (row_tiles == 0 || col_tiles == 0) return ISTHMUS_OK;
    const dim3 grid(static_cast<unsigned>(row_tiles), static_cast<unsigned>(col_tiles));
    // 16-byte loads need k contiguous and every row start of A and B (of every group) 16-byte aligned.
    constexpr int64_t width = 16 / sizeof(T);
    const bool vectors = sizeof(T) == 4 && args.a_k_stride == 1 && args.b_k_stride == 1 && args.k % width == 0 &&
                         args.a_row_stride % width == 0 && args.b_n_stride % width == 0 &&
                         args.b_group_stride % width == 0 && is_aligned(args.a, 16) && is_aligned(args.b, 16);
    if constexpr (sizeof(T) == 4) {
        if (vectors) {
            ISTHMUS_LAUNCH(grid, GEMM_THREADS, 0, s, grouped_gemm_kernel<T, OutT, EPILOGUE, 16 / sizeof(T)>)(args);
            ISTHMUS_CHECK_LAUNCH(who);
            return ISTHMUS_OK;
        }
    }
    ISTHMUS_LAUNCH(grid, GEMM_THREADS, 0, s, grouped_gemm_kernel<T, OutT, EPILOGUE, 1>)(args);
    ISTHMUS_CHECK_LAUNCH(who);
    return ISTHMUS_OK;
}

// `rows`: the dense form's m, or the aligned pair list's capacity.
template <typename T, typename OutT, int EPILOGUE>
int launch(const GemmArgs<T, OutT> &args, int64_t rows, Workspace ws, const char *who, cudaStream_t s) {
    if constexpr (sizeof(T) == 2) {
        const bool gathered = args.sorted_rows != nullptr;
        const TileOperand a = tile_operand(args.a, args.a_k_stride, args.a_row_stride, 0, args.k, args.m, gathered);
        const TileOperand b = tile_operand(args.b, args.b_k_stride, args.b_n_stride, args.b_group_stride, args.k,
                                           args.n, gathered);
        if (a == TileOperand::K_MAJOR && b == TileOperand::K_MAJOR)
            return launch_tile<T, OutT, EPILOGUE, true, TileB16<true>>(args, rows, ws, who, s);
        if constexpr (EPILOGUE == GEMM_PLAIN) {
            if (a == TileOperand::K_MAJOR && b == TileOperand::MN_MAJOR)
                return launch_tile<T, OutT, EPILOGUE, true, TileB16<false>>(args, rows, ws, who, s);
            if (a == TileOperand::MN_MAJOR && b == TileOperand::K_MAJOR)
                return launch_tile<T, OutT, EPILOGUE, false, TileB16<true>>(args, rows, ws, who, s);
            if (a == TileOperand::MN_MAJOR && b == TileOperand::MN_MAJOR)
                return launch_tile<T, OutT, EPILOGUE, false, TileB16<false>>(args, rows, ws, who, s);
        }
    }
    return launch_exact<T, OutT, EPILOGUE>(args, rows, who, s);
}

// The MoE projections' arguments but B's: A rows gathered through the aligned pair list (pair /
// a_row_div), C rows the pairs, n columns, k deep; for SWIGLU B's up rows start at n.
template <typename T>
GemmArgs<T, T> grouped_args(void *c, const void *a, const float *row_scale, const int32_t *sorted_pairs,
                            const int32_t *tile_experts, const int32_t *padded_total, int64_t pairs, int32_t a_row_div,
                            int64_t n, int64_t k) {
    GemmArgs<T, T> args{};
    args.c = static_cast<T *>(c);
    args.ldc = n;
    args.a = static_cast<const T *>(a);
    args.a_row_stride = k;
    args.a_k_stride = 1;
    args.sorted_rows = sorted_pairs;
    args.tile_groups = tile_experts;
    args.padded_total = padded_total;
    args.group_rows = ISTHMUS_MOE_TILE_M;
    args.a_row_div = a_row_div;
    args.sentinel = static_cast<int32_t>(pairs);
    args.row_scale = row_scale;
    args.n = n;
    args.k = k;
    args.up_offset = n;
    args.alpha = 1.0f;
    return args;
}

// The MoE projections with B one (b_rows, k) matrix of T per expert.
template <typename T, int EPILOGUE>
int launch_grouped(void *c, const void *a, const void *b, const float *row_scale, const int32_t *sorted_pairs,
                   const int32_t *tile_experts, const int32_t *padded_total, int64_t pairs, int32_t a_row_div,
                   int64_t n, int64_t k, int64_t b_rows, int64_t capacity, Workspace ws, const char *who,
                   cudaStream_t s) {
    GemmArgs<T, T> args = grouped_args<T>(c, a, row_scale, sorted_pairs, tile_experts, padded_total, pairs, a_row_div, n, k);
    args.b = static_cast<const T *>(b);
    args.b_n_stride = k;
    args.b_k_stride = 1;
    args.b_group_stride = b_rows * k;
    return launch<T, T, EPILOGUE>(args, capacity, ws, who, s);
}

// The MoE projections with B one quantized (b_rows, k) matrix per expert, expert_bytes apart, each
// in its format's device layout: the tile engine with the quantized B source (cuda/quant_tile.cuh).
template <typename T, int EPILOGUE>
int launch_grouped_quant(void *c, const void *a, const void *b, int32_t format, int64_t expert_bytes,
                         const float *row_scale, const int32_t *sorted_pairs, const int32_t *tile_experts,
                         const int32_t *padded_total, int64_t pairs, int32_t a_row_div, int64_t n, int64_t k,
                         int64_t b_rows, int64_t capacity, Workspace ws, const char *who, cudaStream_t s) {
    if constexpr (sizeof(T) == 4) {
        return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: quantized experts take f16 or bf16 activations, not f32", who);
    } else {
        GemmArgs<T, T> args =
            grouped_args<T>(c, a, row_scale, sorted_pairs, tile_experts, padded_total, pairs, a_row_div, n, k);
        args.bq = static_cast<const uint8_t *>(b);
        args.bq_rows = b_rows;
        args.bq_group_bytes = expert_bytes;
        switch (format) {
            case ISTHMUS_Q8_0: return launch_tile<T, T, EPILOGUE, true, TileBQuant<QFormat::Q8_0>>(args, capacity, ws, who, s);
            case ISTHMUS_Q4_0: return launch_tile<T, T, EPILOGUE, true, TileBQuant<QFormat::Q4_0>>(args, capacity, ws, who, s);
            default: return launch_tile<T, T, EPILOGUE, true, TileBQuant<QFormat::Q4_K>>(args, capacity, ws, who, s);
        }
    }
}

// A quantized expert stack's format, its matrices' k and byte stride, and the alignment the tiles
// copy at (16 bytes: a, b and expert_bytes).
int check_quant_experts(const char *who, const void *a, const void *b, int32_t format, int64_t expert_bytes,
                        int64_t b_rows, int64_t k) {
    ISTHMUS_REQUIRE(format == ISTHMUS_Q8_0 || format == ISTHMUS_Q4_0 || format == ISTHMUS_Q4_K,
                    "%s: format %d is not Q8_0 (8), Q4_0 (2) or Q4_K (12)", who, format);
    const int64_t block = format == ISTHMUS_Q4_K ? 256 : 32, block_bytes = format == ISTHMUS_Q8_0 ? 34 : format == ISTHMUS_Q4_0 ? 18 : 144;
    ISTHMUS_REQUIRE(k % block == 0, "%s: k %lld is not a multiple of the format's %lld-value blocks", who,
                    static_cast<long long>(k), static_cast<long long>(block));
    ISTHMUS_REQUIRE(expert_bytes % 16 == 0 && expert_bytes >= b_rows * k / block * block_bytes,
                    "%s: expert_bytes %lld is not a multiple of 16 holding %lld x %lld values", who,
                    static_cast<long long>(expert_bytes), static_cast<long long>(b_rows), static_cast<long long>(k));
    ISTHMUS_REQUIRE(is_aligned(a, 16) && is_aligned(b, 16), "%s: activations and weights must be 16-byte aligned", who);
    return ISTHMUS_OK;
}

int check_grouped(const char *who, const void *c, const void *a, const void *b, const int32_t *sorted_pairs,
                  const int32_t *tile_experts, const int32_t *padded_total, int64_t pairs, int32_t experts,
                  int64_t hidden_size, int64_t intermediate, int64_t capacity) {
    ISTHMUS_REQUIRE(pairs >= 0 && pairs <= MOE_MAX_ROWS, "%s: pairs %lld out of range", who,
                    static_cast<long long>(pairs));
    ISTHMUS_REQUIRE(pairs == 0 || (c != nullptr && a != nullptr && b != nullptr && sorted_pairs != nullptr &&
                                   tile_experts != nullptr && padded_total != nullptr),
                    "%s: no pointer but weights may be NULL", who);
    ISTHMUS_REQUIRE(experts >= 1 && experts <= ISTHMUS_MOE_MAX_EXPERTS, "%s: experts %d out of range", who, experts);
    ISTHMUS_REQUIRE(hidden_size >= 1 && intermediate >= 1, "%s: hidden_size and intermediate must be positive", who);
    ISTHMUS_REQUIRE(capacity == align_capacity(pairs, experts, ISTHMUS_MOE_TILE_M),
                    "%s: capacity %lld is not isthmus_moe_align's for tile %d (%lld)", who,
                    static_cast<long long>(capacity), ISTHMUS_MOE_TILE_M,
                    static_cast<long long>(align_capacity(pairs, experts, ISTHMUS_MOE_TILE_M)));
    return ISTHMUS_OK;
}

// check_grouped for the gate+up projection, whose pairs are tokens * top_k.
int check_gate_up(const char *who, const void *hidden, const void *x, const void *w13, const int32_t *sorted_pairs,
                  const int32_t *tile_experts, const int32_t *padded_total, int64_t tokens, int32_t top_k,
                  int32_t experts, int64_t hidden_size, int64_t intermediate, int64_t capacity) {
    ISTHMUS_REQUIRE(tokens >= 0 && top_k >= 1 && top_k <= ISTHMUS_MOE_MAX_TOP_K, "%s: tokens %lld / top_k %d out of range",
                    who, static_cast<long long>(tokens), top_k);
    return check_grouped(who, hidden, x, w13, sorted_pairs, tile_experts, padded_total, tokens * top_k, experts,
                         hidden_size, intermediate, capacity);
}

template <typename T, typename OutT>
int launch_dense(void *c, const void *a, const void *b, int64_t m, int64_t n, int64_t k, bool ta, bool tb, float alpha,
                 float beta, Workspace ws, cudaStream_t s) {
    GemmArgs<T, OutT> args{};
    args.c = static_cast<OutT *>(c);
    args.ldc = n;
    args.a = static_cast<const T *>(a);
    // op(A)[r, q]: A is (m, k) row-major, or (k, m) when transposed.
    args.a_row_stride = ta ? 1 : k;
    args.a_k_stride = ta ? m : 1;
    args.b = static_cast<const T *>(b);
    // op(B)[q, j] read as B's "row" j: B is (k, n) row-major, or (n, k) when transposed.
    args.b_n_stride = tb ? k : 1;
    args.b_k_stride = tb ? 1 : n;
    args.m = m;
    args.n = n;
    args.k = k;
    args.alpha = alpha;
    args.beta = beta;
    return launch<T, OutT, GEMM_PLAIN>(args, m, ws, "isthmus_gemm", s);
}

}  // namespace

extern "C" int isthmus_moe_gate_up(void *hidden, const void *x, const void *w13, const int32_t *sorted_pairs,
                                   const int32_t *tile_experts, const int32_t *padded_total, int64_t tokens,
                                   int32_t top_k, int32_t experts, int64_t hidden_size, int64_t intermediate,
                                   int64_t capacity, int32_t dtype, void *workspace, int64_t workspace_bytes,
                                   void *stream) {
    clear_error();
    const char *who = "isthmus_moe_gate_up";
    if (int status = check_workspace(who, workspace, workspace_bytes)) return status;
    const int64_t pairs = tokens * top_k;
    if (int status = check_gate_up(who, hidden, x, w13, sorted_pairs, tile_experts, padded_total, tokens, top_k,
                                   experts, hidden_size, intermediate, capacity))
        return status;
    return with_float_type(dtype, who, [&](auto type) {
        return launch_grouped<decltype(type), GEMM_SWIGLU>(hidden, x, w13, nullptr, sorted_pairs, tile_experts,
                                                           padded_total, pairs, top_k, intermediate, hidden_size,
                                                           2 * intermediate, capacity, Workspace{workspace, workspace_bytes}, who,
                                                           static_cast<cudaStream_t>(stream));
    });
}

extern "C" int isthmus_moe_down(void *slot_out, const void *hidden, const void *w2, const float *weights,
                                const int32_t *sorted_pairs, const int32_t *tile_experts, const int32_t *padded_total,
                                int64_t pairs, int32_t experts, int64_t hidden_size, int64_t intermediate,
                                int64_t capacity, int32_t dtype, void *workspace, int64_t workspace_bytes,
                                void *stream) {
    clear_error();
    const char *who = "isthmus_moe_down";
    if (int status = check_workspace(who, workspace, workspace_bytes)) return status;
    if (int status = check_grouped(who, slot_out, hidden, w2, sorted_pairs, tile_experts, padded_total, pairs, experts,
                                   hidden_size, intermediate, capacity))
        return status;
    return with_float_type(dtype, who, [&](auto type) {
        return launch_grouped<decltype(type), GEMM_SCALED>(slot_out, hidden, w2, weights, sorted_pairs, tile_experts,
                                                           padded_total, pairs, 1, hidden_size, intermediate,
                                                           hidden_size, capacity, Workspace{workspace, workspace_bytes}, who,
                                                           static_cast<cudaStream_t>(stream));
    });
}

extern "C" int isthmus_moe_gate_up_quant(void *hidden, const void *x, const void *w13, int32_t format,
                                         int64_t expert_bytes, const int32_t *sorted_pairs, const int32_t *tile_experts,
                                         const int32_t *padded_total, int64_t tokens, int32_t top_k, int32_t experts,
                                         int64_t hidden_size, int64_t intermediate, int64_t capacity, int32_t dtype,
                                         void *workspace, int64_t workspace_bytes, void *stream) {
    clear_error();
    const char *who = "isthmus_moe_gate_up_quant";
    if (int status = check_workspace(who, workspace, workspace_bytes)) return status;
    const int64_t pairs = tokens * top_k;
    if (int status = check_gate_up(who, hidden, x, w13, sorted_pairs, tile_experts, padded_total, tokens, top_k,
                                   experts, hidden_size, intermediate, capacity))
        return status;
    if (pairs == 0) return ISTHMUS_OK;
    if (int status = check_quant_experts(who, x, w13, format, expert_bytes, 2 * intermediate, hidden_size)) return status;
    return with_float_type(dtype, who, [&](auto type) {
        return launch_grouped_quant<decltype(type), GEMM_SWIGLU>(hidden, x, w13, format, expert_bytes, nullptr, sorted_pairs,
                                                                 tile_experts, padded_total, pairs, top_k, intermediate,
                                                                 hidden_size, 2 * intermediate, capacity,
                                                                 Workspace{workspace, workspace_bytes}, who,
                                                                 static_cast<cudaStream_t>(stream));
    });
}

extern "C" int isthmus_moe_down_quant(void *slot_out, const void *hidden, const void *w2, int32_t format,
                                      int64_t expert_bytes, const float *weights, const int32_t *sorted_pairs,
                                      const int32_t *tile_experts, const int32_t *padded_total, int64_t pairs,
                                      int32_t experts, int64_t hidden_size, int64_t intermediate, int64_t capacity,
                                      int32_t dtype, void *workspace, int64_t workspace_bytes, void *stream) {
    clear_error();
    const char *who = "isthmus_moe_down_quant";
    if (int status = check_workspace(who, workspace, workspace_bytes)) return status;
    if (int status = check_grouped(who, slot_out, hidden, w2, sorted_pairs, tile_experts, padded_total, pairs, experts,
                                   hidden_size, intermediate, capacity))
        return status;
    if (pairs == 0) return ISTHMUS_OK;
    if (int status = check_quant_experts(who, hidden, w2, format, expert_bytes, hidden_size, intermediate)) return status;
    return with_float_type(dtype, who, [&](auto type) {
        return launch_grouped_quant<decltype(type), GEMM_SCALED>(slot_out, hidden, w2, format, expert_bytes, weights,
                                                                 sorted_pairs, tile_experts, padded_total, pairs, 1,
                                                                 hidden_size, intermediate, hidden_size, capacity,
                                                                 Workspace{workspace, workspace_bytes}, who,
                                                                 static_cast<cudaStream_t>(stream));
    });
}

extern "C" int isthmus_gemm(void *c, const void *a, const void *b, int64_t m, int64_t n, int64_t k,
                            int32_t transpose_a, int32_t transpose_b, float alpha, float beta, int32_t ab_dtype,
                            int32_t c_dtype, void *workspace, int64_t workspace_bytes, void *stream) {
    clear_error();
    if (int status = check_workspace("isthmus_gemm", workspace, workspace_bytes)) return status;
    ISTHMUS_REQUIRE(m >= 0 && n >= 0 && k >= 0 && m <= MOE_MAX_ROWS * GEMM_BM, "isthmus_gemm: m, n, k out of range");
    // Empty matrices may be NULL: with k = 0, C = beta * C is still written.
    ISTHMUS_REQUIRE((m * n == 0 || c != nullptr) && (m * k == 0 || a != nullptr) && (k * n == 0 || b != nullptr),
                    "isthmus_gemm: c, a and b must not be NULL");
    ISTHMUS_REQUIRE(alpha == alpha && beta == beta, "isthmus_gemm: alpha and beta must not be NaN");
    ISTHMUS_REQUIRE(c_dtype == ab_dtype || c_dtype == ISTHMUS_F32, "isthmus_gemm: c_dtype %s must be ab_dtype's or f32",
                    dtype_name(c_dtype));
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    const bool ta = transpose_a != 0, tb = transpose_b != 0;
    return with_float_type(ab_dtype, "isthmus_gemm", [&](auto type) {
        using T = decltype(type);
        const Workspace ws{workspace, workspace_bytes};
        if (c_dtype == ISTHMUS_F32) return launch_dense<T, float>(c, a, b, m, n, k, ta, tb, alpha, beta, ws, s);
        return launch_dense<T, T>(c, a, b, m, n, k, ta, tb, alpha, beta, ws, s);
    });
}

extern "C" int isthmus_gemm_workspace_bytes(int64_t *bytes) {
    clear_error();
    ISTHMUS_REQUIRE(bytes != nullptr, "isthmus_gemm_workspace_bytes: bytes must not be NULL");
    const int device = current_device();
    if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "isthmus_gemm_workspace_bytes: no current device below %d", kMaxDevices);
    // a split launch has tiles * splits <= the target blocks, and at least 2 splits
    const int64_t target = split_target_blocks(device);
    *bytes = split_counter_bytes(target / 2) + target * TILE_SPLIT_FLOATS * 4;
    return ISTHMUS_OK;
}
