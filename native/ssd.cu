// Launchers of the Mamba-2 SSD kernels (cuda/ssd.cuh, cuda/ssd_step.cuh): the chunked scan, the
// one-token state update and the gated RMSNorm. Each checks its arguments, picks the tiling and
// launches on the caller's stream.
#include <algorithm>

#include "../cuda/ssd_step.cuh"
#include "device.h"
#include "status.h"

using namespace isthmus;

namespace {

int round_up(int64_t v, int to) { return static_cast<int>((v + to - 1) / to * to); }

// The chunk (asked for, or 64) and the widest tile of head channels (up to 64, a multiple of 16)
// whose shared memory the device grants; a chunk that was not asked for halves until one fits.
// Returns the layout's bytes, or 0 when nothing fits.
size_t choose_tiling(int requested_chunk, int64_t head_dim, int64_t nstate, int operand_bytes, size_t limit,
                     int *chunk, int *p_tile) {
    const int n_pad = round_up(nstate, 16);
    const int widest = std::min(round_up(head_dim, 16), 64);
    for (int q = requested_chunk != 0 ? requested_chunk : SSD_MAX_CHUNK; q >= 16; q /= 2) {
        for (int pt : {widest, 32, 16}) {
            if (pt > widest) continue;
            const SsdLayout lay(q, pt, n_pad, operand_bytes);
            if (lay.bytes <= limit) {
                *chunk = q;
                *p_tile = pt;
                return lay.bytes;
            }
        }
        if (requested_chunk != 0) break;
    }
    return 0;
}

template <typename T>
int launch_scan(SsdArgs<T> args, int64_t rows, int requested_chunk, cudaStream_t stream) {
    const int device = current_device();
    if (device < 0) return fail(ISTHMUS_ERROR_CUDA, "isthmus_ssd_scan: no current device below %d", kMaxDevices);
    const size_t limit = static_cast<size_t>(device_attribute<cudaDevAttrMaxSharedMemoryPerBlockOptin>(device));
    int chunk = 0, p_tile = 0;
    const size_t bytes = choose_tiling(requested_chunk, args.head_dim, args.nstate, sizeof(T), limit, &chunk, &p_tile);
    if (bytes == 0)
        return fail(ISTHMUS_ERROR_INVALID_ARGUMENT,
                    "isthmus_ssd_scan: chunk %d with head_dim %d and nstate %d needs more shared memory than the "
                    "device's %zu bytes", requested_chunk, args.head_dim, args.nstate, limit);
    // Opt in once to all the device allows, so that any later tiling fits too.
    const int status = allow_shared_memory<ssd_scan_kernel<T>>(limit, device, "isthmus_ssd_scan");
    if (status != ISTHMUS_OK) return status;
    args.chunk = chunk;
    args.p_tile = p_tile;
    args.n_pad = round_up(args.nstate, 16);
    args.p_tiles = (args.head_dim + p_tile - 1) / p_tile;
    const int64_t blocks = rows * args.heads * args.p_tiles;
    ISTHMUS_REQUIRE(blocks <= 0x7fffffff, "isthmus_ssd_scan: %lld blocks is too many", static_cast<long long>(blocks));
    ISTHMUS_LAUNCH(dim3(static_cast<unsigned>(blocks)), SSD_THREADS, bytes, stream, ssd_scan_kernel<T>)(args);
    return ISTHMUS_OK;
}

template <typename T>
int scan_typed(void *y, float *final_states, const void *x, const void *dt, const void *b, const void *c,
               const float *a, const float *d, const float *dt_bias, const float *initial_states,
               const int32_t *seq_starts, int64_t rows, int64_t length, int64_t heads, int64_t head_dim,
               int64_t groups, int64_t nstate, bool dt_softplus, float dt_min, float dt_max, int chunk,
               cudaStream_t stream) {
    const SsdArgs<T> args{static_cast<T *>(y), final_states, static_cast<const T *>(x), static_cast<const T *>(dt),
                          static_cast<const T *>(b), static_cast<const T *>(c), a, d, dt_bias, initial_states,
                          seq_starts, length, static_cast<int32_t>(heads), static_cast<int32_t>(head_dim),
                          static_cast<int32_t>(groups), static_cast<int32_t>(nstate), dt_softplus, dt_min, dt_max,
                          0, 0, 0, 0};
    return launch_scan<T>(args, rows, chunk, stream);
}

template <typename T>
void step_typed(void *y, float *state, const int32_t *slots, int64_t pool, const void *x, const void *dt,
                const void *b, const void *c, const float *a, const float *d, const float *dt_bias, int64_t batch,
                int64_t heads, int64_t head_dim, int64_t groups, int64_t nstate, bool dt_softplus, float dt_min,
                float dt_max, cudaStream_t stream) {
    const SsdStepArgs<T> args{static_cast<T *>(y), state, slots, static_cast<const T *>(x), static_cast<const T *>(dt),
                              static_cast<const T *>(b), static_cast<const T *>(c), a, d, dt_bias, batch, pool,
                              static_cast<int32_t>(heads), static_cast<int32_t>(head_dim), static_cast<int32_t>(groups),
                              static_cast<int32_t>(nstate), dt_softplus, dt_min, dt_max};
    const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(batch < 65535 ? batch : 65535));
    ISTHMUS_LAUNCH(grid, SSD_STEP_THREADS, 0, stream, ssd_state_update_kernel<T>)(args);
}

template <typename T>
void norm_typed(void *out, const void *y, const void *z, const void *weight, int64_t rows, int64_t width,
                int64_t group_size, float eps, cudaStream_t stream) {
    const dim3 grid(static_cast<unsigned>(rows * (width / group_size)));
    ISTHMUS_LAUNCH(grid, SSD_NORM_THREADS, 0, stream, gated_rmsnorm_kernel<T>)(
        static_cast<T *>(out), static_cast<const T *>(y), static_cast<const T *>(z), static_cast<const T *>(weight),
        width, group_size, eps);
}

// The checks the scan and the step share.
int check_sizes(const char *who, int64_t heads, int64_t head_dim, int64_t groups, int64_t nstate, float dt_min,
                float dt_max) {
    ISTHMUS_REQUIRE(heads > 0 && heads <= 0x7fffffff, "%s: heads %lld not in 1..2^31-1", who, static_cast<long long>(heads));
    ISTHMUS_REQUIRE(groups > 0 && heads % groups == 0, "%s: groups %lld must divide heads %lld", who,
                    static_cast<long long>(groups), static_cast<long long>(heads));
    ISTHMUS_REQUIRE(head_dim >= 1 && head_dim <= 256, "%s: head_dim %lld not in 1..256", who, static_cast<long long>(head_dim));
    ISTHMUS_REQUIRE(nstate >= 1 && nstate <= 256, "%s: nstate %lld not in 1..256", who, static_cast<long long>(nstate));
    ISTHMUS_REQUIRE(dt_min <= dt_max, "%s: the time-step limits [%g, %g] are not an interval", who, dt_min, dt_max);
    return ISTHMUS_OK;
}

}  // namespace

extern "C" int isthmus_ssd_scan(void *y, float *final_states, const void *x, const void *dt, const void *b,
                                const void *c, const float *a, const float *d, const float *dt_bias,
                                const float *initial_states, const int32_t *seq_starts, int64_t sequences,
                                int64_t batch, int64_t length, int64_t heads, int64_t head_dim, int64_t groups,
                                int64_t nstate, int32_t dt_softplus, float dt_min, float dt_max, int32_t chunk,
                                int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(y != nullptr && x != nullptr && dt != nullptr && b != nullptr && c != nullptr && a != nullptr,
                    "isthmus_ssd_scan: y, x, dt, b, c and a must not be NULL");
    ISTHMUS_REQUIRE(batch >= 0 && length >= 0, "isthmus_ssd_scan: bad sizes batch %lld, length %lld",
                    static_cast<long long>(batch), static_cast<long long>(length));
    const int sizes = check_sizes("isthmus_ssd_scan", heads, head_dim, groups, nstate, dt_min, dt_max);
    if (sizes != ISTHMUS_OK) return sizes;
    ISTHMUS_REQUIRE(chunk == 0 || chunk == 16 || chunk == 32 || chunk == 64,
                    "isthmus_ssd_scan: chunk %d is not 0 (the launcher's choice), 16, 32 or 64", chunk);
    int64_t rows = batch;
    if (seq_starts != nullptr) {
        ISTHMUS_REQUIRE(batch == 1 && sequences >= 0, "isthmus_ssd_scan: a packed batch has batch 1 and sequences >= 0");
        rows = sequences;
    } else {
        ISTHMUS_REQUIRE(sequences == 0, "isthmus_ssd_scan: sequences without seq_starts");
    }
    if (rows == 0 || (length == 0 && final_states == nullptr)) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    int status;
    switch (dtype) {
        case ISTHMUS_F32:
            status = scan_typed<float>(y, final_states, x, dt, b, c, a, d, dt_bias, initial_states, seq_starts, rows, length,
                                       heads, head_dim, groups, nstate, dt_softplus != 0, dt_min, dt_max, chunk, s);
            break;
        case ISTHMUS_F16:
            status = scan_typed<__half>(y, final_states, x, dt, b, c, a, d, dt_bias, initial_states, seq_starts, rows,
                                        length, heads, head_dim, groups, nstate, dt_softplus != 0, dt_min, dt_max, chunk, s);
            break;
        case ISTHMUS_BF16:
            status = scan_typed<__nv_bfloat16>(y, final_states, x, dt, b, c, a, d, dt_bias, initial_states, seq_starts,
                                               rows, length, heads, head_dim, groups, nstate, dt_softplus != 0, dt_min,
                                               dt_max, chunk, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_ssd_scan: dtype %s is not f32, f16 or bf16", dtype_name(dtype));
    }
    if (status != ISTHMUS_OK) return status;
    ISTHMUS_CHECK_LAUNCH("isthmus_ssd_scan");
    return ISTHMUS_OK;
}

extern "C" int isthmus_ssd_state_update(void *y, float *state, const int32_t *slots, int64_t pool, const void *x,
                                        const void *dt, const void *b, const void *c, const float *a, const float *d,
                                        const float *dt_bias, int64_t batch, int64_t heads, int64_t head_dim,
                                        int64_t groups, int64_t nstate, int32_t dt_softplus, float dt_min, float dt_max,
                                        int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(y != nullptr && state != nullptr && x != nullptr && dt != nullptr && b != nullptr && c != nullptr &&
                        a != nullptr,
                    "isthmus_ssd_state_update: y, state, x, dt, b, c and a must not be NULL");
    ISTHMUS_REQUIRE(batch >= 0 && pool >= 0, "isthmus_ssd_state_update: bad sizes batch %lld, pool %lld",
                    static_cast<long long>(batch), static_cast<long long>(pool));
    ISTHMUS_REQUIRE(slots != nullptr || pool == batch,
                    "isthmus_ssd_state_update: without slots the pool is the batch (%lld != %lld)",
                    static_cast<long long>(pool), static_cast<long long>(batch));
    const int sizes = check_sizes("isthmus_ssd_state_update", heads, head_dim, groups, nstate, dt_min, dt_max);
    if (sizes != ISTHMUS_OK) return sizes;
    if (batch == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    const bool sp = dt_softplus != 0;
    switch (dtype) {
        case ISTHMUS_F32:
            step_typed<float>(y, state, slots, pool, x, dt, b, c, a, d, dt_bias, batch, heads, head_dim, groups, nstate, sp,
                              dt_min, dt_max, s);
            break;
        case ISTHMUS_F16:
            step_typed<__half>(y, state, slots, pool, x, dt, b, c, a, d, dt_bias, batch, heads, head_dim, groups, nstate, sp,
                               dt_min, dt_max, s);
            break;
        case ISTHMUS_BF16:
            step_typed<__nv_bfloat16>(y, state, slots, pool, x, dt, b, c, a, d, dt_bias, batch, heads, head_dim, groups,
                                      nstate, sp, dt_min, dt_max, s);
            break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_ssd_state_update: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_ssd_state_update");
    return ISTHMUS_OK;
}

extern "C" int isthmus_gated_rmsnorm(void *out, const void *y, const void *z, const void *weight, int64_t rows,
                                     int64_t width, int64_t group_size, float eps, int32_t dtype, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(out != nullptr && y != nullptr && weight != nullptr,
                    "isthmus_gated_rmsnorm: out, y and weight must not be NULL");
    ISTHMUS_REQUIRE(rows >= 0 && width > 0 && group_size > 0 && width % group_size == 0,
                    "isthmus_gated_rmsnorm: group_size %lld must divide width %lld (rows %lld)",
                    static_cast<long long>(group_size), static_cast<long long>(width), static_cast<long long>(rows));
    ISTHMUS_REQUIRE(rows * (width / group_size) <= 0x7fffffff, "isthmus_gated_rmsnorm: %lld groups is too many",
                    static_cast<long long>(rows * (width / group_size)));
    ISTHMUS_REQUIRE(eps >= 0.0f, "isthmus_gated_rmsnorm: eps %g is negative", eps);
    if (rows == 0) return ISTHMUS_OK;
    cudaStream_t s = static_cast<cudaStream_t>(stream);
    switch (dtype) {
        case ISTHMUS_F32: norm_typed<float>(out, y, z, weight, rows, width, group_size, eps, s); break;
        case ISTHMUS_F16: norm_typed<__half>(out, y, z, weight, rows, width, group_size, eps, s); break;
        case ISTHMUS_BF16: norm_typed<__nv_bfloat16>(out, y, z, weight, rows, width, group_size, eps, s); break;
        default:
            return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "isthmus_gated_rmsnorm: dtype %s is not f32, f16 or bf16",
                        dtype_name(dtype));
    }
    ISTHMUS_CHECK_LAUNCH("isthmus_gated_rmsnorm");
    return ISTHMUS_OK;
}
