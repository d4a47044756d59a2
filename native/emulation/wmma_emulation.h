// nvcuda::wmma on the host emulation: every lane of a warp holds the whole tile, so an element-wise
// loop over fragment.x applies to all of it, and each operation is warp-synchronous (every
// lane of the warp must reach it, as on the device). mma_sync multiplies in fp32, as the tensor
// cores accumulate; the products of f16/bf16 inputs are exact in fp32.
#pragma once

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K> struct tile_shape;
template <int M, int N, int K> struct tile_shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct tile_shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct tile_shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

template <typename Use, int M, int N, int K, typename T, typename Layout = void> struct fragment {
    static constexpr int rows = tile_shape<Use, M, N, K>::rows, cols = tile_shape<Use, M, N, K>::cols;
    static constexpr int num_elements = rows * cols;
    T x[num_elements];  // row-major: x[r * cols + c]
};

inline void warp_collective(const char *what) { ::isthmus_emulation::warp_exchange(what, 0xffffffffu, 0, -1); }

template <typename Use, int M, int N, int K, typename T, typename Layout, typename V>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, const V &value) {
    warp_collective("wmma::fill_fragment");
    for (int i = 0; i < f.num_elements; ++i) f.x[i] = static_cast<T>(value);
}

template <typename Use, int M, int N, int K, typename T, typename Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const T *p, unsigned ld) {
    static_assert(!std::is_void_v<Layout>, "matrix fragments carry their layout");
    warp_collective("wmma::load_matrix_sync");
    for (int r = 0; r < f.rows; ++r)
        for (int c = 0; c < f.cols; ++c)
            f.x[r * f.cols + c] = std::is_same_v<Layout, row_major> ? p[r * ld + c] : p[r + c * ld];
}

template <int M, int N, int K, typename T>
void load_matrix_sync(fragment<accumulator, M, N, K, T> &f, const T *p, unsigned ld, layout_t layout) {
    warp_collective("wmma::load_matrix_sync");
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) f.x[r * N + c] = layout == mem_row_major ? p[r * ld + c] : p[r + c * ld];
}

template <int M, int N, int K, typename T>
void store_matrix_sync(T *p, const fragment<accumulator, M, N, K, T> &f, unsigned ld, layout_t layout) {
    warp_collective("wmma::store_matrix_sync");
    for (int r = 0; r < M; ++r)
        for (int c = 0; c < N; ++c) (layout == mem_row_major ? p[r * ld + c] : p[r + c * ld]) = f.x[r * N + c];
}

template <int M, int N, int K, typename TA, typename LA, typename TB, typename LB, typename TC>
void mma_sync(fragment<accumulator, M, N, K, TC> &d, const fragment<matrix_a, M, N, K, TA, LA> &a,
              const fragment<matrix_b, M, N, K, TB, LB> &b, const fragment<accumulator, M, N, K, TC> &c) {
    warp_collective("wmma::mma_sync");
    // The lanes of a warp reach this one after another with the same fragments (wmma operands
    // are warp-uniform): the first computes, the others find their inputs equal and copy.
    struct Last {
        fragment<matrix_a, M, N, K, TA, LA> a;
        fragment<matrix_b, M, N, K, TB, LB> b;
        fragment<accumulator, M, N, K, TC> c, d;
        bool valid = false;
    };
    static thread_local Last last;
    if (last.valid && std::memcmp(&last.a, &a, sizeof a) == 0 && std::memcmp(&last.b, &b, sizeof b) == 0 &&
        std::memcmp(&last.c, &c, sizeof c) == 0) {
        d = last.d;
        return;
    }
    last.a = a;
    last.b = b;
    last.c = c;
    // Converted once: the host's f16 -> f32 conversion is software.
    float af[M * K], bf[K * N], result[M * N];
    for (int i = 0; i < M * K; ++i) af[i] = static_cast<float>(a.x[i]);
    for (int i = 0; i < K * N; ++i) bf[i] = static_cast<float>(b.x[i]);
    for (int i = 0; i < M * N; ++i) result[i] = static_cast<float>(c.x[i]);
    for (int i = 0; i < M; ++i)
        for (int k = 0; k < K; ++k)
            for (int j = 0; j < N; ++j) result[i * N + j] += af[i * K + k] * bf[k * N + j];
    for (int i = 0; i < M * N; ++i) d.x[i] = static_cast<TC>(result[i]);
    last.d = d;
    last.valid = true;
}

}  // namespace wmma
}  // namespace nvcuda
