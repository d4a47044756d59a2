// Launcher of the RMSNorm kernels (cuda/rmsnorm.cuh): checks the arguments, picks the vector
// width, the kernel and the block shape from the row width, launches on the caller's stream.
#include "../cuda/rmsnorm.cuh"
#include "device.h"
#include "status.h"

using namespace isthmus;

namespace {

template <typename T, int N>
void launch(void *out, void *residual_out, const void *x, const void *residual, const void *weight,
            int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
    T *o = static_cast<T *>(out), *h = static_cast<T *>(residual_out);
    const T *xs = static_cast<const T *>(x), *r = static_cast<const T *>(residual), *w = static_cast<const T *>(weight);
    const int64_t vecs = cols / N;
    // Threads per row: enough for RMSNORM_VECS vectors each, a warp multiple.
    const int64_t threads = (vecs + 32 * RMSNORM_VECS - 1) / (32 * RMSNORM_VECS) * 32;
    if (threads <= 1024) {
        const bool warp_rows = threads == 32;
        const dim3 block(static_cast<unsigned>(threads), warp_rows ? RMSNORM_WARP_ROWS : 1);
        const int64_t slots = (rows + block.y - 1) / block.y;  // rows of each row slot of a block
        // Rows per block: doubled while every SM keeps RMSNORM_MIN_BLOCKS_PER_SM blocks. One row
        // a block gains nothing from keeping the weight: it takes the plain kernel.
        int block_rows = 1;
        if (threads <= RMSNORM_KEEP_THREADS) {
            const int device = current_device();
            const int sms = device < 0 ? 1 : device_attribute<cudaDevAttrMultiProcessorCount>(device);
            const int64_t enough = static_cast<int64_t>(sms) * RMSNORM_MIN_BLOCKS_PER_SM;
            while (block_rows < RMSNORM_MAX_BLOCK_ROWS && slots / (2 * block_rows) >= enough) block_rows *= 2;
        }
        if (block_rows > 1) {
            const dim3 grid(static_cast<unsigned>((slots + block_rows - 1) / block_rows));
            if (residual != nullptr)
                ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, true, true>)(
                    o, h, xs, r, w, rows, cols, eps, block_rows);
            else
                ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, false, true>)(
                    o, nullptr, xs, nullptr, w, rows, cols, eps, block_rows);
            return;
        }
        const dim3 grid(static_cast<unsigned>(slots));
        if (residual != nullptr)
            ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, true, false>)(
                o, h, xs, r, w, rows, cols, eps, 1);
        else
            ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, false, false>)(
                o, nullptr, xs, nullptr, w, rows, cols, eps, 1);
        return;
    }
    // Wider than a block's registers: one block of 1024 per row, two passes.
    const dim3 grid(static_cast<unsigned>(rows));
    if (residual != nullptr)
        ISTHMUS_LAUNCH(grid, 1024, 0, stream, rmsnorm_two_pass_kernel<T, N, true>)(o, h, xs, r, w, cols, eps);
    else
        ISTHMUS_LAUNCH(grid, 1024, 0, stream, rmsnorm_two_pass_kernel<T, N, false>)(o, nullptr, xs, nullptr, w, cols, eps);
}

// 16-byte vectors when every row start and the weight allow them, else one element at a time.
template <typename T>
void launch_any_width(void *out, void *residual_out, const void *x, const void *residual,
                      const void *weight, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
    constexpr int wide = 16 / sizeof(T);
    bool vectorizable = cols % wide == 0;
    for (const void *p : {static_cast<const void *>(out), static_cast<const void *>(residual_out), x,
                          residual, weight})
        if (p != nullptr && !is_aligned(p, 16)) vectorizable = false;
    if (vectorizable)
        launch<T, wide>(out, residual_out, x, residual, weight, rows, cols, eps, stream);
    else
        launch<T, 1>(out, residual_out, x, residual, weight, rows, cols, eps, stream);
}

}  // namespace

extern "C" int isthmus_rmsnorm(void *out, void *residual_out, const void *x, const void *residual,
                               const void *weight, int64_t rows, int64_t cols, float eps,
                               int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && x != nullptr && weight != nullptr,
                    "isthmus_rmsnorm: out, x and weight must not be NULL");
    ISTHMUS_REQUIRE((residual == nullptr) == (residual_out == nullptr),
                    "isthmus_rmsnorm: residual and residual_out go together");
    ISTHMUS_REQUIRE(rows >= 0 && rows <= 0x7fffffff, "isthmus_rmsnorm: rows %lld out of range",
                    static_cast<long long>(rows));
    ISTHMUS_REQUIRE(cols > 0, "isthmus_rmsnorm: cols must be positive, got %lld",
                    static_cast<long long>(cols));
    ISTHMUS_REQUIRE(eps >= 0.0f, "isthmus_rmsnorm: eps must be >= 0");
    if (rows == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32:
            launch_any_width<float>(out, residual_out, x, residual, weight, rows, cols, eps, s);
            break;
        case ISTHMUS_F16:
            launch_any_width<__half>(out, residual_out, x, residual, weight, rows, cols, eps, s);
            break;
        case ISTHMUS_BF16:
            launch_any_width<__nv_bfloat16>(out, residual_out, x, residual, weight, rows, cols, eps, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_rmsnorm: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_rmsnorm");
    return ISTHMUS_OK;
}
