// Launcher of the one-token selective state update (cuda/scan_step.cuh).
#include "../cuda/scan_step.cuh"
#include "status.h"

using namespace isthmus;

namespace {

template <typename T>
void launch_typed(void *y, float *state, const int32_t *slots, int64_t pool, const void *u, const void *delta,
                  const void *z, const void *b, const void *c, const float *a, const float *d,
                  const float *delta_bias, int64_t batch, int64_t channels, int64_t groups, int64_t nstate,
                  bool delta_softplus, cudaStream_t stream) {
    const StepArgs<T> args{static_cast<T *>(y), state, slots, static_cast<const T *>(u), static_cast<const T *>(delta),
                           static_cast<const T *>(z), static_cast<const T *>(b), static_cast<const T *>(c), a, d,
                           delta_bias, batch, pool, static_cast<int32_t>(channels), static_cast<int32_t>(groups),
                           static_cast<int32_t>(nstate), delta_softplus};
    // Lanes per (row, channel): enough that each holds at most STEP_STATES states, at most a warp
    // (whose lanes then loop); grid x covers the channels, grid y the rows (looping past 65535).
    const bool vec = nstate % 4 == 0 && is_aligned(state, 16) && is_aligned(a, 16) &&
                     is_aligned(b, 4 * sizeof(T)) && is_aligned(c, 4 * sizeof(T));
    int lanes_log2 = 0;
    while ((1 << lanes_log2) * STEP_STATES < nstate && lanes_log2 < 5) ++lanes_log2;
    const dim3 grid(static_cast<unsigned>(((channels << lanes_log2) + STEP_THREADS - 1) / STEP_THREADS),
                    static_cast<unsigned>(batch < 65535 ? batch : 65535));
    if (vec)
        ISTHMUS_LAUNCH(grid, STEP_THREADS, 0, stream, selective_state_update_kernel<T, 4>)(args, lanes_log2);
    else
        ISTHMUS_LAUNCH(grid, STEP_THREADS, 0, stream, selective_state_update_kernel<T, 1>)(args, lanes_log2);
}

}  // namespace

extern "C" int isthmus_selective_state_update(void *y, float *state, const int32_t *slots, int64_t pool,
                                              const void *u, const void *delta, const void *z, const void *b,
                                              const void *c, const float *a, const float *d,
                                              const float *delta_bias, int64_t batch, int64_t channels,
                                              int64_t groups, int64_t nstate, int32_t delta_softplus,
                                              int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(y != nullptr && state != nullptr && u != nullptr && delta != nullptr && b != nullptr &&
                        c != nullptr && a != nullptr,
                    "isthmus_selective_state_update: y, state, u, delta, b, c and a must not be NULL");
    ISTHMUS_REQUIRE(batch >= 0 && channels > 0 && pool >= 0,
                    "isthmus_selective_state_update: bad sizes batch %lld, channels %lld, pool %lld",
                    static_cast<long long>(batch), static_cast<long long>(channels), static_cast<long long>(pool));
    ISTHMUS_REQUIRE(slots != nullptr || pool == batch,
                    "isthmus_selective_state_update: without slots the pool is the batch (%lld != %lld)",
                    static_cast<long long>(pool), static_cast<long long>(batch));
    ISTHMUS_REQUIRE(groups > 0 && channels % groups == 0,
                    "isthmus_selective_state_update: groups %lld must divide channels %lld",
                    static_cast<long long>(groups), static_cast<long long>(channels));
    ISTHMUS_REQUIRE(nstate >= 1 && nstate <= 256, "isthmus_selective_state_update: nstate %lld not in 1..256",
                    static_cast<long long>(nstate));
    ISTHMUS_REQUIRE(channels <= 0x7fffffffLL, "isthmus_selective_state_update: channels %lld too large",
                    static_cast<long long>(channels));
    if (batch == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    const bool sp = delta_softplus != 0;
    switch (dtype) {
        case ISTHMUS_F32:
            launch_typed<float>(y, state, slots, pool, u, delta, z, b, c, a, d, delta_bias, batch, channels, groups,
                                nstate, sp, s);
            break;
        case ISTHMUS_F16:
            launch_typed<__half>(y, state, slots, pool, u, delta, z, b, c, a, d, delta_bias, batch, channels, groups,
                                 nstate, sp, s);
            break;
        case ISTHMUS_BF16:
            launch_typed<__nv_bfloat16>(y, state, slots, pool, u, delta, z, b, c, a, d, delta_bias, batch, channels,
                                        groups, nstate, sp, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT,
                        "isthmus_selective_state_update: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_selective_state_update");
    return ISTHMUS_OK;
}
