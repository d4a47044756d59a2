// Launcher of the selective scan (cuda/scan.cuh): checks the arguments, picks the block size,
// the load width and the N = 16 fast path, launches on the caller's stream.
#include "../cuda/scan.cuh"
#include "status.h"

using namespace isthmus;

namespace {

template <typename T, bool WIDE>
void launch(const ScanArgs<T> &args, int64_t rows, unsigned threads, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(rows * args.channels));
    if (args.nstate == 16)
        ISTHMUS_LAUNCH(grid, threads, 0, stream, selective_scan_kernel<T, WIDE, 16>)(args);
    else
        ISTHMUS_LAUNCH(grid, threads, 0, stream, selective_scan_kernel<T, WIDE, 0>)(args);
}

template <typename T>
void launch_typed(void *y, float *final_state, const void *u, const void *delta, const void *z, const void *b,
                  const void *c, const float *a, const float *d, const float *delta_bias,
                  const float *initial_state, const int32_t *seq_starts, int64_t rows, int64_t channels,
                  int64_t length, int64_t groups, int64_t nstate, bool delta_softplus, cudaStream_t stream) {
    const ScanArgs<T> args{static_cast<T *>(y), final_state, static_cast<const T *>(u), static_cast<const T *>(delta),
                           static_cast<const T *>(z), static_cast<const T *>(b), static_cast<const T *>(c), a, d,
                           delta_bias, initial_state, seq_starts, length, static_cast<int32_t>(channels),
                           static_cast<int32_t>(groups), static_cast<int32_t>(nstate), delta_softplus};
    // Enough warps to cover a row's steps once, at most SCAN_MAX_THREADS: short sequences keep
    // their blocks small instead of idling three warps out of four.
    const int64_t per_row = seq_starts != nullptr ? length / rows + 1 : length;
    int64_t threads = (per_row + SCAN_ITEMS * 32 - 1) / (SCAN_ITEMS * 32) * 32;
    if (threads > SCAN_MAX_THREADS) threads = SCAN_MAX_THREADS;
    if (threads < 32) threads = 32;
    // 16-byte loads need rows of whole vectors on 16-byte boundaries.
    constexpr int wide = 16 / sizeof(T);
    bool vectorizable = length % wide == 0;
    for (const void *p : {static_cast<const void *>(y), u, delta, z, b, c})
        if (p != nullptr && !is_aligned(p, 16)) vectorizable = false;
    if (vectorizable)
        launch<T, true>(args, rows, static_cast<unsigned>(threads), stream);
    else
        launch<T, false>(args, rows, static_cast<unsigned>(threads), stream);
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
