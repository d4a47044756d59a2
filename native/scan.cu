// Launcher of the selective scan (cuda/scan.cuh): checks the arguments, picks the tiling (states
// per thread, channels per block, chunk length) and the load width, launches on the caller's stream.
#include <algorithm>

#include "../cuda/scan.cuh"
#include "status.h"

using namespace isthmus;

namespace {

// Static shared memory a launch may take without opting in.
constexpr int64_t SCAN_SHARED_LIMIT = 48 * 1024;

template <typename T, bool WIDE, bool SOFTPLUS>
void launch(const ScanArgs<T> &args, int64_t rows, cudaStream_t stream) {
    const int64_t channel_tiles = (args.channels / args.groups + args.block_channels - 1) / args.block_channels;
    const dim3 grid(static_cast<unsigned>(rows * args.groups * channel_tiles));
    const unsigned threads = static_cast<unsigned>(args.block_channels * args.state_tiles);
    const size_t shared = static_cast<size_t>(scan_shared_floats(args.block_channels, args.state_tiles, args.chunk)) *
                          sizeof(float);
    ISTHMUS_LAUNCH(grid, threads, shared, stream, selective_scan_kernel<T, WIDE, SOFTPLUS>)(args);
}

template <typename T>
void launch_typed(void *y, float *final_state, const void *u, const void *delta, const void *z, const void *b,
                  const void *c, const float *a, const float *d, const float *delta_bias,
                  const float *initial_state, const int32_t *seq_starts, int64_t rows, int64_t channels,
                  int64_t length, int64_t groups, int64_t nstate, bool delta_softplus, cudaStream_t stream) {
    // SCAN_STATES states per thread; as many of a group's channels per block as fit in
    // SCAN_MAX_THREADS, so that they share the group's B and C; the longest chunk (a power of
    // two, at most 64 steps) of at most one SCAN_VEC run per thread (chunk <= SCAN_VEC * tiles:
    // the kernel gives each thread one fixed run) whose shared memory fits.
    const int tiles = static_cast<int>((nstate + SCAN_STATES - 1) / SCAN_STATES);
    const int block_channels = static_cast<int>(std::min<int64_t>(SCAN_MAX_THREADS / tiles, channels / groups));
    int chunk = 64;
    while (chunk > SCAN_VEC && (chunk > SCAN_VEC * tiles ||
                                scan_shared_floats(block_channels, tiles, chunk) * 4 > SCAN_SHARED_LIMIT))
        chunk /= 2;
    const ScanArgs<T> args{static_cast<T *>(y), final_state, static_cast<const T *>(u), static_cast<const T *>(delta),
                           static_cast<const T *>(z), static_cast<const T *>(b), static_cast<const T *>(c), a, d,
                           delta_bias, initial_state, seq_starts, length, static_cast<int32_t>(channels),
                           static_cast<int32_t>(groups), static_cast<int32_t>(nstate), block_channels, tiles, chunk};
    // 16-byte loads need rows of whole vectors on 16-byte boundaries.
    constexpr int wide = 16 / sizeof(T);
    bool vectorizable = length % wide == 0;
    for (const void *p : {static_cast<const void *>(y), u, delta, z, b, c})
        if (p != nullptr && !is_aligned(p, 16)) vectorizable = false;
    if (vectorizable && delta_softplus)
        launch<T, true, true>(args, rows, stream);
    else if (vectorizable)
        launch<T, true, false>(args, rows, stream);
    else if (delta_softplus)
        launch<T, false, true>(args, rows, stream);
    else
        launch<T, false, false>(args, rows, stream);
}

}  // namespace

extern "C" int isthmus_selective_scan(void *y, float *final_state, const void *u, const void *delta, const void *z,
                                      const void *b, const void *c, const float *a, const float *d,
                                      const float *delta_bias, const float *initial_state,
                                      const int32_t *seq_starts, int64_t sequences, int64_t batch,
                                      int64_t channels, int64_t length, int64_t groups, int64_t nstate,
                                      int32_t delta_softplus, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(y != nullptr && u != nullptr && delta != nullptr && b != nullptr && c != nullptr && a != nullptr,
                    "isthmus_selective_scan: y, u, delta, b, c and a must not be NULL");
    ISTHMUS_REQUIRE(batch >= 0 && channels > 0 && length >= 0,
                    "isthmus_selective_scan: bad sizes batch %lld, channels %lld, length %lld",
                    static_cast<long long>(batch), static_cast<long long>(channels), static_cast<long long>(length));
    ISTHMUS_REQUIRE(groups > 0 && channels % groups == 0,
                    "isthmus_selective_scan: groups %lld must divide channels %lld", static_cast<long long>(groups),
                    static_cast<long long>(channels));
    ISTHMUS_REQUIRE(nstate >= 1 && nstate <= SCAN_MAX_STATE, "isthmus_selective_scan: nstate %lld not in 1..%d",
                    static_cast<long long>(nstate), SCAN_MAX_STATE);
    int64_t rows = batch;
    if (seq_starts != nullptr) {
        ISTHMUS_REQUIRE(batch == 1 && sequences >= 0,
                        "isthmus_selective_scan: a packed batch has batch 1 and sequences >= 0");
        rows = sequences;
    } else {
        ISTHMUS_REQUIRE(sequences == 0, "isthmus_selective_scan: sequences without seq_starts");
    }
    ISTHMUS_REQUIRE(rows * channels <= 0x7fffffff, "isthmus_selective_scan: %lld rows x %lld channels is too many blocks",
                    static_cast<long long>(rows), static_cast<long long>(channels));
    if (rows == 0 || (length == 0 && final_state == nullptr)) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32:
            launch_typed<float>(y, final_state, u, delta, z, b, c, a, d, delta_bias, initial_state, seq_starts, rows,
                                channels, length, groups, nstate, delta_softplus != 0, s);
            break;
        case ISTHMUS_F16:
            launch_typed<__half>(y, final_state, u, delta, z, b, c, a, d, delta_bias, initial_state, seq_starts, rows,
                                 channels, length, groups, nstate, delta_softplus != 0, s);
            break;
        case ISTHMUS_BF16:
            launch_typed<__nv_bfloat16>(y, final_state, u, delta, z, b, c, a, d, delta_bias, initial_state, seq_starts,
                                        rows, channels, length, groups, nstate, delta_softplus != 0, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_selective_scan: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_selective_scan");
    return ISTHMUS_OK;
}
