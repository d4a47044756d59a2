#!/usr/bin/env python3
"""Static performance model of the kernels: a static estimate, not a measurement.

  perf_model.py [--out DIR] [--nvcc NVCC] [--loops]

Compiles native/*.cu for sm_90 (PTX, then ptxas -v for registers, shared memory and spills),
disassembles the cubins to SASS when cuobjdump or nvdisasm can be found (else counts PTX, labelled
so), counts each kernel's hot-loop instructions by class, and combines them with machines.json into
per-benchmark estimates for an H100 and an H200, written to DIR/estimates.csv and estimates.md.
"""
import argparse
import concurrent.futures
import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import isa  # noqa: E402
import kernels  # noqa: E402

ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "build", "perf-model")
LABEL = "static estimate, not a measurement"
PTX_LABEL = "PTX counts (no SASS disassembler here)"


# ---- building --------------------------------------------------------------------------------

def nvcc_flags():
    """The Makefile's device flags (NVCC_FLAGS minus the host-only ones), for sm_90."""
    return ["-O3", "-std=c++17", "-lineinfo", "--expt-relaxed-constexpr", "-Inative", "-Icuda",
            "-DISTHMUS_VERSION_STRING=\"perf-model\"", "-DISTHMUS_ARCHITECTURES=\"sm_90\"", "-arch=sm_90"]


def find_disassembler(nvcc):
    """cuobjdump or nvdisasm on PATH, beside nvcc, or installed into build/perf-model/tools by pip
    (nvidia-cuda-cuobjdump / nvidia-cuda-nvdisasm); None when there is none."""
    dirs = [os.path.dirname(os.path.realpath(nvcc))] if nvcc else []
    tools = os.path.join(BUILD, "tools")
    for sub, _, files in os.walk(tools) if os.path.isdir(tools) else []:
        if "cuobjdump" in files or "nvdisasm" in files:
            dirs.append(sub)
    for tool in ("cuobjdump", "nvdisasm"):
        found = shutil.which(tool) or next((os.path.join(d, tool) for d in dirs if os.path.isfile(os.path.join(d, tool))), None)
        if found:
            return tool, found
    if os.environ.get("PERF_MODEL_PIP") == "1":  # opt-in: the registry may not carry them
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", tools, "nvidia-cuda-cuobjdump"],
                       capture_output=True)
        for sub, _, files in os.walk(tools):
            if "cuobjdump" in files:
                return "cuobjdump", os.path.join(sub, "cuobjdump")
    return None, None


def newer(target, sources):
    return os.path.exists(target) and all(os.path.getmtime(target) >= os.path.getmtime(s) for s in sources)


def build_one(name, nvcc, disasm):
    """PTX, cubin + ptxas report, and SASS when a disassembler exists, for native/<name>.cu; cached
    by modification time against native/ and cuda/ headers."""
    src = os.path.join(ROOT, "native", name + ".cu")
    deps = [src] + [os.path.join(ROOT, d, f) for d in ("cuda", "native") for f in os.listdir(os.path.join(ROOT, d))
                    if f.endswith((".cuh", ".h"))]
    ptx, cubin, report = (os.path.join(BUILD, name + ext) for ext in (".ptx", ".cubin", ".ptxas.txt"))
    if not newer(ptx, deps):
        r = subprocess.run([nvcc] + nvcc_flags() + ["-ptx", "-o", ptx, src], cwd=ROOT, capture_output=True, text=True)
        if r.returncode != 0:
            return name, None, f"nvcc -ptx failed: {r.stderr[-400:]}"
    if not newer(report, [ptx]):
        ptxas = os.path.join(os.path.dirname(os.path.realpath(nvcc)), "ptxas")
        r = subprocess.run([ptxas if os.path.exists(ptxas) else "ptxas", "-v", "-arch=sm_90", ptx, "-o", cubin],
                           capture_output=True, text=True)
        with open(report, "w") as f:
            f.write(r.stdout + r.stderr)
    sass = None
    if disasm[0]:
        sass = os.path.join(BUILD, name + ".sass")
        if not newer(sass, [cubin]):
            cmd = [disasm[1], "-sass", cubin] if disasm[0] == "cuobjdump" else [disasm[1], "-c", cubin]
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                sass = None
            else:
                with open(sass, "w") as f:
                    f.write(r.stdout)
    return name, dict(ptx=ptx, report=report, sass=sass), None


def parse_ptxas(text):
    """ptxas -v: mangled name -> registers, static shared bytes, spill bytes."""
    info, current = {}, None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '([^']+)'", line) or re.search(r"Function properties for (\S+)", line)
        if m:
            current = m.group(1)
            info.setdefault(current, dict(registers=0, smem=0, spills=0))
            continue
        if current is None:
            continue
        m = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", line)
        if m:
            info[current]["spills"] = int(m.group(1)) + int(m.group(2))
        m = re.search(r"Used (\d+) registers", line)
        if m:
            info[current]["registers"] = int(m.group(1))
            s = re.search(r"(\d+) bytes smem", line)
            info[current]["smem"] = int(s.group(1)) if s else 0
    return info


# ---- counting --------------------------------------------------------------------------------

def pick_hot(func, hot):
    """Index range of the hot loop: the loops containing an opcode matching hot['contains'],
    the innermost/outermost/last of them, the one with most matching opcodes ("most", counting
    those of loops nested in it) or with most of its own ("fullest", not counting them: the loop
    of a kernel's main work inside a loop over its pieces); None when the kernel has no such loop."""
    if hot is None:
        return None
    pattern = re.compile(hot["contains"])
    cands = [(s, e) for s, e in func.loops if any(pattern.search(i.op) for i in func.instrs[s:e + 1])]
    if not cands:
        return None
    if hot.get("pick") == "outermost":
        return max(cands, key=lambda r: r[1] - r[0])
    if hot.get("pick") == "most":
        return max(cands, key=lambda r: sum(1 for i in func.instrs[r[0]:r[1] + 1] if pattern.search(i.op)))
    if hot.get("pick") == "fullest":
        def own(r):
            nested = [o for o in func.loops if o != r and r[0] <= o[0] and o[1] <= r[1]]
            return sum(1 for n in range(r[0], r[1] + 1)
                       if pattern.search(func.instrs[n].op) and not any(o[0] <= n <= o[1] for o in nested))
        return max(cands, key=own)
    if hot.get("pick") == "last":
        inner = [r for r in cands if not any(o != r and r[0] <= o[0] and o[1] <= r[1] for o in cands)]
        return max(inner)
    return min(cands, key=lambda r: r[1] - r[0])


# ---- path weights ----------------------------------------------------------------------------

def basic_blocks(func):
    """(start, end) index ranges of the basic blocks: a block starts at a label or after a branch,
    return or exit, and ends before the next such point."""
    starts = {0} | {i for i in func.labels.values() if i < len(func.instrs)}
    for i, ins in enumerate(func.instrs):
        if re.match(r"^(bra|ret|exit|BRA|RET|EXIT)", ins.op) and i + 1 < len(func.instrs):
            starts.add(i + 1)
    starts = sorted(starts)
    return [(s, (starts[n + 1] if n + 1 < len(starts) else len(func.instrs)) - 1) for n, s in enumerate(starts)]


def forward_preds(func, blocks):
    """Block number -> the blocks that reach it forward (fall-through, or a branch to a later
    label); back edges (loop branches) are left out, so a loop's header keeps its entry only."""
    at = {s: n for n, (s, _) in enumerate(blocks)}
    preds = {n: set() for n in range(len(blocks))}
    for n, (s, e) in enumerate(blocks):
        last = func.instrs[e]
        uncond = re.match(r"^(bra|ret|exit|BRA|RET|EXIT)", last.op) and not last.text.lstrip().startswith("@")
        if not uncond and n + 1 < len(blocks):
            preds[n + 1].add(n)
        t = last.label_target
        if t in func.labels and func.labels[t] > e and func.labels[t] in at:
            preds[at[func.labels[t]]].add(n)
    return preds


_SOURCE_CACHE = {}


def source_line(func, file_index, line):
    """The text of a source line named by a .loc (read from the .file path; '' when unknown)."""
    path = func.files.get(file_index)
    if path is None or line is None:
        return ""
    if path not in _SOURCE_CACHE:
        try:
            with open(path) as f:
                _SOURCE_CACHE[path] = f.read().splitlines()
        except OSError:
            _SOURCE_CACHE[path] = []
    lines = _SOURCE_CACHE[path]
    return lines[line - 1] if 0 < line <= len(lines) else ""


def rule_matches(func, rule, ins):
    """A rule's fields, all of which must match one instruction: `instr` (regex on the instruction
    text), `function` (regex on the mangled name of the function it was inlined from), `source`
    (regex on the source line it comes from or on the line that call was inlined at)."""
    if "instr" in rule and not re.search(rule["instr"], ins.text):
        return False
    if "function" in rule or "source" in rule:
        if ins.loc is None:
            return False
        f, line, fname, cf, cline = ins.loc
        if "function" in rule and not re.search(rule["function"], fname):
            return False
        if "source" in rule and not any(re.search(rule["source"], source_line(func, a, b))
                                        for a, b in ((f, line), (cf, cline)) if b):
            return False
    return True


def path_weights(func, rules):
    """Per instruction, the fraction of the passes through its code that the benchmark row
    executes: 1 everywhere (every branch counted) unless a rule says otherwise. A rule weights
    every basic block holding an instruction it matches, then every block reached forward only
    from blocks it weights (the rest of that path, up to where the paths join); blocks matched by
    several rules take the product. Returns (weights, blocks matched per rule)."""
    weights = [1.0] * len(func.instrs)
    if not rules:
        return weights, []
    blocks = basic_blocks(func)
    preds = forward_preds(func, blocks)
    hits = []
    for rule in rules:
        region = {n for n, (s, e) in enumerate(blocks) if any(rule_matches(func, rule, i) for i in func.instrs[s:e + 1])}
        seeds = len(region)
        grew = bool(region)
        while grew:
            grew = False
            for n in range(len(blocks)):
                if n not in region and preds[n] and preds[n] <= region:
                    region.add(n)
                    grew = True
        hits.append((seeds, len(region)))
        for n in region:
            s, e = blocks[n]
            for i in range(s, e + 1):
                weights[i] *= rule["weight"]
    return weights, hits


def trips_of(value, index):
    if isinstance(value, (list, tuple)):
        return value[index] if index < len(value) else 1
    return value


def count(func, launch, weights=None):
    """Executed warp-instructions per warp by class, the hot loop's static counts per pass, the
    units of work one pass does, and the global bytes one warp loads in one pass. `weights`: per
    instruction, the fraction of passes on the path that runs (path_weights); None counts every
    branch."""
    weights = weights or [1.0] * len(func.instrs)
    hot = pick_hot(func, launch.get("hot"))
    per_pass = {c: 0.0 for c in isa.CLASSES}
    units_per_pass = 1.0
    if hot:
        body = func.instrs[hot[0]:hot[1] + 1]
        for i, w in zip(body, weights[hot[0]:hot[1] + 1]):
            per_pass[i.cls] += i.weight * w
        if launch.get("marker"):
            pattern, per_unit = launch["marker"]
            units_per_pass = max(1.0, sum(1 for i in body if re.search(pattern, i.op)) / per_unit)
        hot_trips = launch["hot_units"] / units_per_pass
    inner_loops = [l for l in func.loops if hot and hot[0] <= l[0] and l[1] <= hot[1] and l != hot]
    outer_loops = [l for l in func.loops if hot and l[0] <= hot[0] and hot[1] <= l[1] and l != hot]
    other_loops = [l for l in func.loops if l not in inner_loops and l not in outer_loops and l != hot]
    mult = {}
    for n, l in enumerate(inner_loops):
        mult[l] = trips_of(launch.get("inner", 1), n)
    for n, l in enumerate(outer_loops):
        mult[l] = trips_of(launch.get("outer", 1), n)
    for n, l in enumerate(other_loops):
        mult[l] = trips_of(launch.get("other", 1), n)
    if hot:
        mult[hot] = hot_trips
    total = {c: 0.0 for c in isa.CLASSES}
    inflight = 0.0
    for idx, ins in enumerate(func.instrs):
        m = weights[idx]
        for l, t in mult.items():
            if l[0] <= idx <= l[1]:
                m *= t
        total[ins.cls] += ins.weight * m
        in_hot = hot and hot[0] <= idx <= hot[1]
        loads = (ins.cls == "global" and re.match(r"^(ld|LDG|LD)", ins.op)) or (ins.cls == "async" and re.match(r"^(cp\.async\.c|LDGSTS)", ins.op))
        if loads and ins.width and (in_hot or not hot):
            inflight += 32 * ins.width * weights[idx]
    return dict(total=total, per_pass=per_pass, units_per_pass=units_per_pass, hot=hot, inflight=inflight,
                loops=len(func.loops))


# ---- the model -------------------------------------------------------------------------------

def occupancy(m, threads, regs, smem):
    warps = cdiv(threads, 32)
    per_warp_regs = cdiv(max(regs, 1) * 32, m["register_alloc_unit_per_warp"]) * m["register_alloc_unit_per_warp"]
    by_regs = m["registers_per_sm"] // (per_warp_regs * warps)
    by_warps = m["max_warps_per_sm"] // warps
    by_smem = m["shared_per_sm_bytes"] // (smem + m["shared_reserved_per_block_bytes"])
    blocks = max(0, min(by_regs, by_warps, by_smem, m["max_blocks_per_sm"]))
    return blocks, blocks * warps


def cdiv(a, b):
    return -(-a // b)


def estimate(m, launch, c, res):
    """Times in microseconds for one launch on machine m."""
    clock = m["clock_ghz"] * 1e3  # clocks per microsecond
    sms = m["sms"]
    warps_per_block = cdiv(launch["threads"], 32)
    # ptxas reports static shared memory only; the launch's dynamic shared memory comes on top
    smem = res["smem"] + launch.get("dynamic_shared", 0)
    blocks_per_sm, resident = occupancy(m, launch["threads"], res["registers"], smem)
    blocks = max(1, launch["blocks"])
    busiest = cdiv(blocks, sms)  # blocks on the busiest SM
    share = busiest / (blocks / sms)  # its load against the average
    warps_on_sm = min(resident, busiest * warps_per_block) if blocks_per_sm else 0
    active_sms = min(sms, blocks)
    total = c["total"]
    instr_per_warp = sum(total.values())
    # issue: the busiest SM's warp-instructions over its 4 schedulers, derated when too few warps
    # are resident to hide the dependent-issue latency (a single serial warp is one scheduler)
    serial = launch.get("serial_warps")
    sched = m["schedulers_per_sm"]
    if serial:
        per_sched_warps = 1
        issue_instr = instr_per_warp * serial
        eff_scheds = min(serial, sched)
    else:
        per_sched_warps = max(warps_on_sm / sched, 1e-9)
        issue_instr = instr_per_warp * warps_per_block * busiest
        eff_scheds = sched
    efficiency = min(1.0, per_sched_warps / m["warps_to_hide_issue"])
    t_issue = issue_instr / (eff_scheds * m["issue_per_scheduler_per_clock"] * clock * efficiency)
    t_mufu = total["special"] * 32 * warps_per_block * busiest / (m["mufu_per_sm_per_clock"] * clock)
    t_fp32 = total["fp32"] * 32 * warps_per_block * busiest / (m["fp32_per_sm_per_clock"] * clock)
    # tensor: the useful FLOPs at the mma.sync rate, scaled by the busiest SM's share
    tensor_rate = m["tensor_tflops"] * 1e6 * m["mma_sync_fraction"]
    t_tensor = launch["flops"] / tensor_rate * share if launch["flop_kind"] == "tensor" and total["tensor"] else 0.0
    # memory: bytes at the copy bandwidth (busiest SM's share), L2 re-reads at the L2 bandwidth,
    # and Little's law on what the resident warps keep in flight
    # (with fewer blocks than SMs, the active SMs share the whole bandwidth)
    # (overhead_bytes: what the kernel moves beyond the bench's count, split-K partials: time, not floor)
    moved = launch["bytes"] + launch.get("overhead_bytes", 0)
    t_bytes = moved / (m["hbm_gbps"] * 1e3) * busiest * active_sms / blocks
    t_l2 = (moved + launch.get("l2_bytes", 0)) / (m["l2_gbps"] * 1e3) * share
    latency = m["l2_latency_ns" if launch.get("l2_latency") else "hbm_latency_ns"] * 1e-3
    # a kernel that copies ahead (cp.async rings) keeps `inflight_passes` passes' loads in flight
    in_flight = (1 if serial else warps_on_sm) * c["inflight"] * launch.get("inflight_passes", 1)
    per_sm_bytes = moved * busiest / blocks
    t_latency = per_sm_bytes / (in_flight / latency) if in_flight > 0 else 0.0
    t_memory = max(t_bytes, t_l2, t_latency)
    # floors: what the work needs at the machine's attainable ceilings, nothing else
    floor_bytes = launch["bytes"] / (m["hbm_gbps"] * 1e3)
    if launch["flop_kind"] == "tensor":
        floor_flops = launch["flops"] / (m["tensor_tflops"] * 1e6)
    else:
        floor_flops = launch["flops"] / 2 / (m["fp32_per_sm_per_clock"] * sms * clock)
    floor_sfu = launch["exps"] / (m["mufu_per_sm_per_clock"] * sms * clock)
    floors = {"bytes": floor_bytes, "flops": floor_flops, "special": floor_sfu}
    floor_kind = max(floors, key=floors.get)
    limits = {"issue": t_issue, "memory": t_memory, "special": t_mufu, "fp32": t_fp32, "tensor": t_tensor}
    if t_memory == t_latency and t_latency > max(t_bytes, t_l2):
        limits["latency"] = limits.pop("memory")
    elif t_memory == t_l2 and t_l2 > t_bytes:
        limits["l2"] = limits.pop("memory")
    binding = max(limits, key=limits.get)
    busy = limits[binding]
    est = busy + m["launch_us"]
    return dict(blocks_per_sm=blocks_per_sm, occupancy=resident / m["max_warps_per_sm"], instr_per_warp=instr_per_warp,
                t_issue=t_issue, t_memory=t_memory, t_latency=t_latency, t_mufu=t_mufu, t_tensor=t_tensor,
                floor_bytes=floor_bytes, floor_flops=floor_flops, floor_sfu=floor_sfu, floor=floors[floor_kind],
                floor_kind=floor_kind, estimate=est, binding=binding if busy >= m["launch_us"] else "launch",
                fraction=floors[floor_kind] / est)


# ---- driver ----------------------------------------------------------------------------------

def measured_times(commit):
    """(kernel, shape, dtype, device word) -> time_us from bench/results/results.csv rows of this commit."""
    path = os.path.join(ROOT, "bench", "results", "results.csv")
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("commit", "")[:12] != commit[:12]:
                continue
            dev = "H200" if "H200" in row.get("device", "") else "H100" if "H100" in row.get("device", "") else None
            if dev and row.get("time_us"):
                out[(row["kernel"], row["shape"], row["dtype"], dev)] = float(row["time_us"])
    return out


def fmt(x, digits=3):
    if x is None or x == "":
        return ""
    if isinstance(x, str):
        return x
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if abs(x) < 1e5 else f"{x:.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "perf-model"))
    ap.add_argument("--nvcc", default=shutil.which("nvcc") or "/usr/local/cuda/bin/nvcc")
    ap.add_argument("--loops", action="store_true", help="print each mapped kernel's loops and hot-loop counts")
    args = ap.parse_args(argv)
    os.makedirs(BUILD, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(HERE, "machines.json")) as f:
        machines = json.load(f)["machines"]
    launches = kernels.all_launches()
    disasm = find_disassembler(args.nvcc)
    source_label = f"SASS ({disasm[0]})" if disasm[0] else PTX_LABEL
    names = sorted({l["source"] for l in launches})
    built, errors = {}, {}
    if not os.path.exists(args.nvcc):
        errors = {n: "no nvcc" for n in names}
    else:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for name, files, err in pool.map(lambda n: build_one(n, args.nvcc, disasm), names):
                if err:
                    errors[name] = err
                else:
                    built[name] = files
    funcs, resources, sources = {}, {}, {}
    for name, files in built.items():
        with open(files["report"]) as f:
            resources[name] = parse_ptxas(f.read())
        if files["sass"]:
            with open(files["sass"]) as f:
                funcs[name] = isa.parse_sass(f.read(), source_label)
        else:
            with open(files["ptx"]) as f:
                funcs[name] = isa.parse_ptx(f.read())
        sources[name] = source_label if files["sass"] else PTX_LABEL
    commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    measured = measured_times(commit)

    rows = []
    for launch in launches:
        base = dict(kernel=launch["bench"] + (f" [{launch['part']}]" if launch["part"] else ""), shape=launch["shape"],
                    dtype=launch["dtype"], unit=launch["unit"])
        name = launch["source"]
        func = next((f for f in funcs.get(name, []) if re.search(launch["symbol"], f.name)), None)
        if func is None:
            why = errors.get(name) or f"no kernel matching {launch['symbol']} in native/{name}.cu"
            for mname in machines:
                rows.append(dict(base, machine=mname, note="not mapped: " + why, source=sources.get(name, "")))
            continue
        try:
            rules = launch.get("paths") or []
            weights, hits = path_weights(func, rules)
            c = count(func, launch, weights)
            c_all = count(func, launch) if rules else c
            res = resources[name].get(func.name, dict(registers=0, smem=0, spills=0))
            if args.loops and rules:
                print(f"{base['kernel']} {base['shape']} {base['dtype']}: path weights " + "; ".join(
                    f"{r.get('name', '?')} x{r['weight']:.3g}: {h[0]} blocks matched, {h[1]} weighted" for r, h in zip(rules, hits)))
            if args.loops:
                print(f"{base['kernel']} {base['shape']} {base['dtype']}: {func.name}\n  loops {func.loops} hot {c['hot']}"
                      f" units/pass {c['units_per_pass']:.2g}\n  per pass " +
                      ", ".join(f"{k} {v:g}" for k, v in c["per_pass"].items() if v))
            for mname, m in machines.items():
                e = estimate(m, launch, c, res)
                e_all = estimate(m, launch, c_all, res)
                unmatched = [r.get("name", "?") for r, h in zip(rules, hits) if not h[0]]
                paths = ("path weights: " + ", ".join(f"{r.get('name', '?')} x{r['weight']:.2g}" for r in rules)
                         + (f" (matched nothing: {', '.join(unmatched)})" if unmatched else "")) if rules else ""
                # every instruction a warp executes, loop overhead and set-up included, per unit of work
                per_unit = e["instr_per_warp"] / launch["units_per_warp"]
                note = "" if c["hot"] or launch.get("hot") is None else "hot loop not found: whole body counted once"
                # a grid planned for a resident block count (the split-KV planning's occupancy)
                # that the compiled kernel does not have: the plan, and so the row, is off
                planned = launch.get("planned_blocks_per_sm")
                if planned is not None and planned != e["blocks_per_sm"]:
                    note = (note + "; " if note else "") + f"planned for {planned} blocks an SM, the kernel holds {e['blocks_per_sm']}"
                rows.append(dict(base, machine=mname, instr_per_unit=per_unit, instr_per_warp=e["instr_per_warp"],
                                 registers=res["registers"], smem=res["smem"] + launch.get("dynamic_shared", 0), spills=res["spills"],
                                 occupancy=e["occupancy"], floor_bytes_us=e["floor_bytes"], floor_flops_us=e["floor_flops"],
                                 floor_special_us=e["floor_sfu"], issue_us=e["t_issue"], memory_us=e["t_memory"],
                                 special_us=e["t_mufu"], tensor_us=e["t_tensor"], estimate_us=e["estimate"],
                                 binding=e["binding"], floor_kind=e["floor_kind"], fraction_of_floor=e["fraction"],
                                 estimate_all_branches_us=e_all["estimate"], fraction_all_branches=e_all["fraction"],
                                 instr_per_unit_all_branches=e_all["instr_per_warp"] / launch["units_per_warp"],
                                 paths=paths,
                                 measured_us=measured.get((launch["bench"], launch["shape"], launch["dtype"], mname), "")
                                 if not launch["part"] else "", source=sources[name], note=note,
                                 classes=" ".join(f"{k}:{v / launch['units_per_warp']:.3g}" for k, v in c["total"].items() if v)))
        except Exception as ex:  # a kernel the model cannot handle gets a row saying so
            for mname in machines:
                rows.append(dict(base, machine=mname, note=f"not mapped: {type(ex).__name__}: {ex}", source=sources.get(name, "")))
    rows += totals(rows, measured)
    write(args.out, rows, commit, source_label, disasm)
    print(f"perf-model ({LABEL}; {source_label}): {len(rows)} rows -> {os.path.relpath(args.out, ROOT)}/estimates.md")
    return 0


def totals(rows, measured):
    """Rows made of several launches (attention decode with its merge, the MoE layer's kernels):
    a sum row under the bench's own name, beside which a measured time can stand."""
    groups = {}
    for r in rows:
        if " [" in r["kernel"] and "estimate_us" in r:
            key = (r["kernel"].split(" [")[0], r["shape"], r["dtype"], r["machine"])
            groups.setdefault(key, []).append(r)
    out = []
    for (kernel, shape, dtype, machine), parts in groups.items():
        est = sum(p["estimate_us"] for p in parts)
        est_all = sum(p["estimate_all_branches_us"] for p in parts)
        floor = sum(max(p["floor_bytes_us"], p["floor_flops_us"], p["floor_special_us"]) for p in parts)
        main = max(parts, key=lambda p: p["estimate_us"])
        names = "+".join(p["kernel"].split(" [")[1][:-1] for p in parts)
        out.append(dict(kernel=kernel, shape=shape, dtype=dtype, machine=machine, unit="sum of " + names,
                        estimate_us=est, floor_bytes_us=sum(p["floor_bytes_us"] for p in parts),
                        floor_flops_us=sum(p["floor_flops_us"] for p in parts),
                        floor_special_us=sum(p["floor_special_us"] for p in parts),
                        issue_us=sum(p["issue_us"] for p in parts), memory_us=sum(p["memory_us"] for p in parts),
                        binding=f"{main['binding']} ({main['kernel'].split(' [')[1][:-1]})", floor_kind=main["floor_kind"],
                        fraction_of_floor=floor / est, source=main["source"],
                        estimate_all_branches_us=est_all, fraction_all_branches=floor / est_all,
                        paths="; ".join(f"{p['kernel'].split(' [')[1][:-1]}: {p['paths']}" for p in parts if p.get("paths")),
                        measured_us=measured.get((kernel, shape, dtype, machine), ""),
                        note="router GEMM (cuBLAS) and top-k not modelled" if kernel.startswith("moe") else ""))
    return out


COLUMNS = ["kernel", "shape", "dtype", "machine", "unit", "instr_per_unit", "instr_per_warp", "registers", "smem", "spills",
           "occupancy", "floor_bytes_us", "floor_flops_us", "floor_special_us", "issue_us", "memory_us", "special_us",
           "tensor_us", "estimate_us", "binding", "floor_kind", "fraction_of_floor", "estimate_all_branches_us",
           "fraction_all_branches", "instr_per_unit_all_branches", "paths", "measured_us", "source", "classes", "note"]


def write(out, rows, commit, source_label, disasm):
    with open(os.path.join(out, "estimates.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label"] + COLUMNS + ["commit"])
        for r in rows:
            w.writerow([LABEL] + [fmt(r.get(k, "")) if not isinstance(r.get(k), str) else r.get(k) for k in COLUMNS] + [commit])
    md = [f"# Static performance model: {LABEL}", "",
          f"Commit {commit}. Instruction counts: {source_label}. Machines: bench/perf-model/machines.json "
          "(attainable copy bandwidth and GEMM rate of the GPU notes, boost clock). Times in microseconds; "
          "floor = the larger of bytes / copy bandwidth, FLOPs / attainable rate and special functions / MUFU rate; "
          "fraction = floor / estimate; instr/unit = all warp-instructions a warp executes per unit of work. "
          "Rows with path weights (kernels.py `paths`: code that does not run at the row's shape, or runs on a "
          "fraction of passes) count the path that runs in `estimate`; `all branches` is the same row counting "
          "every branch (the conservative count), and `paths` says which weights the row uses. "
          "`measured` is filled only from bench/results/results.csv rows of this commit.", ""]
    head = ["kernel", "shape", "dtype", "machine", "instr/unit (unit)", "regs", "occ", "floor bytes", "floor flops",
            "floor sfu", "issue", "memory", "estimate", "binding", "fraction of floor", "all branches (fraction)",
            "measured", "counts", "paths"]
    md.append("| " + " | ".join(head) + " |")
    md.append("|" + "---|" * len(head))
    for r in rows:
        if "estimate_us" not in r:
            md.append(f"| {r['kernel']} | {r['shape']} | {r['dtype']} | {r['machine']} | {r.get('note', '')} |" + " |" * (len(head) - 5))
            continue
        per_unit = f"{fmt(r['instr_per_unit'])} ({r['unit']})" if r.get("instr_per_unit") else r["unit"]
        md.append("| " + " | ".join([r["kernel"], r["shape"], r["dtype"], r["machine"], per_unit, fmt(r.get("registers", "")),
                                     fmt(r.get("occupancy", ""), 2), fmt(r["floor_bytes_us"]), fmt(r["floor_flops_us"]),
                                     fmt(r["floor_special_us"]), fmt(r["issue_us"]), fmt(r["memory_us"]), fmt(r["estimate_us"]),
                                     r["binding"], fmt(r["fraction_of_floor"], 2),
                                     f"{fmt(r['estimate_all_branches_us'])} ({fmt(r['fraction_all_branches'], 2)})"
                                     if r.get("paths") else "same", fmt(r.get("measured_us", "")),
                                     "SASS" if r["source"].startswith("SASS") else "PTX", r.get("paths", "")]) + " |")
    with open(os.path.join(out, "estimates.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    sys.exit(main())
