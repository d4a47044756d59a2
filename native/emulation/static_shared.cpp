// Static __shared__ memory of the host emulation starts each block as NaN bytes, as dynamic shared
// memory does, so a kernel that reads shared memory before writing it shows it instead of finding
// what the previous block (or launch) left there.
//
// A static __shared__ variable is a function-local thread_local here, which C++ cannot name from
// outside, so they are found in the library's own symbol table (the build does not strip it): each
// thread-local symbol "owner(...)::name" is the static of a function. Those of the launched kernel
// are poisoned at each of its blocks, and so are those of helper functions (whose name does not end
// in "_kernel"; block_sum's), which any kernel may call. The emulation's own thread-locals (wmma,
// isthmus_emulation) are left alone.
#include <cxxabi.h>
#include <dlfcn.h>
#include <elf.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cuda_emulation.h"

namespace isthmus_emulation {

namespace {

struct Variable {
    size_t offset, bytes;  // within the module's thread-local block
};

struct SymbolTable {
    std::map<uintptr_t, std::string> functions;       // run-time address -> demangled name
    std::map<std::string, std::vector<Variable>> statics;  // owner's demangled name -> its statics
    std::vector<Variable> helpers;                     // statics of functions that are not kernels
    size_t here_offset = 0;                            // of isthmus_emulation::here, to find the block
    bool loaded = false;
};

std::string demangle(const char *name) {
    int status = 0;
    char *text = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    std::string result = status == 0 ? text : name;
    std::free(text);
    return result;
}

bool starts_with(const std::string &s, const char *prefix) { return s.rfind(prefix, 0) == 0; }

// The function's own name, without scope, template arguments or parameters: "block_sum".
std::string identifier(const std::string &owner) {
    const size_t end = owner.find_first_of("<(");
    const size_t start = owner.rfind("::", end);
    return owner.substr(start == std::string::npos ? 0 : start + 2, end - (start == std::string::npos ? 0 : start + 2));
}

void add_symbol(SymbolTable &table, const Elf64_Sym &symbol, const char *name, uintptr_t base) {
    if (ELF64_ST_TYPE(symbol.st_info) == STT_FUNC && symbol.st_value != 0) {
        table.functions[base + symbol.st_value] = demangle(name);
        return;
    }
    if (ELF64_ST_TYPE(symbol.st_info) != STT_TLS) return;
    const std::string full = demangle(name);
    if (full == "isthmus_emulation::here") table.here_offset = symbol.st_value;
    const size_t scope = full.rfind(")::");
    if (scope == std::string::npos || starts_with(full, "nvcuda::") || starts_with(full, "isthmus_emulation::") ||
        starts_with(full, "guard variable") || starts_with(full, "TLS "))
        return;
    const std::string owner = full.substr(0, scope + 1);
    const Variable v{symbol.st_value, symbol.st_size};
    const std::string id = identifier(owner);
    if (id.size() >= 7 && id.compare(id.size() - 7, 7, "_kernel") == 0) table.statics[owner].push_back(v);
    else table.helpers.push_back(v);
}

SymbolTable load() {
    SymbolTable table;
    Dl_info self{};
    if (dladdr(reinterpret_cast<const void *>(&load), &self) == 0) return table;
    std::ifstream file(self.dli_fname, std::ios::binary);
    const std::string image((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (image.size() < sizeof(Elf64_Ehdr)) return table;
    const auto *header = reinterpret_cast<const Elf64_Ehdr *>(image.data());
    const uintptr_t base = header->e_type == ET_EXEC ? 0 : reinterpret_cast<uintptr_t>(self.dli_fbase);
    const auto *sections = reinterpret_cast<const Elf64_Shdr *>(image.data() + header->e_shoff);
    for (int i = 0; i < header->e_shnum; ++i) {
        if (sections[i].sh_type != SHT_SYMTAB) continue;
        const auto *symbols = reinterpret_cast<const Elf64_Sym *>(image.data() + sections[i].sh_offset);
        const char *names = image.data() + sections[sections[i].sh_link].sh_offset;
        for (size_t s = 0; s < sections[i].sh_size / sizeof(Elf64_Sym); ++s)
            add_symbol(table, symbols[s], names + symbols[s].st_name, base);
        table.loaded = true;
    }
    if (!table.loaded)
        std::fprintf(stderr, "host emulation: %s has no symbol table; static __shared__ memory is not poisoned\n",
                     self.dli_fname);
    return table;
}

std::mutex lock;
std::map<const void *, std::vector<Variable>> by_kernel;  // what to poison at each block, by kernel

}  // namespace

void poison_static_shared(const void *kernel) {
    static const SymbolTable table = load();
    if (!table.loaded) return;
    const std::vector<Variable> *variables;
    {
        std::lock_guard<std::mutex> hold(lock);
        auto it = by_kernel.find(kernel);
        if (it == by_kernel.end()) {
            std::vector<Variable> list = table.helpers;
            auto function = table.functions.find(reinterpret_cast<uintptr_t>(kernel));
            if (function != table.functions.end()) {
                auto own = table.statics.find(function->second);
                if (own != table.statics.end()) list.insert(list.end(), own->second.begin(), own->second.end());
            }
            it = by_kernel.emplace(kernel, std::move(list)).first;
        }
        variables = &it->second;  // map nodes stay where they are
    }
    char *block = reinterpret_cast<char *>(&here) - table.here_offset;  // this thread's thread-local block
    for (const Variable &v : *variables) std::memset(block + v.offset, 0xff, v.bytes);
}

}  // namespace isthmus_emulation
