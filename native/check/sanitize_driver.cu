// A small driver that calls every launcher of isthmus.h on small, awkward inputs, for
// compute-sanitizer (memcheck, racecheck, initcheck) on the GPU machine. Plain C ABI calls, as any
// user would make them; exits non-zero on the first failing status or CUDA error.
//
//   compute-sanitizer --tool memcheck build/native/sanitize_driver
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "isthmus.h"

#define CHECK_CUDA(call)                                                                      \
    do {                                                                                      \
        cudaError_t err_ = (call);                                                            \
        if (err_ != cudaSuccess) {                                                            \
            fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
            exit(1);                                                                          \
        }                                                                                     \
    } while (0)

#define CHECK_STATUS(call)                                                                     \
    do {                                                                                       \
        int status_ = (call);                                                                  \
        if (status_ != ISTHMUS_OK) {                                                           \
            fprintf(stderr, "%s:%d %s: status %d: %s\n", __FILE__, __LINE__, #call, status_,     \
                    isthmus_last_error());                                                     \
            exit(1);                                                                           \
        }                                                                                      \
    } while (0)

// Device buffer of `bytes` filled with small pseudo-random values of the dtype (not zeros).
static void *random_buffer(size_t elements, int dtype, unsigned seed) {
    std::vector<unsigned char> host(elements * 4);
    srand(seed);
    for (size_t i = 0; i < elements; ++i) {
        float v = (rand() / (float)RAND_MAX) * 2.0f - 1.0f;
        if (dtype == ISTHMUS_F32) reinterpret_cast<float *>(host.data())[i] = v;
        if (dtype == ISTHMUS_F16) reinterpret_cast<__half *>(host.data())[i] = __float2half(v);
        if (dtype == ISTHMUS_BF16) reinterpret_cast<__nv_bfloat16 *>(host.data())[i] = __float2bfloat16(v);
    }
    size_t bytes = elements * (dtype == ISTHMUS_F32 ? 4 : 2);
    void *device = nullptr;
    CHECK_CUDA(cudaMalloc(&device, bytes));
    CHECK_CUDA(cudaMemcpy(device, host.data(), bytes, cudaMemcpyHostToDevice));
    return device;
}

static void rmsnorm_cases(cudaStream_t stream) {
    const int dtypes[] = {ISTHMUS_F32, ISTHMUS_F16, ISTHMUS_BF16};
    const long long shapes[][2] = {{1, 1}, {3, 7}, {5, 64}, {2, 4097}, {1, 9000}};
    for (int dtype : dtypes) {
        for (const auto &shape : shapes) {
            const long long rows = shape[0], cols = shape[1], n = rows * cols;
            // One extra element everywhere, so the +1 offsets below exercise the unaligned path.
            char *x = static_cast<char *>(random_buffer(n + 1, dtype, 1));
            char *r = static_cast<char *>(random_buffer(n + 1, dtype, 2));
            char *w = static_cast<char *>(random_buffer(cols + 1, dtype, 3));
            char *out = static_cast<char *>(random_buffer(n + 1, dtype, 4));
            const int size = dtype == ISTHMUS_F32 ? 4 : 2;
            for (int offset = 0; offset <= 1; ++offset) {
                char *o = out + offset * size, *xx = x + offset * size, *rr = r + offset * size;
                CHECK_STATUS(isthmus_rmsnorm(o, nullptr, xx, nullptr, w, rows, cols, 1e-6f, dtype, stream));
                CHECK_STATUS(isthmus_rmsnorm(o, rr, xx, rr, w, rows, cols, 1e-6f, dtype, stream));
                CHECK_STATUS(isthmus_rmsnorm(xx, rr, xx, rr, w, rows, cols, 1e-6f, dtype, stream));
            }
            CHECK_CUDA(cudaStreamSynchronize(stream));
            CHECK_CUDA(cudaFree(x));
            CHECK_CUDA(cudaFree(r));
            CHECK_CUDA(cudaFree(w));
            CHECK_CUDA(cudaFree(out));
        }
    }
    printf("rmsnorm: ok\n");
}

int main() {
    int count = 0;
    CHECK_STATUS(isthmus_device_count(&count));
    if (count == 0) {
        fprintf(stderr, "no CUDA device\n");
        return 1;
    }
    CHECK_STATUS(isthmus_set_device(0));
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    rmsnorm_cases(stream);
    CHECK_CUDA(cudaStreamDestroy(stream));
    printf("sanitize driver: all kernels ran\n");
    return 0;
}
