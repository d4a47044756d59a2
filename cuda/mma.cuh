// The tensor-core and asynchronous-copy instructions fast kernels are built from, each behind a
// small inline function so that the host emulation (native/emulation/mma_emulation.h) can supply
// its own definition of the same function: mma.sync m16n8k16, ldmatrix and cp.async.
//
// Fragments are the per-thread registers the PTX ISA defines ("Matrix Fragments for
// mma.m16n8k16", "Warp-level matrix load instruction: ldmatrix"); with g = lane / 4 and
// t = lane % 4, and two 16-bit elements packed in each 32-bit register (the lower index first):
//   A (16 x 16, row-major):   a[0] = A[g][2t..2t+1]     a[1] = A[g+8][2t..2t+1]
//                             a[2] = A[g][2t+8..2t+9]   a[3] = A[g+8][2t+8..2t+9]
//   B (16 x 8, k by n):       b[0] = B[2t..2t+1][g]     b[1] = B[2t+8..2t+9][g]
//   C, D (16 x 8, fp32):      c[0..1] = C[g][2t..2t+1]  c[2..3] = C[g+8][2t..2t+1]
// ldmatrix .m8n8 .b16: lanes 8i..8i+7 give the addresses of the 8 rows (16 bytes each) of matrix
// i (the addresses of lanes 8 .. 31 are unused with .x1, of lanes 16 .. 31 with .x2); register i
// of every lane then holds row g, columns 2t..2t+1 of matrix i, or with .trans rows 2t..2t+1 of
// column g (the matrix transposed).
//
// Every function here is warp-collective where the instruction is (mma, ldmatrix): all 32 lanes
// must call it together.
#pragma once

#include "common.cuh"

namespace isthmus {
namespace tc {

// Two elements of T (f16 or bf16) in one 32-bit register, `lo` in the lower half.
template <typename T> __device__ __forceinline__ uint32_t pack2(float lo, float hi);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float lo, float hi) {
    const __half2_raw h = __floats2half2_rn(lo, hi);
    return h.x | static_cast<uint32_t>(h.y) << 16;
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float lo, float hi) {
    const __nv_bfloat162_raw h = __floats2bfloat162_rn(lo, hi);
    return h.x | static_cast<uint32_t>(h.y) << 16;
}

#ifndef ISTHMUS_EMULATION

// D = A B + C on the tensor cores: A 16 x 16 and B 16 x 8 of T (__half or __nv_bfloat16), C and D
// 16 x 8 in fp32. d may alias c.
template <typename T>
__device__ __forceinline__ void mma_m16n8k16(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                             const float (&c)[4]);

template <>
__device__ __forceinline__ void mma_m16n8k16<__half>(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2],
                                                     const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
                   "f"(c[2]), "f"(c[3]));
}

template <>
__device__ __forceinline__ void mma_m16n8k16<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4],
                                                            const uint32_t (&b)[2], const float (&c)[4]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%10,%11,%12,%13};\n"
                 : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]),
                   "f"(c[2]), "f"(c[3]));
}

__device__ __forceinline__ uint32_t shared_address(const void *p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// ldmatrix from shared memory: `row` is this lane's row address (16-byte aligned), as above.
__device__ __forceinline__ void ldmatrix_x1(uint32_t (&r)[1], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t (&r)[1], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
                 : "=r"(r[0])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
                 : "=r"(r[0]), "=r"(r[1])
                 : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void *row) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
}

// cp.async: BYTES (4, 8 or 16) from global `src` to shared `dst`, both aligned to BYTES, without
// passing through registers. With `valid` false nothing is read and dst is zero-filled (the
// tail of a tile). 16-byte copies bypass L1 (.cg); the smaller ones may only use .ca.
template <int BYTES> __device__ __forceinline__ void cp_async(void *dst, const void *src, bool valid = true);
template <> __device__ __forceinline__ void cp_async<16>(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
template <> __device__ __forceinline__ void cp_async<8>(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 8, %2;\n" ::"r"(shared_address(dst)), "l"(src),
                 "r"(valid ? 8 : 0));
}
template <> __device__ __forceinline__ void cp_async<4>(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(shared_address(dst)), "l"(src),
                 "r"(valid ? 4 : 0));
}

// Closes the group of this thread's cp.async issued since the last commit.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }

// Waits until at most N of this thread's committed groups are still in flight. Other threads'
// copies are visible only after a barrier as well.
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

#endif  // !ISTHMUS_EMULATION

}  // namespace tc
}  // namespace isthmus
