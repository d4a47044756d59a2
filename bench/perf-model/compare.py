#!/usr/bin/env python3
"""Before/after comparison of two estimates.csv files of the static performance model (static
estimates, not measurements).

  compare.py BEFORE.csv AFTER.csv OUT.md [--kernels REGEX]

One row per (kernel, shape, dtype, machine) found in both, for the kernels matching REGEX.
Components split into several launches in one file and one in the other ("moe-mixtral [align]"
before, "[align-histogram]" + "[align-scan]" + "[align-scatter]" after) are compared as the sum
of the parts whose name starts with the single part's name and a hyphen.
"""
import argparse
import csv
import re
import sys

LABEL = "static estimate, not a measurement"


def read(path):
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("estimate_us")]
    commit = rows[0].get("commit", "") if rows else ""
    return {(r["kernel"], r["shape"], r["dtype"], r["machine"]): r for r in rows}, commit


def floor_of(r):
    return max(float(r["floor_bytes_us"] or 0), float(r["floor_flops_us"] or 0), float(r["floor_special_us"] or 0))


def merged(rows, key):
    """The row of `key`, or the sum of the rows of its hyphenated parts; None when neither exists."""
    if key in rows:
        r = rows[key]
        return dict(estimate=float(r["estimate_us"]), floor=floor_of(r), floor_kind=r["floor_kind"],
                    binding=r["binding"], parts=1, all_branches=all_of(r), paths=bool(r.get("paths")))
    kernel, shape, dtype, machine = key
    m = re.match(r"^(.*) \[(.*)\]$", kernel)
    if not m:
        return None
    parts = [r for (k, s, d, mach), r in rows.items()
             if (s, d, mach) == (shape, dtype, machine) and k.startswith(f"{m.group(1)} [{m.group(2)}-")]
    if not parts:
        return None
    est = sum(float(p["estimate_us"]) for p in parts)
    main = max(parts, key=lambda p: float(p["estimate_us"]))
    return dict(estimate=est, floor=sum(floor_of(p) for p in parts), floor_kind=main["floor_kind"],
                binding=f"{main['binding']} ({main['kernel'].split(' [')[1][:-1]})", parts=len(parts),
                all_branches=sum(all_of(p) for p in parts), paths=any(p.get("paths") for p in parts))


def all_of(r):
    """The every-branch estimate (the before file, older than path weights, has only estimate_us)."""
    return float(r.get("estimate_all_branches_us") or r["estimate_us"])


def compare(before, after, kernels):
    """Rows (key, before, after) for the keys of `before` matching `kernels`, in its order."""
    out = []
    for key in before:
        if not re.search(kernels, key[0]):
            continue
        b, a = merged(before, key), merged(after, key)
        if b and a:
            out.append((key, b, a))
    return out


def fmt(x):
    return f"{x:.3g}" if abs(x) < 1e5 else f"{x:.0f}"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after")
    ap.add_argument("out")
    ap.add_argument("--kernels", default=".")
    args = ap.parse_args(argv)
    before, bc = read(args.before)
    after, ac = read(args.after)
    rows = compare(before, after, args.kernels)
    md = [f"# Static performance model, before and after: {LABEL}", "",
          f"Before: commit {bc}; after: commit {ac} (bench/results/perf-model/before-estimates.csv and "
          "estimates.csv). Times in microseconds from PTX counts; floor = the largest of bytes / copy "
          "bandwidth, FLOPs / attainable rate, special functions / MUFU rate (after); fraction = floor / "
          "estimate (after). A part split into several launches is their sum (align = histogram + scan + "
          "scatter past one chunk of pairs, one launch within it). `after, all branches`: the after row "
          "counting every branch (no path weights); it differs where kernels.py gives the row path weights "
          "(marked *), and the fraction beside it is floor / that. Nothing here was timed on a GPU.", "",
          "| kernel | shape | dtype | machine | estimate before | estimate after | after, all branches (fraction) | binding floor | binding limit after | fraction of floor after |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for (kernel, shape, dtype, machine), b, a in rows:
        md.append(f"| {kernel} | `{shape}` | {dtype} | {machine} | {fmt(b['estimate'])} | {fmt(a['estimate'])}{' *' if a['paths'] else ''} | "
                  f"{fmt(a['all_branches'])} ({a['floor'] / a['all_branches']:.2f}) | {fmt(a['floor'])} ({a['floor_kind']}) | {a['binding']} | {a['floor'] / a['estimate']:.2f} |")
    with open(args.out, "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"{len(rows)} rows -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
