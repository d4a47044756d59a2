"""Check what a GPU run (bench/gpu-run.sh) brought back, as the GPU machine would return it.

Usage: python3 check_gpu_run.py OUTDIR [--bundle BUNDLE.tar.xz] [--run-status N]

Fails (exit 1, one line per problem) unless:
  * OUTDIR holds at most 8 plain files, none over 16 MiB, nothing else;
  * results.tgz unpacks, and its stages.csv lists every stage, each ok or skipped with its reason;
  * results.csv has a time in every row, and a row for every kernel family;
  * run.log ends with the summary, and the summary fits in 3,000 characters;
  * the bundle archive, if given, is under 56 MiB (what travels to the GPU machine).
"""

import argparse
import csv
import io
import os
import sys
import tarfile

STAGES = ["device", "tests", "memcheck", "bench", "peers", "demo", "racecheck", "initcheck", "jmh"]
FAMILIES = {
    "copy": ["device-copy"], "rmsnorm": ["rmsnorm", "rmsnorm+residual"], "scan": ["selective-scan"],
    "state update": ["selective-state-update"], "conv1d": ["causal-conv1d"], "ssd scan": ["ssd-scan"], "ssd state update": ["ssd-state-update"], "attention decode": ["attention-decode"],
    "attention decode, quantized cache": ["attention-decode-int8", "attention-decode-fp8"],
    "attention prefill": ["attention-prefill"], "moe": ["moe-mixtral", "moe-deepseek"], "gemm": ["gemm-own"],
    "model decode": ["decode ", "decode-kernels ", "decode-host-logits ", "decode-eager "], "speculative": ["speculative "],
}
MAX_FILES, MAX_FILE_BYTES, MAX_BUNDLE_BYTES, MAX_SUMMARY = 8, 16 << 20, 56 << 20, 3000


def check(outdir, bundle, run_status):
    problems = []
    entries = sorted(os.listdir(outdir))
    files = [e for e in entries if os.path.isfile(os.path.join(outdir, e)) and not os.path.islink(os.path.join(outdir, e))]
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files in {outdir}, at most {MAX_FILES} come back: {files}")
    for other in sorted(set(entries) - set(files)):
        problems.append(f"{other}: not a plain file (only plain files at the top level come back)")
    for f in files:
        size = os.path.getsize(os.path.join(outdir, f))
        if size > MAX_FILE_BYTES:
            problems.append(f"{f}: {size} bytes, over 16 MiB")

    stages = {}
    try:
        with tarfile.open(os.path.join(outdir, "results.tgz")) as tgz:
            names = tgz.getnames()
            member = next((n for n in names if n.endswith("stages.csv")), None)
            if member is None:
                problems.append("results.tgz has no stages.csv")
            else:
                text = tgz.extractfile(member).read().decode()
                stages = {r["stage"]: r for r in csv.DictReader(io.StringIO(text))}
            for m in tgz.getmembers():
                if m.isfile():
                    tgz.extractfile(m).read()
    except (OSError, tarfile.TarError) as e:
        problems.append(f"results.tgz does not unpack: {e}")
    for name in STAGES:
        row = stages.get(name)
        if row is None:
            problems.append(f"stage {name}: neither ran nor said why it was skipped")
        elif row["status"] == "skipped" and not row["note"]:
            problems.append(f"stage {name}: skipped without a reason")
        elif row["status"] not in ("ok", "skipped"):
            problems.append(f"stage {name}: {row['status']} {row['note']}".rstrip())

    try:
        with open(os.path.join(outdir, "results.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        for i, r in enumerate(rows, start=2):
            if not (r.get("time_us") or "").strip():
                problems.append(f"results.csv line {i}: no time ({r.get('kernel')} {r.get('shape')})")
        kernels = {r["kernel"] for r in rows}
        for family, prefixes in FAMILIES.items():
            for prefix in prefixes:
                if not any(k == prefix or (prefix.endswith(" ") and k.startswith(prefix)) for k in kernels):
                    problems.append(f"results.csv: no row of {family} ({prefix.strip()})")
    except OSError as e:
        problems.append(f"results.csv: {e}")

    try:
        with open(os.path.join(outdir, "run.log"), errors="replace") as f:
            log = f.read()
        at = log.rfind("==== summary")
        if at < 0:
            problems.append("run.log has no summary")
        elif len(log) - at > MAX_SUMMARY + 200:
            problems.append(f"the summary is {len(log) - at} characters, over {MAX_SUMMARY}")
    except OSError as e:
        problems.append(f"run.log: {e}")

    if bundle and os.path.getsize(bundle) > MAX_BUNDLE_BYTES:
        problems.append(f"{bundle}: {os.path.getsize(bundle)} bytes, over 56 MiB")
    if run_status not in (None, 0) and not problems:
        problems.append(f"gpu-run.sh exited with status {run_status}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--bundle")
    parser.add_argument("--run-status", type=int)
    args = parser.parse_args()
    problems = check(args.outdir, args.bundle, args.run_status)
    for p in problems:
        print(f"gpu-run-dry: {p}")
    if problems:
        sys.exit(1)
    print(f"gpu-run-dry: {args.outdir} passes: every stage ran or said why not, at most {MAX_FILES} files, "
          "results.tgz unpacks, every kernel family has timed rows")


if __name__ == "__main__":
    main()
