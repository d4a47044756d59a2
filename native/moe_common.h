// Checks and dtype dispatch shared by the MoE launchers. Not part of the ABI.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "status.h"

namespace isthmus {

// Pair and row counts stay below 2^31: pair indices are int32 on the device.
constexpr int64_t MOE_MAX_ROWS = 0x7fffffff;

// The worst-case length of the aligned pair list: every non-empty expert pads at most tile - 1.
inline int64_t align_capacity(int64_t pairs, int64_t experts, int64_t tile) {
    return pairs + std::min(experts, pairs) * (tile - 1);
}

// Calls launch(T{}) with T the element type of a float dtype, and returns its status; any other
// dtype is an invalid argument of `who`. The launch lambda returns an isthmus_status.
template <typename Launch>
int with_float_type(int32_t dtype, const char *who, Launch &&launch) {
    switch (dtype) {
        case ISTHMUS_F32: return launch(float{});
        case ISTHMUS_F16: return launch(__half{});
        case ISTHMUS_BF16: return launch(__nv_bfloat16{});
        default: return fail(ISTHMUS_ERROR_INVALID_ARGUMENT, "%s: dtype %s is not f32, f16 or bf16", who, dtype_name(dtype));
    }
}

inline int check_routing(const char *who, int experts, int top_k, int groups, int top_groups) {
    ISTHMUS_REQUIRE(experts >= 1 && experts <= ISTHMUS_MOE_MAX_EXPERTS, "%s: experts %d out of [1, %d]", who,
                    experts, ISTHMUS_MOE_MAX_EXPERTS);
    ISTHMUS_REQUIRE(top_k >= 1 && top_k <= experts && top_k <= ISTHMUS_MOE_MAX_TOP_K,
                    "%s: top_k %d out of [1, min(experts %d, %d)]", who, top_k, experts, ISTHMUS_MOE_MAX_TOP_K);
    ISTHMUS_REQUIRE(groups >= 1 && groups <= ISTHMUS_MOE_MAX_GROUPS && experts % groups == 0,
                    "%s: groups %d must divide experts %d and be at most %d", who, groups, experts,
                    ISTHMUS_MOE_MAX_GROUPS);
    ISTHMUS_REQUIRE(top_groups >= 1 && top_groups <= groups && top_k <= top_groups * (experts / groups),
                    "%s: top_groups %d must be in [1, groups %d] and hold top_k %d experts", who, top_groups, groups,
                    top_k);
    return ISTHMUS_OK;
}

}  // namespace isthmus
