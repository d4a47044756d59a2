"""Join Isthmus kernel timings with PyTorch peer timings and the machine ceilings.

Usage:
  python report.py --raw RAW.csv [--peers PEERS.csv ...] [--ceilings CEILINGS.csv]
                   --device NAME --commit SHA [--date YYYY-MM-DD] --out OUTDIR
                   [--append-to CUMULATIVE.csv] [--brief BRIEF.txt]

Inputs:
  RAW.csv       kernel,shape,dtype,time_us,runs,bytes,flops,tokens,
                energy_j_per_run,avg_watts,sm_clock_mhz,energy_note
                (our measurements, GpuBench; bytes/flops/tokens = what the
                kernel must move/do/produce, 0 = not applicable; the energy
                columns are empty where NVML did not answer, the note says why)
  PEERS.csv     kernel,shape,dtype,peer,peer_time_us      (peers/*_peer.py)
  CEILINGS.csv  name,value,unit with copy_gbps and bf16_gemm_tflops
                                                           (peers/ceilings.py)
PEERS.csv and CEILINGS.csv may be missing or empty; the columns that depend
on them are then left empty.

Outputs in OUTDIR: results.csv, summary.md, plot.png (if matplotlib is
installed: a row of two panels per kernel, the MoE layers included). The
markdown table is also printed to stdout. --brief writes one line per kernel
(its range of fractions of the ceiling and of speedups, its energy per token),
short enough to print at the end of a run.
"""

import argparse
import csv
import datetime
import math
import os
import sys

RESULT_HEADER = [
    "date", "commit", "device", "kernel", "shape", "dtype", "time_us", "runs",
    "achieved_gbps", "achieved_tflops", "fraction_of_copy_bw",
    "fraction_of_gemm_peak", "peer", "peer_time_us", "speedup_vs_peer",
    "joules_per_token", "energy_j_per_run", "avg_watts", "sm_clock_mhz", "energy_note",
]


def warn(msg):
    print(f"report.py: {msg}", file=sys.stderr)


def fmt(value, digits=4):
    """Format a float with ``digits`` significant digits, never in exponent form.

    None (not applicable) becomes the empty string.
    """
    if value is None:
        return ""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{round(value, decimals):.{decimals}f}"


def to_float(text):
    """Parse a CSV cell as float; empty or malformed cells give None."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def read_rows(path, required, what):
    """Read a CSV into a list of dicts; None if the file is missing, empty or malformed."""
    if not path:
        warn(f"no {what} file given; its columns will be empty")
        return None
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        warn(f"{what} file {path!r} missing or empty; its columns will be empty")
        return None
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            warn(f"{what} file {path!r} lacks columns {missing}; ignored")
            return None
        rows = [{k: (v or "").strip() for k, v in r.items() if k} for r in reader]
    if not rows:
        warn(f"{what} file {path!r} has no data rows; its columns will be empty")
    return rows


def read_ceilings(path):
    """Return (copy_gbps, bf16_gemm_tflops); either may be None."""
    rows = read_rows(path, ["name", "value"], "ceilings") or []
    values = {r["name"]: to_float(r["value"]) for r in rows}
    copy_gbps = values.get("copy_gbps")
    gemm_tflops = values.get("bf16_gemm_tflops")
    if rows and copy_gbps is None:
        warn("ceilings lack copy_gbps; fraction_of_copy_bw will be empty")
    if rows and gemm_tflops is None:
        warn("ceilings lack bf16_gemm_tflops; fraction_of_gemm_peak will be empty")
    return copy_gbps, gemm_tflops


def read_peers(paths):
    """Return {(kernel, shape, dtype): [(peer, peer_time_us), ...]} over the files, in order."""
    peers = {}
    for path in paths or []:
        for r in read_rows(path, ["kernel", "shape", "dtype", "peer", "peer_time_us"], "peers") or []:
            key = (r["kernel"], r["shape"], r["dtype"])
            peers.setdefault(key, []).append((r["peer"], to_float(r["peer_time_us"])))
    return peers


def ratio(num, den):
    """num / den, or None when either is missing or the result is meaningless."""
    if num is None or den is None or den <= 0 or num <= 0:
        return None
    return num / den


def build_results(raw, peers, copy_gbps, gemm_tflops, meta):
    """One result dict per (our row x matching peer); numbers kept as floats/None."""
    results = []
    for r in raw:
        time_us = to_float(r["time_us"])
        nbytes = to_float(r.get("bytes"))
        flops = to_float(r.get("flops"))
        # bytes/flops of 0 (not applicable) give None, i.e. an empty cell.
        per_us_b = ratio(nbytes, time_us)
        per_us_f = ratio(flops, time_us)
        gbps = per_us_b * 1e6 / 1e9 if per_us_b else None
        tflops = per_us_f * 1e6 / 1e12 if per_us_f else None
        energy = to_float(r.get("energy_j_per_run"))
        base = dict(meta)
        base.update(
            kernel=r["kernel"], shape=r["shape"], dtype=r["dtype"],
            time_us=time_us, runs=r.get("runs", ""), achieved_gbps=gbps, achieved_tflops=tflops,
            fraction_of_copy_bw=ratio(gbps, copy_gbps),
            fraction_of_gemm_peak=ratio(tflops, gemm_tflops),
            joules_per_token=ratio(energy, to_float(r.get("tokens"))),
            energy_j_per_run=energy, avg_watts=to_float(r.get("avg_watts")),
            sm_clock_mhz=to_float(r.get("sm_clock_mhz")), energy_note=r.get("energy_note", ""),
        )
        matches = peers.get((r["kernel"], r["shape"], r["dtype"])) or [("", None)]
        for peer, peer_us in matches:
            row = dict(base, peer=peer, peer_time_us=peer_us,
                       speedup_vs_peer=ratio(peer_us, time_us))
            results.append(row)
    return results


def csv_cells(row):
    """The row as strings in RESULT_HEADER order."""
    return [fmt(row[c]) if isinstance(row[c], float) or row[c] is None else row[c]
            for c in RESULT_HEADER]


def write_results(path, results, append=False):
    """Write results.csv, or append to a cumulative file (header only if new)."""
    new_file = not os.path.isfile(path) or os.path.getsize(path) == 0
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "a" if append else "w", newline="") as f:
        writer = csv.writer(f)
        if new_file or not append:
            writer.writerow(RESULT_HEADER)
        writer.writerows(csv_cells(r) for r in results)


def pct(fraction):
    return "" if fraction is None else f"{100 * fraction:.1f}%"


def markdown(results, meta, copy_gbps, gemm_tflops):
    """The summary as a markdown string."""
    lines = [
        f"## Isthmus benchmarks: {meta['device']}, {meta['date']}, commit {meta['commit']}",
        "",
        "Ceilings (PyTorch, same machine):",
        "",
        f"- device-to-device copy bandwidth (read + write): "
        f"{fmt(copy_gbps) + ' GB/s' if copy_gbps else 'not measured'}",
        f"- bf16 GEMM rate (8192^3 matmul): "
        f"{fmt(gemm_tflops) + ' TFLOP/s' if gemm_tflops else 'not measured'}",
        "",
        "| kernel | shape | dtype | time us | GB/s | % of copy BW | TFLOP/s "
        "| % of GEMM peak | peer | peer us | speedup | J/token | W |",
        "|---|---|---|--:|--:|--:|--:|--:|---|--:|--:|--:|--:|",
    ]
    for r in results:
        speedup = f"{fmt(r['speedup_vs_peer'], 3)}x" if r["speedup_vs_peer"] else ""
        cells = [
            r["kernel"], r["shape"], r["dtype"], fmt(r["time_us"]),
            fmt(r["achieved_gbps"]), pct(r["fraction_of_copy_bw"]),
            fmt(r["achieved_tflops"]), pct(r["fraction_of_gemm_peak"]),
            r["peer"], fmt(r["peer_time_us"]), speedup,
            fmt(r["joules_per_token"], 3), fmt(r["avg_watts"], 3),
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def span(values, render):
    """'a..b' of the present values rendered, or '-' when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    lo, hi = min(present), max(present)
    return render(lo) if lo == hi else f"{render(lo)}..{render(hi)}"


def brief(results, copy_gbps, gemm_tflops):
    """One line per kernel: rows, fraction of its ceiling, speedup over the best peer, J/token."""
    lines = [f"ceilings: copy {fmt(copy_gbps, 3) + ' GB/s' if copy_gbps else 'not measured'}, "
             f"bf16 GEMM {fmt(gemm_tflops, 3) + ' TFLOP/s' if gemm_tflops else 'not measured'}",
             "kernel: rows | time us | of copy BW / GEMM peak | speedup vs peer | J/token"]
    for kernel in dict.fromkeys(r["kernel"] for r in results):
        rows = [r for r in results if r["kernel"] == kernel]
        cases = {(r["shape"], r["dtype"]) for r in rows}
        fractions = [r["fraction_of_gemm_peak"] if r["fraction_of_gemm_peak"] is not None and r["fraction_of_copy_bw"] is None
                     else r["fraction_of_copy_bw"] for r in rows]
        lines.append(f"{kernel}: {len(cases)} | {span([r['time_us'] for r in rows], lambda v: fmt(v, 3))} | "
                     f"{span(fractions, pct)} | {span([r['speedup_vs_peer'] for r in rows], lambda v: fmt(v, 2) + 'x')} | "
                     f"{span([r['joules_per_token'] for r in rows], lambda v: fmt(v, 2))}")
    return "\n".join(lines) + "\n"


def grouped_bars(ax, groups, series, values, ylabel, title):
    """Draw a grouped bar chart: one group per x label, one bar per series.

    values maps (group, series) -> number; missing pairs leave a gap.
    """
    n = max(1, len(series))
    width = 0.8 / n
    for i, s in enumerate(series):
        xs, ys = [], []
        for g_i, g in enumerate(groups):
            if (g, s) in values:
                xs.append(g_i - 0.4 + width * (i + 0.5))
                ys.append(values[(g, s)])
        bars = ax.bar(xs, ys, width, label=s)
        ax.bar_label(bars, labels=[fmt(y, 3) for y in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_xlim(-0.6, max(len(groups), 1) - 0.4)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    # Headroom above the tallest bar (and above the 1.0 reference line) for
    # the value labels and a one-row legend, so that nothing overlaps.
    top = max([1.0] + list(values.values()))
    ax.set_ylim(0, top * 1.3)
    if values and any(series):
        ax.legend(fontsize=7, loc="upper center", ncol=len(series), frameon=False)


def plot(results, path, meta):
    """One figure, one row per kernel: efficiency (left) and speedup vs peers (right)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("warning: matplotlib not installed; plot.png skipped", file=sys.stderr)
        return False

    kernels = list(dict.fromkeys(r["kernel"] for r in results))
    fig, axes = plt.subplots(len(kernels), 2, figsize=(13, 3.6 * len(kernels)),
                             squeeze=False)
    for k, kernel in enumerate(kernels):
        rows = [r for r in results if r["kernel"] == kernel]
        shapes = list(dict.fromkeys(r["shape"] for r in rows))
        dtypes = list(dict.fromkeys(r["dtype"] for r in rows))

        # Left: fraction of copy bandwidth (or of GEMM peak for compute-only kernels).
        ax = axes[k][0]
        frac = {(r["shape"], r["dtype"]): r["fraction_of_copy_bw"]
                for r in rows if r["fraction_of_copy_bw"] is not None}
        label = "fraction of copy BW"
        if not frac:
            frac = {(r["shape"], r["dtype"]): r["fraction_of_gemm_peak"]
                    for r in rows if r["fraction_of_gemm_peak"] is not None}
            label = "fraction of bf16 GEMM peak"
        grouped_bars(ax, shapes, dtypes, frac, label, f"{kernel}: {label} (Isthmus)")
        ax.axhline(1.0, color="gray", linestyle="--", linewidth=0.8)
        if not frac:
            ax.text(0.5, 0.5, "no ceiling data", transform=ax.transAxes,
                    ha="center", va="center", color="gray")

        # Right: speedup vs each peer, per shape/dtype.
        ax = axes[k][1]
        cases = list(dict.fromkeys(f"{r['shape']}\n{r['dtype']}"
                                   for r in rows if r["speedup_vs_peer"]))
        peers = list(dict.fromkeys(r["peer"] for r in rows if r["speedup_vs_peer"]))
        speed = {(f"{r['shape']}\n{r['dtype']}", r["peer"]): r["speedup_vs_peer"]
                 for r in rows if r["speedup_vs_peer"]}
        grouped_bars(ax, cases, peers, speed, "speedup (peer time / our time)",
                     f"{kernel}: speedup vs peer")
        ax.axhline(1.0, color="black", linewidth=1.0)
        if not speed:
            ax.text(0.5, 0.5, "no peer data", transform=ax.transAxes,
                    ha="center", va="center", color="gray")

    fig.suptitle(f"Isthmus on {meta['device']} ({meta['date']}, {meta['commit'][:12]})",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="our measurements (CSV)")
    parser.add_argument("--peers", nargs="*", help="peer timings (CSV files, one per peer script); optional")
    parser.add_argument("--ceilings", help="machine ceilings (CSV); optional")
    parser.add_argument("--device", required=True, help="device name for the report")
    parser.add_argument("--commit", required=True, help="commit SHA measured")
    parser.add_argument("--date", default=datetime.date.today().isoformat(),
                        help="date YYYY-MM-DD (default: today)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--append-to", help="also append the rows to this cumulative CSV")
    parser.add_argument("--brief", help="also write one line per kernel to this file")
    args = parser.parse_args()

    raw = read_rows(args.raw, ["kernel", "shape", "dtype", "time_us"], "raw")
    if not raw:
        sys.exit("report.py: no measurements to report")
    copy_gbps, gemm_tflops = read_ceilings(args.ceilings)
    peers = read_peers(args.peers)

    meta = {"date": args.date, "commit": args.commit, "device": args.device}
    results = build_results(raw, peers, copy_gbps, gemm_tflops, meta)

    os.makedirs(args.out, exist_ok=True)
    write_results(os.path.join(args.out, "results.csv"), results)
    if args.append_to:
        write_results(args.append_to, results, append=True)
    table = markdown(results, meta, copy_gbps, gemm_tflops)
    with open(os.path.join(args.out, "summary.md"), "w") as f:
        f.write(table)
    if args.brief:
        with open(args.brief, "w") as f:
            f.write(brief(results, copy_gbps, gemm_tflops))
    plot(results, os.path.join(args.out, "plot.png"), meta)

    print(table, end="")


if __name__ == "__main__":
    main()
