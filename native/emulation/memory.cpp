// The host emulation's device memory and the fibers' stacks, both carved from one reserved range
// of address space, and the SIGSEGV handler that turns a kernel's fault into a failed launch.
//
// Each device allocation gets pages of its own with an inaccessible guard page behind it (the
// allocation ends exactly against it) or, with ISTHMUS_EMULATION_GUARD=before, in front of it (it
// starts right after it), so a kernel reading or writing past an end faults instead of reading a
// neighbour. Freed pages go back to the system but stay reserved and inaccessible, so a use after
// free faults too; addresses are never reused.
//
// The handler knows a kernel faulted because the stack pointer at the fault is on a fiber's stack
// (inside the range); it then jumps back to the scheduler (kernel_fault), which abandons the grid
// and reports cudaErrorIllegalAddress with the kernel's name and the address. Any other SIGSEGV
// (the JVM uses them for its own purposes) goes to the handler that was installed before.
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "cuda_emulation.h"

namespace isthmus_emulation {

namespace {

constexpr size_t PAGE = 4096;
constexpr size_t RESERVED_BYTES = size_t{1} << 40;  // address space only: nothing is committed until used

struct Span {
    char *start;  // of the span, guard page included
    size_t bytes;
};

struct Allocation {
    Span span;
    size_t bytes;  // asked for
};

std::mutex lock;
std::atomic<char *> reserved{nullptr};
size_t used = 0;                      // bytes of the range handed out so far (under lock)
std::map<char *, Allocation> allocations;  // device allocations by base address (under lock)
struct sigaction previous_handler;

bool in_range(const void *p) {
    const char *base = reserved.load(std::memory_order_acquire);
    return base != nullptr && static_cast<size_t>(static_cast<const char *>(p) - base) < RESERVED_BYTES;
}

void on_fault(int signal, siginfo_t *info, void *context) {
    const auto *uc = static_cast<const ucontext_t *>(context);
    if (in_range(reinterpret_cast<const void *>(uc->uc_mcontext.gregs[REG_RSP]))) kernel_fault(info->si_addr);
    if (previous_handler.sa_flags & SA_SIGINFO) {
        previous_handler.sa_sigaction(signal, info, context);
    } else if (previous_handler.sa_handler != SIG_IGN && previous_handler.sa_handler != SIG_DFL) {
        previous_handler.sa_handler(signal);
    } else {
        ::signal(signal, SIG_DFL);  // the faulting instruction runs again and ends the process as usual
    }
}

// Under lock: the range and the handler, on first use.
bool reserve() {
    if (reserved.load(std::memory_order_relaxed) != nullptr) return true;
    void *range = mmap(nullptr, RESERVED_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) return false;
    struct sigaction action {};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_handler);
    reserved.store(static_cast<char *>(range), std::memory_order_release);
    return true;
}

// A span of `bytes` (whole pages) made accessible plus one guard page, first or last.
char *take(size_t bytes, bool guard_first) {
    char *start;
    {
        std::lock_guard<std::mutex> hold(lock);
        if (!reserve() || RESERVED_BYTES - used < bytes + PAGE) return nullptr;
        start = reserved.load(std::memory_order_relaxed) + used;
        used += bytes + PAGE;
    }
    char *open = guard_first ? start + PAGE : start;
    if (mmap(open, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
        return nullptr;
    return start;
}

// Returns the pages to the system; the addresses stay reserved and inaccessible.
void give_back(const Span &span) {
    mmap(span.start, span.bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
}

Guard guard_from_environment() {
    const char *value = std::getenv("ISTHMUS_EMULATION_GUARD");
    if (value == nullptr || std::strcmp(value, "after") == 0) return Guard::After;
    if (std::strcmp(value, "before") == 0) return Guard::Before;
    std::fprintf(stderr, "host emulation: ISTHMUS_EMULATION_GUARD=%s is not 'after' or 'before'\n", value);
    std::abort();
}

std::atomic<Guard> guard{guard_from_environment()};

size_t whole_pages(size_t bytes) { return (bytes + PAGE - 1) / PAGE * PAGE; }

}  // namespace

void set_guard(Guard side) { guard.store(side); }

char *take_stack(size_t bytes) {
    char *start = take(bytes, true);
    return start == nullptr ? nullptr : start + PAGE;
}

void give_back_stack(char *stack, size_t bytes) { give_back(Span{stack - PAGE, bytes + PAGE}); }

void *device_allocate(size_t bytes) {
    if (bytes == 0 || bytes > RESERVED_BYTES) return nullptr;
    const size_t open = whole_pages(bytes);
    const bool guard_first = guard.load() == Guard::Before;
    char *start = take(open, guard_first);
    if (start == nullptr) return nullptr;
    char *base = guard_first ? start + PAGE : start + open - bytes;
    std::lock_guard<std::mutex> hold(lock);
    allocations[base] = Allocation{Span{start, open + PAGE}, bytes};
    return base;
}

bool device_free(void *base) {
    Span span;
    {
        std::lock_guard<std::mutex> hold(lock);
        auto it = allocations.find(static_cast<char *>(base));
        if (it == allocations.end()) return false;
        span = it->second.span;
        allocations.erase(it);
    }
    give_back(span);
    return true;
}

std::string describe_address(const void *address) {
    if (!in_range(address)) return "outside the emulated device memory";
    const char *a = static_cast<const char *>(address);
    std::lock_guard<std::mutex> hold(lock);
    // The allocation whose span holds the address has the first base above it (guard in front)
    // or the last at or below it (guard behind).
    auto above = allocations.upper_bound(const_cast<char *>(a));
    for (auto it : {above, above == allocations.begin() ? allocations.end() : std::prev(above)}) {
        if (it == allocations.end()) continue;
        const auto &[base, allocation] = *it;
        if (a < allocation.span.start || a >= allocation.span.start + allocation.span.bytes) continue;
        return "at offset " + std::to_string(a - base) + " of an allocation of " + std::to_string(allocation.bytes) +
               " bytes";
    }
    return "in emulated device memory that was freed or never allocated";
}

}  // namespace isthmus_emulation

// The emulated cudaMalloc / cudaFree, for the Java side of the host emulation (HostEmulation).
extern "C" __attribute__((visibility("default"))) void *isthmus_emulation_malloc(int64_t bytes) {
    return bytes <= 0 ? nullptr : isthmus_emulation::device_allocate(static_cast<size_t>(bytes));
}

extern "C" __attribute__((visibility("default"))) int32_t isthmus_emulation_free(void *base) {
    return isthmus_emulation::device_free(base) ? 0 : -1;
}
