// What the host emulation's self-tests (emulation_test.cpp, memory_test.cpp, mma_test.cpp) share:
// a check that prints its verdict and counts failures, the text of the latest launch error, and
// the three schedules.
#pragma once

#include <cstdio>
#include <string>

namespace self_test {

inline int failures = 0;

inline void check(bool ok, const std::string &what) {
    std::printf("%s %s\n", ok ? "ok  " : "FAIL", what.c_str());
    if (!ok) ++failures;
}

inline std::string last_error_text() {
    const cudaError_t err = cudaGetLastError();
    return err == cudaSuccess ? "" : std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

inline bool contains(const std::string &text, const std::string &part) { return text.find(part) != std::string::npos; }

struct NamedSchedule {
    const char *name;
    isthmus_emulation::Order order;
};
constexpr NamedSchedule schedules[] = {{"forward", isthmus_emulation::Order::Forward},
                                       {"reverse", isthmus_emulation::Order::Reverse},
                                       {"shuffle", isthmus_emulation::Order::Shuffle}};

}  // namespace self_test
