// Launcher of the random fills (cuda/random.cuh): check the arguments, size a grid-stride grid,
// launch on the caller's stream.
#include "../cuda/random.cuh"
#include "status.h"

using namespace isthmus;

namespace {

constexpr unsigned THREADS = 256;

template <typename T>
void launch_fill(T *out, int64_t count, uint64_t seed, int32_t distribution, float a, float b, cudaStream_t stream) {
    // Enough blocks to cover `count` a few times over the largest GPUs, capped: the loop strides over the rest.
    int64_t blocks = (count + THREADS - 1) / THREADS;
    if (blocks > 4096) blocks = 4096;
    const dim3 grid(static_cast<unsigned>(blocks));
    if (distribution == ISTHMUS_RANDOM_UNIFORM)
        ISTHMUS_LAUNCH(grid, THREADS, 0, stream, fill_uniform_kernel<T>)(out, count, seed, a, b);
    else
        ISTHMUS_LAUNCH(grid, THREADS, 0, stream, fill_normal_kernel<T>)(out, count, seed, a, b);
}

}  // namespace

extern "C" int isthmus_fill_random(void *out, int64_t count, int32_t dtype, uint64_t seed, int32_t distribution, float a,
                                   float b, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(count >= 0, "isthmus_fill_random: count %lld must be >= 0", static_cast<long long>(count));
    if (count == 0) return ISTHMUS_OK;
    ISTHMUS_REQUIRE(out != nullptr, "isthmus_fill_random: out must not be NULL");
    ISTHMUS_REQUIRE(distribution == ISTHMUS_RANDOM_UNIFORM || distribution == ISTHMUS_RANDOM_NORMAL,
                    "isthmus_fill_random: distribution %d is neither ISTHMUS_RANDOM_UNIFORM nor ISTHMUS_RANDOM_NORMAL",
                    static_cast<int>(distribution));
    ISTHMUS_REQUIRE(isfinite(a) && isfinite(b), "isthmus_fill_random: parameters %g and %g must be finite",
                    static_cast<double>(a), static_cast<double>(b));
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32: launch_fill(static_cast<float *>(out), count, seed, distribution, a, b, s); break;
        case ISTHMUS_F16: launch_fill(static_cast<__half *>(out), count, seed, distribution, a, b, s); break;
        case ISTHMUS_BF16: launch_fill(static_cast<__nv_bfloat16 *>(out), count, seed, distribution, a, b, s); break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_fill_random: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_fill_random");
    return ISTHMUS_OK;
}
