// Tests of the host emulation's tensor-core and asynchronous-copy instructions (cuda/mma.cuh,
// mma_emulation.h): D = A B + C by mma_m16n8k16 for f16 and bf16, with the operands loaded by
// every form of ldmatrix from row- and column-major copies in shared memory and, separately,
// built by hand from the PTX ISA's fragment layout, against a plain triple loop on random
// values; cp.async 4/8/16 bytes invisible before the wait that retires its group, zero-fill, and
// the misuses (misaligned cp.async or ldmatrix row, mma without the whole warp) reported as
// launch failures. Run by `make emulation` under every schedule; exits non-zero when a check failed.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "mma.cuh"
#include "self_test.h"
#include "status.h"

namespace {

using namespace self_test;

using isthmus::tc::pack2;

constexpr int M = 16, N = 8, K = 16;
constexpr int WARPS = 2, BLOCKS = 3, TILES = WARPS * BLOCKS;  // each warp its own tile

// How a test kernel gets its fragments: A by ldmatrix_x4 from row-major A or x4.trans from A
// stored column-major; B by x2.trans or a pair of x1.trans from row-major B (k by n), or by x2 or
// a pair of x1 from B stored column-major (n by k); or everything built by hand from global memory.
enum class Load { X4_X2Trans, X4_X2, X4Trans_X1, X4Trans_X1Trans, ByHand };

// One tile per warp: tile w's A (16 x 16, row-major), B (16 x 8, row-major) and C, D (16 x 8, row-major).
template <typename T>
__global__ void mma_kernel(Load load, const T *a, const T *b, const float *c, float *d) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int tile = blockIdx.x * WARPS + warp;
    a += tile * M * K;
    b += tile * K * N;
    c += tile * M * N;
    d += tile * M * N;
    __shared__ __align__(16) T a_rows[WARPS][M][K], a_cols[WARPS][K][M], b_rows[WARPS][K][N], b_cols[WARPS][N][K];
    for (int i = lane; i < M * K; i += 32) {
        const int r = i / K, k = i % K;
        a_rows[warp][r][k] = a[i];
        a_cols[warp][k][r] = a[i];
    }
    for (int i = lane; i < K * N; i += 32) {
        const int k = i / N, n = i % N;
        b_rows[warp][k][n] = b[i];
        b_cols[warp][n][k] = b[i];
    }
    __syncthreads();
    uint32_t af[4], bf[2];
    float cf[4];
    // Lane L of an ldmatrix names row L % 8 of matrix L / 8.
    const int matrix = lane / 8, row = lane % 8;
    if (load == Load::ByHand) {
        auto at = [&](int r, int k) { return isthmus::to_float(a[r * K + k]); };
        auto bt = [&](int k, int n) { return isthmus::to_float(b[k * N + n]); };
        af[0] = pack2<T>(at(g, 2 * t), at(g, 2 * t + 1));
        af[1] = pack2<T>(at(g + 8, 2 * t), at(g + 8, 2 * t + 1));
        af[2] = pack2<T>(at(g, 2 * t + 8), at(g, 2 * t + 9));
        af[3] = pack2<T>(at(g + 8, 2 * t + 8), at(g + 8, 2 * t + 9));
        bf[0] = pack2<T>(bt(2 * t, g), bt(2 * t + 1, g));
        bf[1] = pack2<T>(bt(2 * t + 8, g), bt(2 * t + 9, g));
    } else {
        // a[i] is the 8 x 8 block (rows 8 (i % 2), columns 8 (i / 2)) of A; transposed, of A^T.
        if (load == Load::X4_X2Trans || load == Load::X4_X2)
            isthmus::tc::ldmatrix_x4(af, &a_rows[warp][row + 8 * (matrix % 2)][8 * (matrix / 2)]);
        else
            isthmus::tc::ldmatrix_x4_trans(af, &a_cols[warp][row + 8 * (matrix / 2)][8 * (matrix % 2)]);
        // b[i] is rows 8i .. 8i+7 of B; the lanes past the last matrix give no address.
        const bool used = lane < 16;
        switch (load) {
            case Load::X4_X2Trans:
                isthmus::tc::ldmatrix_x2_trans(bf, used ? &b_rows[warp][lane][0] : nullptr);
                break;
            case Load::X4_X2:
                isthmus::tc::ldmatrix_x2(bf, used ? &b_cols[warp][row][8 * matrix] : nullptr);
                break;
            case Load::X4Trans_X1:
            case Load::X4Trans_X1Trans:
                for (int i = 0; i < 2; ++i) {
                    uint32_t one[1];
                    if (load == Load::X4Trans_X1) isthmus::tc::ldmatrix_x1(one, &b_cols[warp][row][8 * i]);
                    else isthmus::tc::ldmatrix_x1_trans(one, &b_rows[warp][8 * i + row][0]);
                    bf[i] = one[0];
                }
                break;
            default: break;
        }
    }
    cf[0] = c[g * N + 2 * t];
    cf[1] = c[g * N + 2 * t + 1];
    cf[2] = c[(g + 8) * N + 2 * t];
    cf[3] = c[(g + 8) * N + 2 * t + 1];
    isthmus::tc::mma_m16n8k16<T>(cf, af, bf, cf);  // d aliasing c, as kernels accumulate
    d[g * N + 2 * t] = cf[0];
    d[g * N + 2 * t + 1] = cf[1];
    d[(g + 8) * N + 2 * t] = cf[2];
    d[(g + 8) * N + 2 * t + 1] = cf[3];
}

const char *load_name(Load load) {
    switch (load) {
        case Load::X4_X2Trans: return "A by ldmatrix.x4, B by x2.trans";
        case Load::X4_X2: return "A by ldmatrix.x4, B by x2 (B column-major)";
        case Load::X4Trans_X1: return "A by ldmatrix.x4.trans (A column-major), B by x1 (B column-major)";
        case Load::X4Trans_X1Trans: return "A by ldmatrix.x4.trans (A column-major), B by x1.trans";
        case Load::ByHand: return "fragments built by hand from the layout";
    }
    return "";
}

// D = A B + C on every tile, compared element-wise with a triple loop in double: the bound is
// fp32 accumulation of 17 terms, a layout mistake is off by O(1).
template <typename T> bool check_mma(Load load, std::mt19937 &random) {
    std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
    std::vector<T> a(TILES * M * K), b(TILES * K * N);
    std::vector<float> c(TILES * M * N), d(TILES * M * N, std::nanf(""));
    for (T &v : a) v = static_cast<T>(uniform(random));
    for (T &v : b) v = static_cast<T>(uniform(random));
    for (float &v : c) v = uniform(random);
    ISTHMUS_LAUNCH(BLOCKS, WARPS * 32, 0, nullptr, mma_kernel<T>)(load, a.data(), b.data(), c.data(), d.data());
    const std::string error = last_error_text();
    if (!error.empty()) {
        std::printf("     %s\n", error.c_str());
        return false;
    }
    double worst = 0.0;
    for (int tile = 0; tile < TILES; ++tile)
        for (int i = 0; i < M; ++i)
            for (int j = 0; j < N; ++j) {
                double sum = c[(tile * M + i) * N + j], magnitude = std::fabs(sum);
                for (int k = 0; k < K; ++k) {
                    const double p = static_cast<double>(static_cast<float>(a[(tile * M + i) * K + k])) *
                                     static_cast<float>(b[(tile * K + k) * N + j]);
                    sum += p;
                    magnitude += std::fabs(p);
                }
                const double got = d[(tile * M + i) * N + j];
                const double error_ratio = std::isfinite(got) ? std::fabs(got - sum) / (1e-6 * magnitude + 1e-30) : 1e30;
                worst = std::max(worst, error_ratio);
            }
    if (worst > 4.0) std::printf("     worst error %.3g x 1e-6 of sum |a b| + |c|\n", worst);
    return worst <= 4.0;
}

// ---- cp.async ----------------------------------------------------------------------------------

constexpr int COPY_THREADS = 64;

// What each thread of copy_kernel finds, one bit per expectation (all set when right).
enum Seen : unsigned {
    STALE_BEFORE_WAIT = 1,      // group 0 (16-, 8-, 4-byte and zero-fill copies) not there before any wait
    GROUP0_AFTER_WAIT1 = 2,     // wait<1> with groups 0 and 1 committed lands group 0 ...
    GROUP1_STALE_AFTER_WAIT1 = 4,  // ... but not group 1
    ZERO_FILLED = 8,            // the copy with valid = false wrote zeros
    GROUP1_AFTER_WAIT0 = 16,    // wait<0> lands group 1 ...
    OPEN_STALE_AFTER_WAIT0 = 32,  // ... but not a copy issued and not committed
    OPEN_AFTER_COMMIT = 64,     // which lands once committed and waited for
    ALL_SEEN = 127
};

constexpr uint32_t STALE = 0xdeadbeefu;

// src holds 8 words per thread: words 0..3 go by one 16-byte copy, 4..5 by an 8-byte one, 6 by a
// 4-byte one (group 0, with a 16-byte zero-fill), 7 by a 4-byte copy of group 1 and again by an
// uncommitted one.
__global__ void copy_kernel(const uint32_t *src, unsigned *seen) {
    __shared__ __align__(16) uint32_t landed[COPY_THREADS][8], zero[COPY_THREADS][4], open[COPY_THREADS];
    const int i = threadIdx.x;
    const uint32_t *mine = src + 8 * i;
    for (int w = 0; w < 8; ++w) landed[i][w] = STALE;
    for (int w = 0; w < 4; ++w) zero[i][w] = STALE;
    open[i] = STALE;
    isthmus::tc::cp_async<16>(&landed[i][0], mine);
    isthmus::tc::cp_async<8>(&landed[i][4], mine + 4);
    isthmus::tc::cp_async<4>(&landed[i][6], mine + 6);
    isthmus::tc::cp_async<16>(&zero[i][0], nullptr, false);
    isthmus::tc::cp_async_commit();
    isthmus::tc::cp_async<4>(&landed[i][7], mine + 7);
    isthmus::tc::cp_async_commit();
    unsigned s = 0;
    bool stale = zero[i][0] == STALE;
    for (int w = 0; w < 8; ++w) stale &= landed[i][w] == STALE;
    if (stale) s |= STALE_BEFORE_WAIT;
    isthmus::tc::cp_async_wait<1>();
    bool group0 = true;
    for (int w = 0; w < 7; ++w) group0 &= landed[i][w] == mine[w];
    if (group0) s |= GROUP0_AFTER_WAIT1;
    if (landed[i][7] == STALE) s |= GROUP1_STALE_AFTER_WAIT1;
    if (zero[i][0] == 0 && zero[i][1] == 0 && zero[i][2] == 0 && zero[i][3] == 0) s |= ZERO_FILLED;
    isthmus::tc::cp_async<4>(&open[i], mine + 7);
    isthmus::tc::cp_async_wait<0>();
    if (landed[i][7] == mine[7]) s |= GROUP1_AFTER_WAIT0;
    if (open[i] == STALE) s |= OPEN_STALE_AFTER_WAIT0;
    isthmus::tc::cp_async_commit();
    isthmus::tc::cp_async_wait<0>();
    if (open[i] == mine[7]) s |= OPEN_AFTER_COMMIT;
    seen[i] = s;
}

// Thread 5 copies with dst (or src) off by 4 bytes from BYTES alignment.
template <int BYTES> __global__ void misaligned_copy_kernel(const uint32_t *src, bool dst_off) {
    __shared__ __align__(16) uint32_t buffer[64];
    const int off = threadIdx.x == 5 ? 1 : 0;
    isthmus::tc::cp_async<BYTES>(buffer + (dst_off ? off : 0) + 4 * (threadIdx.x % 8), src + (dst_off ? 0 : off));
    isthmus::tc::cp_async_commit();
    isthmus::tc::cp_async_wait<0>();
}

// Lane 3 gives a row address 8 bytes off; with x1, lane 12's address is not used and may be anything.
__global__ void misaligned_ldmatrix_kernel(int bad_lane, uint32_t *out) {
    __shared__ __align__(16) __half rows[8][8];
    for (int i = threadIdx.x; i < 64; i += 32) rows[i / 8][i % 8] = __float2half(static_cast<float>(i));
    __syncwarp();
    uint32_t r[1];
    const char *row = reinterpret_cast<const char *>(&rows[threadIdx.x % 8][0]);
    isthmus::tc::ldmatrix_x1(r, static_cast<int>(threadIdx.x) == bad_lane ? row + 8 : row);
    out[threadIdx.x] = r[0];
}

// An mma where lanes at or past `lanes` have returned (or the block has fewer threads).
__global__ void partial_warp_mma_kernel(unsigned lanes, float *out) {
    if (threadIdx.x >= lanes) return;
    const uint32_t a[4] = {}, b[2] = {};
    float d[4] = {};
    isthmus::tc::mma_m16n8k16<__half>(d, a, b, d);
    out[threadIdx.x] = d[0];
}

void check_copies() {
    std::vector<uint32_t> src(8 * COPY_THREADS);
    for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<uint32_t>(0x1000 + 7 * i);
    std::vector<unsigned> seen(COPY_THREADS, 0);
    ISTHMUS_LAUNCH(1, COPY_THREADS, 0, nullptr, copy_kernel)(src.data(), seen.data());
    const std::string error = last_error_text();
    if (!error.empty()) std::printf("     %s\n", error.c_str());
    unsigned all = ALL_SEEN;
    for (unsigned s : seen) all &= s;
    const struct {
        unsigned bit;
        const char *what;
    } expectations[] = {
            {STALE_BEFORE_WAIT, "cp.async 16/8/4 bytes: nothing lands before a wait"},
            {GROUP0_AFTER_WAIT1, "cp.async: wait<1> lands the older group"},
            {GROUP1_STALE_AFTER_WAIT1, "cp.async: wait<1> leaves the newest group in flight"},
            {ZERO_FILLED, "cp.async with valid = false zero-fills"},
            {GROUP1_AFTER_WAIT0, "cp.async: wait<0> lands every committed group"},
            {OPEN_STALE_AFTER_WAIT0, "cp.async: wait<0> leaves copies not yet committed"},
            {OPEN_AFTER_COMMIT, "cp.async: a copy lands once committed and waited for"},
    };
    for (const auto &e : expectations) check(error.empty() && (all & e.bit) != 0, e.what);
}

void check_misuse() {
    std::vector<uint32_t> src(64, 1);
    std::string text;
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, misaligned_copy_kernel<16>)(src.data(), true);
    text = last_error_text();
    std::printf("     %s\n", text.c_str());
    check(contains(text, "thread (5,0,0)") && contains(text, "aligned to 16 bytes"),
          "a 16-byte cp.async to a misaligned shared address is reported");
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, misaligned_copy_kernel<8>)(src.data(), false);
    text = last_error_text();
    check(contains(text, "thread (5,0,0)") && contains(text, "aligned to 8 bytes"),
          "an 8-byte cp.async from a misaligned global address is reported");
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, misaligned_copy_kernel<4>)(src.data(), false);
    check(last_error_text().empty(), "4-byte cp.async needs only 4-byte alignment");

    std::vector<uint32_t> out(32);
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, misaligned_ldmatrix_kernel)(3, out.data());
    text = last_error_text();
    std::printf("     %s\n", text.c_str());
    check(contains(text, "thread (3,0,0)") && contains(text, "ldmatrix.x1: the row address"),
          "an ldmatrix row address off 16-byte alignment is reported");
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, misaligned_ldmatrix_kernel)(12, out.data());
    bool x1_ok = last_error_text().empty();
    // Lane 4 (g = 1, t = 0) holds row 1, columns 0 and 1: the values 8 and 9.
    x1_ok &= out[4] == pack2<__half>(8.0f, 9.0f);
    check(x1_ok, "ldmatrix.x1 ignores the addresses of lanes 8..31");

    std::vector<float> d(32);
    ISTHMUS_LAUNCH(1, 32, 0, nullptr, partial_warp_mma_kernel)(16u, d.data());
    text = last_error_text();
    std::printf("     %s\n", text.c_str());
    check(contains(text, "mma.m16n8k16.f16 needs all 32 lanes") && contains(text, "0000ffff"),
          "an mma that half the warp returned before is reported");
    ISTHMUS_LAUNCH(1, 24, 0, nullptr, partial_warp_mma_kernel)(32u, d.data());
    text = last_error_text();
    check(contains(text, "needs all 32 lanes") && contains(text, "00ffffff"),
          "an mma in a warp of 24 threads is reported");
}

}  // namespace

int main() {
    std::mt19937 random(20261202);
    for (const NamedSchedule &s : schedules) {
        isthmus_emulation::set_schedule(s.order, 11);
        for (Load load : {Load::X4_X2Trans, Load::X4_X2, Load::X4Trans_X1, Load::X4Trans_X1Trans, Load::ByHand}) {
            check(check_mma<__half>(load, random), std::string("f16 mma, ") + load_name(load) + " (" + s.name + ")");
            check(check_mma<__nv_bfloat16>(load, random),
                  std::string("bf16 mma, ") + load_name(load) + " (" + s.name + ")");
        }
        check_copies();
    }
    isthmus_emulation::set_schedule(isthmus_emulation::Order::Forward, 1);
    check_misuse();
    std::printf("%s\n", failures == 0 ? "host emulation mma/ldmatrix/cp.async self-test passed"
                                      : "host emulation mma/ldmatrix/cp.async self-test FAILED");
    return failures == 0 ? 0 : 1;
}
