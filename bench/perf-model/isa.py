"""Reading compiled kernels: SASS (cuobjdump -sass / nvdisasm text) or PTX, split into functions,
instructions classified by what they occupy on the SM, and loops found as backward branches.

Instruction classes (the columns of the estimates):
  global   loads/stores/atomics to global (or generic) memory, with their width in bytes
  shared   shared-memory loads/stores/atomics (wmma fragment loads and stores included)
  async    cp.async / TMA / bulk copies
  tensor   mma / wmma.mma / HMMA / HGMMA
  fp32     FFMA, FADD, FMUL, FMNMX, packed f16/bf16 math
  special  MUFU: ex2, lg2, rcp, rsqrt, sqrt, sin, cos, tanh approximations
  int      integer and address arithmetic, moves, selects (IMAD, IADD3, LEA, SHF, LOP3, PRMT, SEL...)
  convert  F2F, F2I, I2F, F2FP (float <-> bf16/f16 and int conversions)
  control  branches, comparisons that set predicates (ISETP, FSETP), exits
  sync     barriers and warp-synchronous operations (BAR, SHFL, VOTE, MATCH, membar)
  local    local memory (register spills, stack arrays)

PTX is not what the SM runs. When no SASS disassembler is available the counts come from PTX, each
PTX instruction weighted by the SASS instructions it is known to expand to (PTX_EXPANSION below);
every output then says "PTX counts (no SASS disassembler here)".
"""
import re

CLASSES = ["global", "shared", "async", "tensor", "fp32", "special", "int", "convert", "control", "sync", "local"]


class Instr:
    __slots__ = ("op", "text", "cls", "weight", "width", "label_target", "addr", "loc")

    def __init__(self, op, text, cls, weight=1.0, width=0, label_target=None, addr=None, loc=None):
        self.op, self.text, self.cls, self.weight, self.width = op, text, cls, weight, width
        self.label_target, self.addr = label_target, addr
        # PTX with -lineinfo: (file, line, inlined function's mangled name or "", call-site file,
        # call-site line) of the last .loc before it; None in SASS
        self.loc = loc


class Function:
    """One kernel: its instructions in order, label -> index, loops as (start, end) index ranges."""

    def __init__(self, name, instrs, labels, source, files=None):
        self.name, self.instrs, self.labels, self.source = name, instrs, labels, source
        self.loops = find_loops(instrs, labels)
        self.files = files or {}  # PTX .file index -> path (the source text path weights match)


def find_loops(instrs, labels):
    """A loop is a branch back to a label at or before it: its body is [label, branch]. Several
    branches back to one label (continue statements) make one loop spanning to the last of them."""
    by_start = {}
    for i, ins in enumerate(instrs):
        t = ins.label_target
        if t is not None and t in labels and labels[t] <= i:
            s = labels[t]
            by_start[s] = max(by_start.get(s, i), i)
    return sorted(by_start.items())


# ---- SASS --------------------------------------------------------------------------------------

_SASS_FUNC = re.compile(r"^\s*Function\s*:\s*(\S+)")
# cuobjdump:  /*0a80*/   @!P0 LDG.E.128 R4, desc[UR4][R2.64] ;   nvdisasm: same with /*0a80*/ too
_SASS_LINE = re.compile(r"^\s*/\*([0-9a-fA-F]+)\*/\s+(.*?)\s*;")
_SASS_LABEL = re.compile(r"^\s*(\.L_x_\d+|\.L_\w+):")

_SASS_PREFIX = [
    # order matters: the first matching prefix wins
    ("LDGSTS", "async"), ("LDGDEPBAR", "async"), ("UTMA", "async"), ("UBLKCP", "async"), ("UTMACCTL", "async"),
    ("SYNCS", "async"), ("LDSM", "shared"), ("LDS", "shared"), ("STS", "shared"), ("ATOMS", "shared"),
    ("LDG", "global"), ("STG", "global"), ("ATOMG", "global"), ("RED", "global"), ("ATOM", "global"),
    ("LDL", "local"), ("STL", "local"), ("LD", "global"), ("ST", "global"),
    ("HGMMA", "tensor"), ("HMMA", "tensor"), ("IMMA", "tensor"), ("DMMA", "tensor"), ("WARPGROUP", "sync"),
    ("MUFU", "special"),
    ("FSETP", "control"), ("ISETP", "control"), ("DSETP", "control"), ("HSETP2", "control"), ("PLOP3", "control"),
    ("UISETP", "control"), ("UPLOP3", "control"),
    ("F2FP", "convert"), ("F2F", "convert"), ("F2I", "convert"), ("I2F", "convert"), ("I2FP", "convert"),
    ("FRND", "convert"),
    ("FFMA", "fp32"), ("FADD", "fp32"), ("FMUL", "fp32"), ("FMNMX", "fp32"), ("FSEL", "fp32"), ("FSET", "fp32"),
    ("FCHK", "fp32"), ("FSWZADD", "fp32"), ("HFMA2", "fp32"), ("HADD2", "fp32"), ("HMUL2", "fp32"),
    ("HMNMX2", "fp32"), ("DFMA", "fp32"), ("DADD", "fp32"), ("DMUL", "fp32"),
    ("BAR", "sync"), ("SHFL", "sync"), ("VOTE", "sync"), ("MATCH", "sync"), ("WARPSYNC", "sync"),
    ("MEMBAR", "sync"), ("DEPBAR", "sync"), ("ERRBAR", "sync"), ("CCTL", "sync"), ("REDUX", "sync"),
    ("FENCE", "sync"),
    ("BRA", "control"), ("BRX", "control"), ("JMP", "control"), ("CALL", "control"), ("RET", "control"),
    ("EXIT", "control"), ("BSSY", "control"), ("BSYNC", "control"), ("BREAK", "control"), ("KILL", "control"),
    ("BPT", "control"), ("YIELD", "control"), ("P2R", "control"), ("R2P", "control"),
]


def sass_width(op):
    """Bytes per thread of a memory instruction, from its type suffix (.128, .64, .U16...); 4 if none."""
    for suffix, width in ((".128", 16), (".64", 8), (".U16", 2), (".S16", 2), (".U8", 1), (".S8", 1)):
        if suffix in op:
            return width
    return 4


def classify_sass(op):
    base = op.split(".")[0]
    for prefix, cls in _SASS_PREFIX:
        if base.startswith(prefix):
            return cls
    return "int"  # IMAD, IADD3, LEA, SHF, LOP3, MOV, S2R, SEL, PRMT, POPC, uniform-datapath U* ops...


def parse_sass(text, source="SASS"):
    """Functions of a `cuobjdump -sass` or `nvdisasm` listing. Branch targets are addresses
    (cuobjdump: `BRA 0x1f0`) or labels (nvdisasm: BRA `(.L_x_3)); both become label names."""
    funcs, name, instrs, labels, addr_index = [], None, [], {}, {}

    def finish():
        if name is not None:
            # cuobjdump branches name addresses: make every branched-to address a label
            for ins in instrs:
                t = ins.label_target
                if t is not None and t.startswith("0x"):
                    a = int(t, 16)
                    if a in addr_index:
                        labels.setdefault(t, addr_index[a])
            funcs.append(Function(name, list(instrs), dict(labels), source))

    for line in text.splitlines():
        m = _SASS_FUNC.match(line)
        if m:
            finish()
            name, instrs, labels, addr_index = m.group(1), [], {}, {}
            continue
        if name is None:
            continue
        m = _SASS_LABEL.match(line)
        if m:
            labels[m.group(1)] = len(instrs)
            continue
        m = _SASS_LINE.match(line)
        if not m:
            continue
        addr, body = int(m.group(1), 16), m.group(2).strip()
        body = re.sub(r"^@!?U?P[T0-9]+\s+", "", body)  # the guard predicate
        if not body:
            continue
        op = body.split()[0]
        if op == "NOP":
            continue  # alignment padding, never issued in the loop
        cls = classify_sass(op)
        target = None
        if op.startswith("BRA") or op.startswith("BRX") or op.startswith("JMP"):
            t = re.search(r"`\((\.L_\w+)\)|(0x[0-9a-fA-F]+)", body)
            if t:
                target = t.group(1) or hex(int(t.group(2), 16))
        width = sass_width(op) if cls in ("global", "shared", "local", "async") else 0
        addr_index[addr] = len(instrs)
        instrs.append(Instr(op, body, cls, 1.0, width, target, addr))
    finish()
    return funcs


# ---- PTX ---------------------------------------------------------------------------------------

# SASS instructions per PTX instruction where it is not one: conservative (rounded up) figures from
# reading sm_90 SASS of such code. A 64-bit integer division or remainder first tests whether both
# operands fit in 32 bits and then takes a 32-bit reciprocal-and-correct sequence (~30 with the
# test), as at every benchmark shape here; the full 64-bit subroutine (~70) is not counted.
# 32-bit division or remainder is about 20. 64-bit add/compare are two 32-bit halves (IADD3 + IADD3.X,
# ISETP + ISETP.EX); a 64-bit multiply is three IMADs. ex2.approx.f32 without .ftz is MUFU.EX2
# plus a denormal guard (FSETP + two FMULs); with .ftz it is MUFU.EX2 alone. div.rn.f32 /
# rcp.rn.f32 / sqrt.rn.f32 are a MUFU estimate refined by FFMAs with a slow-path check (~10).
# Movs and parameter loads mostly vanish into register allocation and constant-bank operands;
# they are counted at half and at zero.
def ptx_expansion(op):
    """(class, SASS-instructions[, [(class, SASS-instructions) of the rest of its expansion]]) for
    one PTX opcode such as 'ld.global.nc.v4.u32'."""
    parts = op.split(".")
    head = parts[0]
    is64 = any(p in ("s64", "u64", "b64") for p in parts[1:])
    if head in ("div", "rem") and not any(p.startswith("f") for p in parts[1:]):
        return "int", 30.0 if is64 else 20.0
    if head in ("div", "rcp", "sqrt") and ("rn" in parts or "full" in parts):
        return "fp32", 8.0, [("special", 1.0), ("control", 1.0)]
    if head == "div" and "approx" in parts:
        return "fp32", 1.0, [("special", 1.0)]  # MUFU.RCP + FMUL
    if head in ("ex2", "lg2", "rcp", "rsqrt", "sqrt", "sin", "cos", "tanh") and "approx" in parts:
        if head in ("ex2", "lg2") and "ftz" not in parts:
            return "special", 1.0, [("fp32", 2.0), ("control", 1.0)]
        return "special", 1.0
    if head in ("ld", "st", "atom", "red", "ldu", "prefetch"):
        space = parts[1] if len(parts) > 1 else ""
        if space == "param":
            return "int", 0.0
        if space == "shared":
            return "shared", 1.0
        if space == "local":
            return "local", 1.0
        return "global", 1.0  # global, generic (assumed global), const
    if head == "ldmatrix":
        return "shared", 1.0  # one LDSM per instruction, whatever .x1/.x2/.x4
    if head == "cp" and parts[1:2] == ["async"] and parts[2:3] in (["wait_group"], ["wait_all"]):
        return "sync", 1.0  # a wait for this thread's copies: DEPBAR in SASS
    if head in ("cp", "cvta") and len(parts) > 1 and parts[1].startswith("async"):
        return "async", 1.0  # the copies, and commit_group (LDGDEPBAR)
    if head in ("mma", "wgmma"):
        return "tensor", 1.0
    if head == "wmma":
        if parts[1] == "mma":
            return "tensor", 2.0  # m16n16k16 is two HMMA.16816
        return ("shared" if "shared" in parts else "global"), 2.0  # fragment load/store: LDSM/LDS pairs
    if head in ("bar", "barrier", "shfl", "vote", "match", "membar", "fence", "activemask", "redux", "elect"):
        return "sync", 1.0
    if head in ("bra", "ret", "exit", "call", "brx", "trap"):
        return "control", 1.0
    if head == "setp":
        return "control", 2.0 if is64 else 1.0
    if head == "cvt":
        types = [p for p in parts[1:] if re.match(r"^[subf](8|16|32|64)$|^bf16$", p)]
        if types[:1] == ["f32"] and types[1:2] in (["bf16"], ["f16"]):
            return "int", 1.0  # widening bf16/f16 -> f32 (cvt.f32.bf16) is a shift or PRMT in SASS
        return "convert", 1.0
    if head == "mov":
        return "int", 0.5
    if head in ("fma", "add", "sub", "mul", "min", "max", "neg", "abs", "copysign", "testp") and any(
            p in ("f32", "f16", "bf16", "f16x2", "bf16x2", "f64") for p in parts[1:]):
        return "fp32", 1.0
    if head in ("mul", "mad") and is64 and "wide" not in parts:
        return "int", 3.0
    if head in ("add", "sub", "shl", "shr", "and", "or", "xor", "not", "neg", "min", "max", "selp") and is64:
        return "int", 2.0
    return "int", 1.0  # add/mul/mad/shl/and/selp/prmt/bfe/popc... on 32 bits


def ptx_width(op):
    parts = op.split(".")
    if parts[0] == "ldmatrix":  # one 32-bit register per 8x8 matrix per lane
        return 4 * next((int(p[1:]) for p in parts if p in ("x1", "x2", "x4")), 1)
    vec = 1
    for p in parts:
        if p in ("v2", "v4", "v8"):
            vec = int(p[1:])
    size = 4
    for p in reversed(parts):
        m = re.match(r"^[subf](8|16|32|64|128)$", p)
        if m:
            size = int(m.group(1)) // 8
            break
    return vec * size


_PTX_ENTRY = re.compile(r"^\s*\.(?:visible\s+|weak\s+)?\.entry\s+(\S+?)\s*\(")
_PTX_LABEL = re.compile(r"^\s*(\$?[\w$]+):\s*$")
_PTX_INSTR = re.compile(r"^\s*(?:@!?%\w+\s+)?([a-z][\w.]*)\s*(.*?);")


def parse_ptx(text):
    """The .entry functions of a PTX file (device functions are inlined at -O3; calls, if any, are
    counted as one control instruction)."""
    funcs, name, instrs, labels, depth, loc = [], None, [], {}, 0, None
    files = {int(m.group(1)): m.group(2) for m in _PTX_FILE.finditer(text)}
    names = ptx_info_strings(text)
    for line in text.splitlines():
        if name is None:
            m = _PTX_ENTRY.match(line)
            if m:
                name, instrs, labels, depth, loc = m.group(1), [], {}, 0, None
            continue
        stripped = line.split("//")[0]
        m = _PTX_LOC.match(stripped)
        if m:
            loc = (int(m.group(1)), int(m.group(2)), names.get(m.group(3) or "", ""),
                   int(m.group(4)) if m.group(4) else None, int(m.group(5)) if m.group(5) else None)
            continue
        depth += stripped.count("{") - stripped.count("}")
        if depth <= 0 and "}" in stripped:
            fold_address_offsets(instrs)
            funcs.append(Function(name, instrs, labels, "PTX", files))
            name = None
            continue
        m = _PTX_LABEL.match(stripped)
        if m:
            labels[m.group(1)] = len(instrs)
            continue
        # inline-asm blocks put statements inside braces, several to a line
        for piece in stripped.replace("{", ";").replace("}", ";").split(";"):
            first = len(instrs)
            _ptx_statement(piece.strip() + ";", instrs)
            for ins in instrs[first:]:
                ins.loc = loc
    return funcs


_PTX_ADD_CONSTANT = re.compile(r"^add\.[su]64\s+(%rd\d+)\s*,\s*%rd\d+\s*,\s*(-?\d+)\s*;")
_PTX_RD = re.compile(r"%rd\d+\b")
_PTX_MEMORY_OP = re.compile(r"^(ld|st|cp\.async|prefetch|atom|red)\.")


def fold_address_offsets(instrs):
    """Weight 0 for `add.s64 %rdA, %rdB, constant` whose result only ever serves as a memory
    operation's address ([%rdA] or [%rdA+offset]): ptxas folds the constant into the load's or
    store's immediate offset, so the add is no SASS instruction. NVVM leaves such adds in the PTX
    where the load is inline assembly (__ldcs, cp.async), which it cannot fold into."""
    candidates = {}
    for i, ins in enumerate(instrs):
        m = _PTX_ADD_CONSTANT.match(ins.text)
        if m and abs(int(m.group(2))) < (1 << 23):
            candidates.setdefault(m.group(1), []).append(i)
    if not candidates:
        return
    defining = {i for idx in candidates.values() for i in idx}
    only_addresses = dict.fromkeys(candidates, True)
    for i, ins in enumerate(instrs):
        operands = ins.text.split(None, 1)[1] if i in defining else ins.text
        if i in defining:  # the add's own destination is no use; its source may be
            operands = operands.split(",", 1)[1]
        for reg in set(_PTX_RD.findall(operands)) & candidates.keys():
            uses = len(re.findall(re.escape(reg) + r"\b", operands))
            addresses = len(re.findall(r"\[\s*" + re.escape(reg) + r"\b(?:\s*\+\s*-?\d+)?\s*\]", operands))
            if not _PTX_MEMORY_OP.match(ins.op) or addresses != uses:
                only_addresses[reg] = False
    for reg, idx in candidates.items():
        if only_addresses[reg]:
            for i in idx:
                instrs[i].weight = 0.0


_PTX_FILE = re.compile(r'^\s*\.file\s+(\d+)\s+"([^"]+)"', re.M)
# .loc 1 70 13[, function_name $L__info_string69, inlined_at 1 147 5]
_PTX_LOC = re.compile(r"^\s*\.loc\s+(\d+)\s+(\d+)\s+\d+(?:,\s*function_name\s+([\w$]+),\s*inlined_at\s+(\d+)\s+(\d+)\s+\d+)?")


def ptx_info_strings(text):
    """$L__info_stringN -> the string its .b8 bytes spell (the mangled names of inlined functions)."""
    out = {}
    for m in re.finditer(r"^(\$L__info_string\d+):\s*\n((?:\s*\.b8[^\n]*\n)+)", text, re.M):
        data = [int(b) for b in re.findall(r"\d+", m.group(2).replace(".b8", ""))]
        out[m.group(1)] = bytes(b for b in data if b).decode("latin-1")
    return out


def _ptx_statement(s, instrs):
        if s == ";" or s.startswith("."):
            return
        m = _PTX_INSTR.match(s)
        if not m:
            return
        op, args = m.group(1), m.group(2)
        cls, weight, *extra = ptx_expansion(op)
        target = None
        if op.startswith("bra"):
            target = args.strip().split()[-1] if args.strip() else None
        width = ptx_width(op) if cls in ("global", "shared", "local") and not op.startswith("wmma") else 0
        if op.startswith("cp.async.c"):  # cp.async.{ca,cg}.shared.global [dst], [src], cp-size[, src-size]
            size = re.search(r"\]\s*,\s*(\d+)", args)
            width = int(size.group(1)) if size else 0
        instrs.append(Instr(op, s, cls, weight, width, target))
        for extra_cls, extra_weight in (extra[0] if extra else []):
            instrs.append(Instr("(" + op + ")", s, extra_cls, extra_weight))
