// Launcher of the RMSNorm kernel (cuda/rmsnorm.cuh): checks the arguments, picks the vector
// width and block size, launches on the caller's stream.
#include "../cuda/rmsnorm.cuh"
#include "status.h"

using namespace isthmus;

namespace {

// Threads per row: enough to cover the row once in vectors, a warp multiple, at most 1024.
unsigned threads_for(int64_t vecs) {
    int64_t t = (vecs + 31) / 32 * 32;
    if (t < 32) t = 32;
    if (t > 1024) t = 1024;
    return static_cast<unsigned>(t);
}

template <typename T, int N>
void launch(void *out, void *residual_out, const void *x, const void *residual, const void *weight,
            int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(rows));
    const dim3 block(threads_for(cols / N));
    if (residual != nullptr) {
        ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, true>)(
            static_cast<T *>(out), static_cast<T *>(residual_out), static_cast<const T *>(x),
            static_cast<const T *>(residual), static_cast<const T *>(weight), cols, eps);
    } else {
        ISTHMUS_LAUNCH(grid, block, 0, stream, rmsnorm_kernel<T, N, false>)(
            static_cast<T *>(out), nullptr, static_cast<const T *>(x), nullptr,
            static_cast<const T *>(weight), cols, eps);
    }
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
