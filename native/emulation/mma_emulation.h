// cuda/mma.cuh's tensor-core and asynchronous-copy functions on the host emulation, written from
// the PTX ISA's per-thread fragment layouts (the table at the top of mma.cuh), so that a kernel
// that puts an element in the wrong register gets a wrong result here as on the device.
//
// mma and ldmatrix are warp-collective (warp_collective in emulation.cpp): every one of the 32
// lanes hands in its registers or its row address, the last to arrive assembles the whole tiles
// and computes for the warp, and each lane gets back its own fragment. mma multiplies in fp32:
// the products of f16/bf16 inputs are exact in fp32 and the sum is accumulated in fp32, in k order.
//
// cp.async lands in shared memory only when a cp_async_wait retires its group (the latest the
// device may make it visible), so a kernel that reads a tile before waiting reads stale data.
// Not modelled: timing, bank conflicts, and copies landing early (a stage buffer overwritten
// while other warps still read it shows only where a missing barrier already breaks the order).
#pragma once

#include <cstdio>

namespace isthmus {
namespace tc {
namespace emulated {

using ::isthmus_emulation::COLLECTIVE_IN;
using ::isthmus_emulation::COLLECTIVE_OUT;

// Element j (0: the lower half) of a register holding two 16-bit values, as a float.
template <typename T> float element(uint32_t reg, int j);
template <> inline float element<__half>(uint32_t reg, int j) {
    __half_raw raw;
    raw.x = static_cast<unsigned short>(reg >> (16 * j));
    return __half2float(__half(raw));
}
template <> inline float element<__nv_bfloat16>(uint32_t reg, int j) {
    return ::isthmus_emulation::from_bits<float>((reg >> (16 * j) & 0xffffu) << 16);  // bf16 is fp32's upper half
}

// Lane inputs: a[0..3], b[0..1], then c[0..3] as fp32 bits; outputs d[0..3]. With g = lane / 4 and
// t = lane % 4 (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"):
//   a[0] = A[g][2t..2t+1], a[1] = A[g+8][2t..2t+1], a[2] = A[g][2t+8..2t+9], a[3] = A[g+8][2t+8..2t+9]
//   b[0] = B[2t..2t+1][g], b[1] = B[2t+8..2t+9][g]
//   c[0..1] = C[g][2t..2t+1], c[2..3] = C[g+8][2t..2t+1]   (d likewise)
template <typename T> void mma_m16n8k16_warp(const uint32_t (*in)[COLLECTIVE_IN], uint32_t (*out)[COLLECTIVE_OUT]) {
    float a[16][16], b[16][8], d[16][8];
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        const uint32_t *r = in[lane];
        for (int j = 0; j < 2; ++j) {
            a[g][2 * t + j] = element<T>(r[0], j);
            a[g + 8][2 * t + j] = element<T>(r[1], j);
            a[g][2 * t + 8 + j] = element<T>(r[2], j);
            a[g + 8][2 * t + 8 + j] = element<T>(r[3], j);
            b[2 * t + j][g] = element<T>(r[4], j);
            b[2 * t + 8 + j][g] = element<T>(r[5], j);
            d[g][2 * t + j] = ::isthmus_emulation::from_bits<float>(r[6 + j]);
            d[g + 8][2 * t + j] = ::isthmus_emulation::from_bits<float>(r[8 + j]);
        }
    }
    for (int i = 0; i < 16; ++i)
        for (int k = 0; k < 16; ++k)
            for (int j = 0; j < 8; ++j) d[i][j] += a[i][k] * b[k][j];
    for (int lane = 0; lane < 32; ++lane) {
        const int g = lane / 4, t = lane % 4;
        for (int j = 0; j < 2; ++j) {
            out[lane][j] = static_cast<uint32_t>(::isthmus_emulation::to_bits(d[g][2 * t + j]));
            out[lane][2 + j] = static_cast<uint32_t>(::isthmus_emulation::to_bits(d[g + 8][2 * t + j]));
        }
    }
}

// Lane inputs: its row address (two words). Lanes 8i..8i+7 address the 8 rows (16 bytes each) of
// matrix i; register i of lane (g, t) gets row g, columns 2t..2t+1 of matrix i, or with TRANS
// column g, rows 2t..2t+1 (PTX ISA, "Warp-level matrix load instruction: ldmatrix").
template <int X, bool TRANS> void ldmatrix_warp(const uint32_t (*in)[COLLECTIVE_IN], uint32_t (*out)[COLLECTIVE_OUT]) {
    for (int m = 0; m < X; ++m) {
        uint16_t e[8][8];
        for (int row = 0; row < 8; ++row) {
            const uint32_t *r = in[8 * m + row];
            const uintptr_t address = r[0] | static_cast<uintptr_t>(r[1]) << 32;
            std::memcpy(e[row], reinterpret_cast<const void *>(address), sizeof e[row]);
        }
        for (int lane = 0; lane < 32; ++lane) {
            const int g = lane / 4, t = lane % 4;
            const uint32_t lo = TRANS ? e[2 * t][g] : e[g][2 * t], hi = TRANS ? e[2 * t + 1][g] : e[g][2 * t + 1];
            out[lane][m] = lo | hi << 16;
        }
    }
}

template <int X, bool TRANS> void ldmatrix(const char *what, uint32_t (&r)[X], const void *row) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(row);
    // Only lanes 0 .. 8X-1 give a row; the others' addresses are not used.
    if (::isthmus_emulation::lane() < 8 * X && address % 16 != 0) {
        char text[128];
        std::snprintf(text, sizeof text, "%s: the row address %p is not 16-byte aligned", what, row);
        ::isthmus_emulation::kernel_error(text);
    }
    uint32_t in[COLLECTIVE_IN] = {static_cast<uint32_t>(address), static_cast<uint32_t>(address >> 32)};
    uint32_t out[COLLECTIVE_OUT];
    ::isthmus_emulation::warp_collective(what, ldmatrix_warp<X, TRANS>, in, out);
    for (int i = 0; i < X; ++i) r[i] = out[i];
}

}  // namespace emulated

template <typename T>
inline void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2], const float (&c)[4]) {
    static_assert(std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>, "mma_m16n8k16 takes f16 or bf16");
    uint32_t in[emulated::COLLECTIVE_IN] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    for (int i = 0; i < 4; ++i) in[6 + i] = static_cast<uint32_t>(::isthmus_emulation::to_bits(c[i]));
    uint32_t out[emulated::COLLECTIVE_OUT];
    ::isthmus_emulation::warp_collective(std::is_same_v<T, __half> ? "mma.m16n8k16.f16" : "mma.m16n8k16.bf16",
                                         emulated::mma_m16n8k16_warp<T>, in, out);
    for (int i = 0; i < 4; ++i) d[i] = ::isthmus_emulation::from_bits<float>(out[i]);
}

inline void ldmatrix_x1(uint32_t (&r)[1], const void *row) { emulated::ldmatrix<1, false>("ldmatrix.x1", r, row); }
inline void ldmatrix_x2(uint32_t (&r)[2], const void *row) { emulated::ldmatrix<2, false>("ldmatrix.x2", r, row); }
inline void ldmatrix_x4(uint32_t (&r)[4], const void *row) { emulated::ldmatrix<4, false>("ldmatrix.x4", r, row); }
inline void ldmatrix_x1_trans(uint32_t (&r)[1], const void *row) {
    emulated::ldmatrix<1, true>("ldmatrix.x1.trans", r, row);
}
inline void ldmatrix_x2_trans(uint32_t (&r)[2], const void *row) {
    emulated::ldmatrix<2, true>("ldmatrix.x2.trans", r, row);
}
inline void ldmatrix_x4_trans(uint32_t (&r)[4], const void *row) {
    emulated::ldmatrix<4, true>("ldmatrix.x4.trans", r, row);
}

template <int BYTES> inline void cp_async(void *dst, const void *src, bool valid = true) {
    static_assert(BYTES == 4 || BYTES == 8 || BYTES == 16, "cp.async copies 4, 8 or 16 bytes");
    ::isthmus_emulation::async_copy(dst, src, BYTES, valid);
}

inline void cp_async_commit() { ::isthmus_emulation::async_commit(); }

template <int N> inline void cp_async_wait() {
    static_assert(N >= 0, "cp.async.wait_group takes a count of groups");
    ::isthmus_emulation::async_wait(N);
}

}  // namespace tc
}  // namespace isthmus
