// Launchers of the causal depthwise conv1d (cuda/conv1d.cuh): the sequence form and the
// one-token update of a rolling conv state.
#include "../cuda/conv1d.cuh"
#include "status.h"

#include <algorithm>

using namespace isthmus;

namespace {

constexpr unsigned THREADS = 256;  // the final-state kernel's block
constexpr int64_t GRID_YZ_LIMIT = 65535;

unsigned blocks_for(int64_t threads) { return static_cast<unsigned>((threads + THREADS - 1) / THREADS); }

template <typename T>
ConvArgs<T> args_of(void *out, void *final_state, const void *x, const void *weight, const void *bias,
                    const void *initial_state, int64_t batch, int64_t channels, int64_t length, int64_t width,
                    bool silu) {
    return ConvArgs<T>{static_cast<T *>(out), static_cast<T *>(final_state), static_cast<const T *>(x),
                       static_cast<const T *>(weight), static_cast<const T *>(bias),
                       static_cast<const T *>(initial_state), batch, length, static_cast<int32_t>(channels),
                       static_cast<int32_t>(width), silu, false};
}

// The kernels are instantiated per width; these launch the one of args.width.
template <typename T, int W = 1>
void launch_sequence_kernel(const ConvArgs<T> &args, dim3 grid, dim3 block, cudaStream_t stream) {
    if constexpr (W < CONV_MAX_WIDTH) {
        if (args.width > W) return launch_sequence_kernel<T, W + 1>(args, grid, block, stream);
    }
    ISTHMUS_LAUNCH(grid, block, 0, stream, causal_conv1d_kernel<T, W>)(args);
}

template <typename T, int W = 1>
void launch_update_kernel(const ConvArgs<T> &args, dim3 grid, dim3 block, cudaStream_t stream) {
    if constexpr (W < CONV_MAX_WIDTH) {
        if (args.width > W) return launch_update_kernel<T, W + 1>(args, grid, block, stream);
    }
    ISTHMUS_LAUNCH(grid, block, 0, stream, causal_conv1d_update_kernel<T, W>)(args);
}

template <typename T>
void launch_sequence(ConvArgs<T> args, cudaStream_t stream) {
    if (args.length > 0) {
        // 16-byte vectors where every row starts aligned; a short sequence gets a narrow block.
        args.vector = is_aligned(args.x, 16) && is_aligned(args.out, 16) &&
                      args.length % static_cast<int64_t>(16 / sizeof(T)) == 0;
        const int64_t tiles = (args.length + CONV_ITEMS - 1) / CONV_ITEMS;
        const int64_t threads = std::min<int64_t>(CONV_SEQUENCE_THREADS, (tiles + 31) / 32 * 32);
        const dim3 grid(static_cast<unsigned>((tiles + threads - 1) / threads),
                        static_cast<unsigned>(std::min<int64_t>(args.channels, GRID_YZ_LIMIT)),
                        static_cast<unsigned>(std::min<int64_t>(args.batch, GRID_YZ_LIMIT)));
        launch_sequence_kernel(args, grid, dim3(static_cast<unsigned>(threads)), stream);
    }
    if (args.final_state != nullptr && args.width > 1)
        ISTHMUS_LAUNCH(blocks_for(args.batch * args.channels), THREADS, 0, stream, causal_conv1d_final_state_kernel<T>)(args);
}

// A block per run of up to CONV_UPDATE_THREADS channels of a batch row; fewer channels, a narrow block.
template <typename T>
void launch_update(const ConvArgs<T> &args, cudaStream_t stream) {
    const int64_t threads = std::min<int64_t>(CONV_UPDATE_THREADS, (static_cast<int64_t>(args.channels) + 31) / 32 * 32);
    const dim3 grid(static_cast<unsigned>((args.channels + threads - 1) / threads),
                    static_cast<unsigned>(std::min<int64_t>(args.batch, GRID_YZ_LIMIT)));
    launch_update_kernel(args, grid, dim3(static_cast<unsigned>(threads)), stream);
}

int check_sizes(const char *what, int64_t batch, int64_t channels, int64_t length, int64_t width) {
    ISTHMUS_REQUIRE(batch >= 0 && channels > 0 && channels <= 0x7fffffff && length >= 0,
                    "%s: bad sizes batch %lld, channels %lld, length %lld", what, static_cast<long long>(batch),
                    static_cast<long long>(channels), static_cast<long long>(length));
    ISTHMUS_REQUIRE(width >= 1 && width <= CONV_MAX_WIDTH, "%s: width %lld not in 1..%d", what,
                    static_cast<long long>(width), CONV_MAX_WIDTH);
    ISTHMUS_REQUIRE(batch * channels * (length > 0 ? length : 1) <= 0x7fffffffLL * THREADS, "%s: too many elements",
                    what);
    return ISTHMUS_OK;
}

}  // namespace

extern "C" int isthmus_causal_conv1d(void *out, void *final_state, const void *x, const void *weight,
                                     const void *bias, const void *initial_state, int64_t batch, int64_t channels,
                                     int64_t length, int64_t width, int32_t silu, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && x != nullptr && weight != nullptr,
                    "isthmus_causal_conv1d: out, x and weight must not be NULL");
    ISTHMUS_REQUIRE(out != x, "isthmus_causal_conv1d: out must not be x (later outputs read earlier inputs)");
    if (int status = check_sizes("isthmus_causal_conv1d", batch, channels, length, width)) return status;
    if (batch == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32:
            launch_sequence(args_of<float>(out, final_state, x, weight, bias, initial_state, batch, channels, length,
                                           width, silu != 0), s);
            break;
        case ISTHMUS_F16:
            launch_sequence(args_of<__half>(out, final_state, x, weight, bias, initial_state, batch, channels, length,
                                            width, silu != 0), s);
            break;
        case ISTHMUS_BF16:
            launch_sequence(args_of<__nv_bfloat16>(out, final_state, x, weight, bias, initial_state, batch, channels,
                                                   length, width, silu != 0), s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_causal_conv1d: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_causal_conv1d");
    return ISTHMUS_OK;
}

extern "C" int isthmus_causal_conv1d_update(void *out, void *conv_state, const void *x, const void *weight,
                                            const void *bias, int64_t batch, int64_t channels, int64_t width,
                                            int32_t silu, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && x != nullptr && weight != nullptr && (conv_state != nullptr || width == 1),
                    "isthmus_causal_conv1d_update: out, x, weight and (for width > 1) conv_state must not be NULL");
    if (int status = check_sizes("isthmus_causal_conv1d_update", batch, channels, 1, width)) return status;
    if (batch == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32:
            launch_update(args_of<float>(out, conv_state, x, weight, bias, nullptr, batch, channels, 1, width,
                                         silu != 0), s);
            break;
        case ISTHMUS_F16:
            launch_update(args_of<__half>(out, conv_state, x, weight, bias, nullptr, batch, channels, 1, width,
                                          silu != 0), s);
            break;
        case ISTHMUS_BF16:
            launch_update(args_of<__nv_bfloat16>(out, conv_state, x, weight, bias, nullptr, batch, channels, 1, width,
                                                 silu != 0), s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT,
                        "isthmus_causal_conv1d_update: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_causal_conv1d_update");
    return ISTHMUS_OK;
}
