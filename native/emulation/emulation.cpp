// The host emulation's scheduler (blocks one after another, the threads of a block as
// cooperative fibers) and the CUDA runtime calls the launchers make, answering as one emulated
// device. See cuda_emulation.h.
#include <setjmp.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emulation.h"

namespace isthmus_emulation {

thread_local Coordinates here;

namespace {

// ---- fibers: a stack and a saved stack pointer; the switch saves the callee-saved registers ----

#if defined(__x86_64__)
// switch_stack(&save, next): pushes the callee-saved registers and the SSE/x87 control words,
// stores the stack pointer in *save, loads `next` and pops the same from there.
extern "C" void isthmus_emulation_switch(void **save, void *next);
extern "C" void isthmus_emulation_start();
asm(R"(
    .text
    .globl isthmus_emulation_switch
    .hidden isthmus_emulation_switch
    .type isthmus_emulation_switch, @function
isthmus_emulation_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size isthmus_emulation_switch, .-isthmus_emulation_switch

    .globl isthmus_emulation_start
    .hidden isthmus_emulation_start
    .type isthmus_emulation_start, @function
isthmus_emulation_start:
    movq %r12, %rdi
    andq $-16, %rsp
    call isthmus_emulation_fiber_main
    ud2
    .size isthmus_emulation_start, .-isthmus_emulation_start
)");
#else
#error "the host emulation's fiber switch is written for x86-64"
#endif

constexpr size_t STACK_BYTES = 256 * 1024;  // wmma fragments hold whole tiles per lane

// The fibers' stacks of one OS thread (memory.cpp: behind a guard page, so an overflow faults
// instead of corrupting a neighbour), kept for its next launches and returned when it exits.
struct Stacks {
    std::vector<char *> bases;
    ~Stacks() {
        for (char *base : bases) give_back_stack(base, STACK_BYTES);
    }
};

enum class State { Ready, AtBarrier, AtWarp, Done };

// A cp.async issued and not yet performed; `group` counts the commits before it.
struct AsyncCopy {
    void *dst;
    const void *src;
    int bytes;
    bool valid;
    unsigned group;
};

struct Fiber {
    void *sp = nullptr;
    State state = State::Ready;
    uint3 thread{};
    int warp = 0, lane = 0;
    const char *site = nullptr;  // the __syncthreads or warp intrinsic it waits at
    unsigned long long generation = 0;  // of the barrier it waits on
    std::vector<AsyncCopy> copies;      // in issue order; kept allocated from block to block
    unsigned commits = 0;               // cp.async groups committed
};

struct Warp {
    unsigned live = 0;      // lanes that exist and have not returned
    unsigned arrived = 0;   // lanes at the current exchange
    unsigned mask = 0;      // the mask of the current exchange
    const char *what = nullptr;
    unsigned long long generation = 0;
    uint64_t values[2][32] = {};  // by generation parity: a lane reads the last round's while others write the next
    unsigned contributed[2] = {};
    Collective compute = nullptr;  // of the collective instruction the lanes are meeting at
    uint32_t in[32][COLLECTIVE_IN] = {}, out[32][COLLECTIVE_OUT] = {};
};

struct Block {
    std::vector<Fiber> fibers;
    std::vector<unsigned> order;  // of the fibers in the current sweep
    std::vector<Warp> warps;
    int live = 0, arrived = 0;
    const char *barrier_site = nullptr;
    unsigned long long generation = 0;
    Fiber *running = nullptr;
    void *scheduler_sp = nullptr;
    Body body = nullptr;
    const void *context = nullptr;
    std::string error;  // the first failure; the block is abandoned
    cudaError_t error_code = cudaErrorLaunchFailure;
    sigjmp_buf escape;  // where a fiber's memory fault returns to (kernel_fault)
    const void *fault_address = nullptr;
};

// The order in which the fibers of a block run in each sweep: the fibers switch only at barriers
// and warp operations, so the order decides which thread of a racy kernel gets there first.
// Chosen by ISTHMUS_EMULATION_SCHEDULE (forward, reverse or shuffle[:seed]) or set_schedule.
struct Schedule {
    Order order = Order::Forward;
    uint64_t seed = 1;
    std::string error;  // an unreadable setting: every launch fails with it
};

Schedule schedule_from_environment() {
    Schedule s;
    const char *value = std::getenv("ISTHMUS_EMULATION_SCHEDULE");
    if (value == nullptr || std::strcmp(value, "forward") == 0) return s;
    char *end = nullptr;
    if (std::strcmp(value, "reverse") == 0) {
        s.order = Order::Reverse;
    } else if (std::strncmp(value, "shuffle", 7) == 0 && (value[7] == '\0' || value[7] == ':')) {
        s.order = Order::Shuffle;
        if (value[7] == ':') s.seed = std::strtoull(value + 8, &end, 10);
        if (end != nullptr && (end == value + 8 || *end != '\0')) s.error = "a bad seed";
    } else {
        s.error = "not forward, reverse or shuffle[:seed]";
    }
    if (!s.error.empty()) s.error = std::string("ISTHMUS_EMULATION_SCHEDULE=") + value + ": " + s.error;
    return s;
}

Schedule schedule = schedule_from_environment();

uint64_t mix(uint64_t x) {  // splitmix64's finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

thread_local Stacks stacks;
thread_local Block *block = nullptr;
thread_local std::string launch_error_text;  // of the latest failed launch
thread_local cudaError_t launch_error = cudaSuccess, launch_error_reported = cudaSuccess;
thread_local int current_device = 0;

std::mutex attributes_lock;
std::map<const void *, int> max_dynamic_shared;  // cudaFuncAttributeMaxDynamicSharedMemorySize per kernel
std::atomic<int64_t> attribute_calls{0};         // of cudaDeviceGetAttribute and cudaFuncSetAttribute

constexpr int DEFAULT_DYNAMIC_SHARED = 48 * 1024;
constexpr int MAX_DYNAMIC_SHARED = 227 * 1024;  // what an sm_90 block may opt in to

void record_error(cudaError_t error, const std::string &text) {
    if (launch_error != cudaSuccess) return;  // the first failure is the one to report
    launch_error = launch_error_reported = error;
    launch_error_text = "host emulation: " + text;
}

std::string format(const char *format, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *format, ...) {
    char text[512];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    return text;
}

std::string name(const Fiber &f) {
    return format("thread (%u,%u,%u) of block (%u,%u,%u)", f.thread.x, f.thread.y, f.thread.z, here.block.x,
                  here.block.y, here.block.z);
}

void fail(const std::string &text) {
    if (block->error.empty()) block->error = text;
}

void *stack_top(size_t index) {
    while (stacks.bases.size() <= index) {
        char *stack = take_stack(STACK_BYTES);
        if (stack == nullptr) return nullptr;
        stacks.bases.push_back(stack);
    }
    return stacks.bases[index] + STACK_BYTES;
}

// Back to the scheduler; returns when the scheduler resumes this fiber.
void yield() {
    Fiber *self = block->running;
    isthmus_emulation_switch(&self->sp, block->scheduler_sp);
}

void set_coordinates(const Fiber &f) { here.thread = f.thread; }

void release_barrier() {
    block->arrived = 0;
    block->barrier_site = nullptr;
    ++block->generation;
}

void release_warp(Warp &w) {
    // Computed when every lane arrived; a lane that returned instead is reported to the others.
    if (w.compute != nullptr && w.arrived == 0xffffffffu) w.compute(w.in, w.out);
    w.compute = nullptr;
    w.contributed[w.generation & 1] = w.arrived;
    w.arrived = 0;
    w.mask = 0;
    w.what = nullptr;
    ++w.generation;
}

// A lane returned: the barrier or warp exchange others wait at may now be complete.
void retire(Fiber &f) {
    f.state = State::Done;
    --block->live;
    Warp &w = block->warps[f.warp];
    w.live &= ~(1u << f.lane);
    if (block->arrived > 0 && block->arrived == block->live) release_barrier();
    if (w.arrived != 0 && (w.mask & w.live & ~w.arrived) == 0) release_warp(w);
}

}  // namespace

extern "C" __attribute__((visibility("hidden"))) void isthmus_emulation_fiber_main(Fiber *f) {
    set_coordinates(*f);
    block->body(block->context);
    retire(*f);
    isthmus_emulation_switch(&f->sp, block->scheduler_sp);
    __builtin_unreachable();
}

namespace {

// A new fiber's stack holds what the switch pops: control words, six registers (r12 = the
// fiber), and the start routine as the return address.
void prepare(Fiber &f, void *top) {
    void **sp = static_cast<void **>(top);
    *--sp = nullptr;  // keeps the frame aligned
    *--sp = reinterpret_cast<void *>(&isthmus_emulation_start);
    *--sp = nullptr;  // rbp
    *--sp = nullptr;  // rbx
    *--sp = &f;       // r12
    *--sp = nullptr;  // r13
    *--sp = nullptr;  // r14
    *--sp = nullptr;  // r15
    uint32_t control[2];
    asm volatile("stmxcsr %0" : "=m"(control[0]));
    asm volatile("fnstcw %0" : "=m"(control[1]));
    *--sp = nullptr;
    std::memcpy(sp, control, sizeof control);
    f.sp = sp;
}

bool runnable(const Fiber &f) {
    switch (f.state) {
        case State::Ready: return true;
        case State::AtBarrier: return block->generation != f.generation;
        case State::AtWarp: return block->warps[f.warp].generation != f.generation;
        case State::Done: return false;
    }
    return false;
}

std::string describe_wait(const Fiber &f) {
    if (f.state == State::AtBarrier) return name(f) + " waits at __syncthreads (" + f.site + ")";
    return name(f) + " waits at " + f.site;
}

// The fibers in the order the schedule gives this sweep; a shuffle depends only on the seed, the
// block and the sweep, so a launch runs the same whatever ran before it.
void order_sweep(unsigned long long sweep) {
    std::vector<unsigned> &order = block->order;
    const unsigned n = static_cast<unsigned>(order.size());
    for (unsigned i = 0; i < n; ++i) order[i] = schedule.order == Order::Reverse ? n - 1 - i : i;
    if (schedule.order != Order::Shuffle) return;
    const uint64_t linear = here.block.x + 1ull * here.grid_dim.x * (here.block.y + 1ull * here.grid_dim.y * here.block.z);
    uint64_t state = mix(mix(schedule.seed) ^ linear) ^ sweep;
    for (unsigned i = n - 1; i > 0; --i) {
        state = mix(state);
        std::swap(order[i], order[state % (i + 1)]);
    }
}

// Runs the fibers of one block until all return; a block where nobody can go on is a deadlock.
void run_block() {
    for (unsigned long long sweep = 0; block->live > 0 && block->error.empty(); ++sweep) {
        bool progress = false;
        order_sweep(sweep);
        for (unsigned index : block->order) {
            Fiber &f = block->fibers[index];
            if (!runnable(f)) continue;
            f.state = State::Ready;
            progress = true;
            block->running = &f;
            set_coordinates(f);
            isthmus_emulation_switch(&block->scheduler_sp, f.sp);
            if (!block->error.empty()) return;
        }
        if (!progress) {
            // One thread per distinct place the stuck threads wait at.
            std::string waits;
            std::vector<const char *> sites;
            for (const Fiber &f : block->fibers) {
                if (f.state == State::Done || std::find(sites.begin(), sites.end(), f.site) != sites.end()) continue;
                sites.push_back(f.site);
                waits += (waits.empty() ? "" : "; ") + describe_wait(f);
            }
            fail("a barrier not every live thread reaches (deadlock on the device): " + waits);
            return;
        }
    }
}

// Runs the block; false when a fiber faulted on memory and kernel_fault jumped back here.
bool run_block_catching_faults() {
    if (sigsetjmp(block->escape, 1) != 0) return false;
    run_block();
    return true;
}

}  // namespace

void set_schedule(Order order, uint64_t seed) {
    schedule.order = order;
    schedule.seed = seed;
    schedule.error.clear();
}

void kernel_fault(const void *address) {
    block->fault_address = address;
    siglongjmp(block->escape, 1);
}

void block_barrier(const char *site) {
    Fiber &self = *block->running;
    if (block->arrived == 0) {
        block->barrier_site = site;
    } else if (block->barrier_site != site && std::strcmp(block->barrier_site, site) != 0) {
        fail("threads of a block wait at different __syncthreads: " + name(self) + " at " + site + ", others at " +
             block->barrier_site);
        yield();
    }
    self.state = State::AtBarrier;
    self.site = site;
    self.generation = block->generation;
    if (++block->arrived == block->live) release_barrier();
    yield();
}

uint64_t warp_exchange(const char *what, unsigned mask, uint64_t value, int source) {
    Fiber &self = *block->running;
    Warp &w = block->warps[self.warp];
    const unsigned bit = 1u << self.lane;
    if ((mask & bit) == 0) fail(name(self) + " calls " + what + " with a mask that leaves out its own lane");
    if (w.arrived == 0) {
        w.mask = mask;
        w.what = what;
    } else if (w.mask != mask || std::strcmp(w.what, what) != 0) {
        fail(format("lanes of a warp meet at different warp operations: %s at %s mask %08x, others at %s mask %08x",
                    name(self).c_str(), what, mask, w.what, w.mask));
    }
    if (!block->error.empty()) yield();
    const unsigned long long round = w.generation;
    w.values[round & 1][self.lane] = value;
    w.arrived |= bit;
    self.state = State::AtWarp;
    self.site = what;
    self.generation = round;
    if ((w.mask & w.live & ~w.arrived) == 0) release_warp(w);
    yield();
    if (source < 0) return value;
    if ((w.contributed[round & 1] & (1u << source)) == 0) {
        fail(format("%s: %s reads lane %d, which did not take part (returned, or not in the mask)", what,
                    name(self).c_str(), source));
        yield();
    }
    return w.values[round & 1][source];
}

void kernel_error(const std::string &text) {
    fail(name(*block->running) + ": " + text);
    yield();  // the scheduler abandons the block and does not come back
    __builtin_unreachable();
}

void warp_collective(const char *what, Collective compute, const uint32_t (&in)[COLLECTIVE_IN],
                     uint32_t (&out)[COLLECTIVE_OUT]) {
    Fiber &self = *block->running;
    Warp &w = block->warps[self.warp];
    const unsigned long long round = w.generation;
    if (w.arrived == 0) w.compute = compute;  // a different instruction meeting it fails by its name
    std::memcpy(w.in[self.lane], in, sizeof in);
    warp_exchange(what, 0xffffffffu, 0, -1);
    const unsigned lanes = w.contributed[round & 1];
    if (lanes != 0xffffffffu)
        kernel_error(format("%s needs all 32 lanes of the warp, but only lanes %08x took part (the others "
                            "returned or do not exist)", what, lanes));
    std::memcpy(out, w.out[self.lane], sizeof out);
}

void async_copy(void *dst, const void *src, int bytes, bool valid) {
    Fiber &self = *block->running;
    if (reinterpret_cast<uintptr_t>(dst) % bytes != 0 || reinterpret_cast<uintptr_t>(src) % bytes != 0)
        kernel_error(format("cp.async of %d bytes from %p to %p: both addresses must be aligned to %d bytes", bytes,
                            src, dst, bytes));
    self.copies.push_back(AsyncCopy{dst, src, bytes, valid, self.commits});
}

void async_commit() { ++block->running->commits; }

void async_wait(int newest_pending) {
    Fiber &self = *block->running;
    std::vector<AsyncCopy> &copies = self.copies;
    size_t done = 0;
    // Groups only grow along the queue: the ones retired are a prefix.
    for (; done < copies.size() && copies[done].group + newest_pending < self.commits; ++done) {
        const AsyncCopy &c = copies[done];
        if (c.valid) std::memcpy(c.dst, c.src, c.bytes);
        else std::memset(c.dst, 0, c.bytes);
    }
    copies.erase(copies.begin(), copies.begin() + done);
}

namespace {

// One exchange, after which every lane sees all contributions of the round: returns the lanes
// that took part and copies their values.
unsigned warp_gather(const char *what, unsigned mask, uint64_t value, uint64_t (&values)[32]) {
    Fiber &self = *block->running;
    const unsigned long long round = block->warps[self.warp].generation;
    warp_exchange(what, mask, value, -1);
    const Warp &w = block->warps[self.warp];
    std::memcpy(values, w.values[round & 1], sizeof values);
    return w.contributed[round & 1];
}

}  // namespace

unsigned warp_ballot(const char *what, unsigned mask, bool predicate) {
    uint64_t values[32];
    const unsigned lanes = warp_gather(what, mask, predicate ? 1 : 0, values);
    unsigned ballot = 0;
    for (int lane = 0; lane < 32; ++lane)
        if ((lanes >> lane & 1) && values[lane] != 0) ballot |= 1u << lane;
    return ballot;
}

unsigned warp_match_any(unsigned mask, uint64_t value) {
    uint64_t values[32];
    const unsigned lanes = warp_gather("__match_any_sync", mask, value, values);
    unsigned same = 0;
    for (int lane = 0; lane < 32; ++lane)
        if ((lanes >> lane & 1) && values[lane] == value) same |= 1u << lane;
    return same;
}

void run_grid(const char *kernel_name, const void *kernel, dim3 grid, dim3 block_dim, size_t shared_bytes, Body body,
              const void *context) {
    if (!schedule.error.empty()) {
        record_error(cudaErrorInvalidValue, schedule.error);
        return;
    }
    const unsigned long long threads = 1ull * block_dim.x * block_dim.y * block_dim.z;
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 || grid.z > 65535 || threads == 0 ||
        threads > 1024 || block_dim.z > 64) {
        record_error(cudaErrorInvalidConfiguration,
                     format("grid (%u,%u,%u) with blocks of (%u,%u,%u) threads is not a valid launch", grid.x, grid.y,
                            grid.z, block_dim.x, block_dim.y, block_dim.z));
        return;
    }
    int allowed = DEFAULT_DYNAMIC_SHARED;
    {
        std::lock_guard<std::mutex> hold(attributes_lock);
        auto it = max_dynamic_shared.find(kernel);
        if (it != max_dynamic_shared.end()) allowed = it->second;
    }
    if (shared_bytes > static_cast<size_t>(allowed)) {
        record_error(cudaErrorInvalidValue,
                     format("%zu bytes of dynamic shared memory, but the kernel allows %d (cudaFuncSetAttribute)",
                            shared_bytes, allowed));
        return;
    }
    if (!stack_top(threads - 1)) {
        record_error(cudaErrorMemoryAllocation, "no memory for the fibers' stacks");
        return;
    }
    Block b;
    b.body = body;
    b.context = context;
    b.fibers.resize(threads);
    b.order.resize(threads);
    b.warps.resize((threads + 31) / 32);
    Block *outer = block;
    block = &b;
    const Coordinates saved = here;
    here.block_dim = block_dim;
    here.grid_dim = grid;
    for (unsigned z = 0; z < grid.z && b.error.empty(); ++z)
        for (unsigned y = 0; y < grid.y && b.error.empty(); ++y)
            for (unsigned x = 0; x < grid.x && b.error.empty(); ++x) {
                here.block = make_uint3(x, y, z);
                if (shared_bytes > 0) poison_dynamic_shared(shared_bytes);
                poison_static_shared(kernel);
                b.live = static_cast<int>(threads);
                b.arrived = 0;
                b.barrier_site = nullptr;
                for (Warp &w : b.warps) w = Warp{};
                for (unsigned i = 0; i < threads; ++i) {
                    Fiber &f = b.fibers[i];
                    std::vector<AsyncCopy> copies = std::move(f.copies);  // copies left at exit never land
                    copies.clear();
                    f = Fiber{};
                    f.copies = std::move(copies);
                    f.thread = make_uint3(i % block_dim.x, i / block_dim.x % block_dim.y, i / (block_dim.x * block_dim.y));
                    f.warp = static_cast<int>(i / 32);
                    f.lane = static_cast<int>(i % 32);
                    b.warps[f.warp].live |= 1u << f.lane;
                    prepare(f, stack_top(i));
                }
                if (!run_block_catching_faults()) {
                    b.error_code = cudaErrorIllegalAddress;
                    b.error = format("%s touched %p (%s)", name(*b.running).c_str(), b.fault_address,
                                     describe_address(b.fault_address).c_str());
                }
            }
    block = outer;
    here = saved;
    if (!b.error.empty()) record_error(b.error_code, std::string(kernel_name) + ": " + b.error);
}

namespace {
thread_local std::vector<std::function<void()>> *recording = nullptr;  // while a capture is open
}  // namespace

bool capturing() { return recording != nullptr; }

void record(std::function<void()> work) { recording->push_back(std::move(work)); }

}  // namespace isthmus_emulation

// A captured graph and its executable form: the recorded launches, in order.
struct CUgraph_st {
    std::vector<std::function<void()>> work;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> work;
};

// ---- the CUDA runtime, as one emulated device ---------------------------------------------------

using namespace isthmus_emulation;

extern "C" {

cudaError_t cudaGetLastError(void) {
    const cudaError_t e = launch_error;
    launch_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return launch_error; }

const char *cudaGetErrorName(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "cudaSuccess";
        case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
        case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
        case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
        case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
        case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
        case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
        default: return "cudaErrorUnknown";
    }
}

// The text of the latest emulated failure: what went wrong in which thread.
const char *cudaGetErrorString(cudaError_t error) {
    if (error == cudaSuccess) return "no error";
    if (error == launch_error_reported && !launch_error_text.empty()) return launch_error_text.c_str();
    return "host emulation: the emulated device refused the call";
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = 1;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *version) {
    *version = 0;  // there is no driver
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    *version = CUDART_VERSION;
    return cudaSuccess;
}

// An sm_90-like device, so launchers that size by the device make the same choices.
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (device != 0) return cudaErrorInvalidDevice;
    std::memset(prop, 0, sizeof *prop);
    std::snprintf(prop->name, sizeof prop->name, "host emulation (not a GPU)");
    prop->major = 9;
    prop->minor = 0;
    prop->multiProcessorCount = 1;
    prop->maxThreadsPerBlock = 1024;
    prop->totalGlobalMem = 1ull << 30;
    prop->sharedMemPerBlock = DEFAULT_DYNAMIC_SHARED;
    prop->sharedMemPerBlockOptin = MAX_DYNAMIC_SHARED;
    prop->warpSize = 32;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    ++attribute_calls;
    if (device != 0) return cudaErrorInvalidDevice;
    switch (attr) {
        case cudaDevAttrMultiProcessorCount: *value = 1; return cudaSuccess;
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = MAX_DYNAMIC_SHARED; return cudaSuccess;
        case cudaDevAttrMaxSharedMemoryPerBlock: *value = DEFAULT_DYNAMIC_SHARED; return cudaSuccess;
        case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
        case cudaDevAttrWarpSize: *value = 32; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
        case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
        default: return cudaErrorInvalidValue;
    }
}

// Graphs: one capture at a time per thread, on the one (null) stream the emulation has.
cudaError_t cudaStreamBeginCapture(cudaStream_t, cudaStreamCaptureMode) {
    if (recording != nullptr) return cudaErrorIllegalState;
    recording = new std::vector<std::function<void()>>();
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t, cudaGraph_t *graph) {
    if (recording == nullptr) return cudaErrorIllegalState;
    *graph = new CUgraph_st{std::move(*recording)};
    delete recording;
    recording = nullptr;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long) {
    *exec = new CUgraphExec_st{graph->work};
    return cudaSuccess;
}

// Runs the recorded launches in order; the first that fails stops the replay, and its error is
// returned here (a GPU would report it later, from the stream).
cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t) {
    if (recording != nullptr) return cudaErrorStreamCaptureUnsupported;
    for (const auto &work : exec->work) {
        work();
        if (launch_error != cudaSuccess) return cudaGetLastError();
    }
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    delete graph;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    delete exec;
    return cudaSuccess;
}

// The emulated SM holds what an sm_90 SM would by threads and shared memory (registers are not
// emulated): at most 2048 threads, 32 blocks and 228 KiB, 1 KiB of it reserved a block.
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int *blocks, const void *, int block_size, size_t dynamic_shared) {
    if (blocks == nullptr || block_size < 1 || block_size > 1024) return cudaErrorInvalidValue;
    const size_t by_shared = (228 * 1024) / (dynamic_shared + 1024);
    *blocks = static_cast<int>(std::min<size_t>({static_cast<size_t>(2048 / block_size), 32, by_shared}));
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    ++attribute_calls;
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return cudaSuccess;  // hints: nothing to emulate
    if (value < 0 || value > MAX_DYNAMIC_SHARED) return cudaErrorInvalidValue;
    std::lock_guard<std::mutex> hold(attributes_lock);
    max_dynamic_shared[func] = value;
    return cudaSuccess;
}

}  // extern "C"

// How many attribute calls (cudaDeviceGetAttribute, cudaFuncSetAttribute) the launchers made: a
// test checks that they are made once per device, not at every launch.
extern "C" __attribute__((visibility("default"))) int64_t isthmus_emulation_attribute_calls(void) {
    return attribute_calls.load();
}
