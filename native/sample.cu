// Launcher of sampling on the device (cuda/sample.cuh): check the arguments, one block per row.
#include "../cuda/sample.cuh"
#include "status.h"

using namespace isthmus;

extern "C" int isthmus_sample(int32_t *ids, float *probs, const float *logits, int64_t rows, int64_t cols, const uint64_t *seeds,
                              uint64_t *offsets, float temperature, int64_t top_k, float top_p, float min_p, void *stream) {
    clear_error();
    ISTHMUS_REQUIRE(rows >= 0 && rows <= 0x7fffffffLL, "isthmus_sample: rows %lld out of range", static_cast<long long>(rows));
    ISTHMUS_REQUIRE(cols >= 1 && cols <= 0x7fffffffLL, "isthmus_sample: cols %lld must be in [1, 2^31 - 1]", static_cast<long long>(cols));
    ISTHMUS_REQUIRE(temperature > 0.0f && isfinite(temperature), "isthmus_sample: temperature %g must be finite and > 0 (greedy is isthmus_argmax)",
                    static_cast<double>(temperature));
    ISTHMUS_REQUIRE(top_k >= 0, "isthmus_sample: top_k %lld must be >= 0", static_cast<long long>(top_k));
    ISTHMUS_REQUIRE(top_p > 0.0f && top_p <= 1.0f, "isthmus_sample: top_p %g must be in (0, 1]", static_cast<double>(top_p));
    ISTHMUS_REQUIRE(min_p >= 0.0f && min_p <= 1.0f, "isthmus_sample: min_p %g must be in [0, 1]", static_cast<double>(min_p));
    if (rows == 0) return ISTHMUS_OK;
    ISTHMUS_REQUIRE(ids != nullptr && logits != nullptr && seeds != nullptr && offsets != nullptr,
                    "isthmus_sample: ids, logits, seeds and offsets must not be NULL");
    ISTHMUS_LAUNCH(static_cast<unsigned>(rows), kSampleThreads, 0, static_cast<cudaStream_t>(stream), sample_kernel)
    (ids, probs, logits, cols, seeds, offsets, 1.0f / temperature, top_k, top_p, min_p);
    ISTHMUS_CHECK_LAUNCH("isthmus_sample");
    return ISTHMUS_OK;
}
