"""PyTorch peer timings for the RMSNorm kernels.

Usage: python rmsnorm_peer.py --shapes SHAPES.csv --out PEERS.csv

SHAPES.csv has header ``kernel,shape,dtype``; kernel is ``rmsnorm`` or
``rmsnorm+residual``, shape is ``ROWSxCOLS`` and dtype one of f32, f16, bf16.

For every row this times what a PyTorch user would write:
  rmsnorm           y = rms_norm(x, (cols,), weight, eps=1e-6)
  rmsnorm+residual  h = x + r; y = rms_norm(h, (cols,), weight, eps=1e-6)
once eagerly and, when torch.compile works, once compiled. Compilation is
skipped (with a message) once the time budget is used up, so that the whole
run stays around a minute.

Writes CSV ``kernel,shape,dtype,peer,peer_time_us``.
"""

import argparse
import csv
import sys
import time

import torch
import torch.nn.functional as F

from common import cuda_time_us, write_csv

EPS = 1e-6
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}

# Peer names written to the CSV: (eager, compiled) per kernel.
PEER_NAMES = {
    "rmsnorm": ("torch.nn.functional.rms_norm", "torch.compile(rms_norm)"),
    "rmsnorm+residual": ("torch add+rms_norm", "torch.compile(add+rms_norm)"),
}


def rmsnorm(x, weight):
    return F.rms_norm(x, (x.shape[-1],), weight, eps=EPS)


def add_rmsnorm(x, r, weight):
    h = x + r
    return F.rms_norm(h, (h.shape[-1],), weight, eps=EPS)


def read_shapes(path):
    """Return a list of (kernel, shape, dtype, rows, cols) from SHAPES.csv."""
    cases = []
    with open(path, newline="") as f:
        for rec in csv.DictReader(f):
            kernel = rec["kernel"].strip()
            shape = rec["shape"].strip()
            dtype = rec["dtype"].strip()
            if kernel not in PEER_NAMES or dtype not in DTYPES:
                print(f"skipping unsupported row: {kernel},{shape},{dtype}", file=sys.stderr)
                continue
            rows, cols = (int(v) for v in shape.lower().split("x"))
            cases.append((kernel, shape, dtype, rows, cols))
    return cases


def make_call(fn, kernel, rows, cols, dtype):
    """Allocate random normal inputs and return a no-argument callable running ``fn``."""
    dt = DTYPES[dtype]
    x = torch.randn(rows, cols, dtype=dt, device="cuda")
    w = torch.randn(cols, dtype=dt, device="cuda")
    if kernel == "rmsnorm":
        return lambda: fn(x, w)
    r = torch.randn(rows, cols, dtype=dt, device="cuda")
    return lambda: fn(x, r, w)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", required=True, help="input CSV kernel,shape,dtype")
    parser.add_argument("--out", required=True, help="output CSV of peer timings")
    parser.add_argument("--compile-budget-s", type=float, default=45.0,
                        help="stop trying torch.compile after this many seconds (default 45)")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        raise SystemExit("rmsnorm_peer.py: no CUDA device available")

    cases = read_shapes(args.shapes)
    out_rows = []
    t0 = time.monotonic()
    compile_ok = True

    for kernel, shape, dtype, rows, cols in cases:
        torch.cuda.empty_cache()  # release the previous case's inputs
        eager_name, compiled_name = PEER_NAMES[kernel]
        eager_fn = rmsnorm if kernel == "rmsnorm" else add_rmsnorm

        t_us = cuda_time_us(make_call(eager_fn, kernel, rows, cols, dtype))
        out_rows.append((kernel, shape, dtype, eager_name, f"{t_us:.3f}"))
        print(f"{kernel:18s} {shape:>12s} {dtype:5s} {eager_name:30s} {t_us:10.2f} us")

        if not compile_ok:
            continue
        if time.monotonic() - t0 > args.compile_budget_s:
            print(f"{kernel} {shape} {dtype}: torch.compile skipped (time budget used up)")
            continue
        try:
            # Start from a clean cache for every case: a fresh static graph per
            # shape, and no silent fall-back to eager after too many recompiles.
            torch._dynamo.reset()
            compiled_fn = torch.compile(eager_fn, dynamic=False)
            t_us = cuda_time_us(make_call(compiled_fn, kernel, rows, cols, dtype))
        except Exception as exc:  # compile needs a working toolchain (triton etc.)
            print(f"torch.compile failed, compiled peers skipped: {type(exc).__name__}: {exc}")
            compile_ok = False
            continue
        out_rows.append((kernel, shape, dtype, compiled_name, f"{t_us:.3f}"))
        print(f"{kernel:18s} {shape:>12s} {dtype:5s} {compiled_name:30s} {t_us:10.2f} us")

    write_csv(args.out, ("kernel", "shape", "dtype", "peer", "peer_time_us"), out_rows)
    print(f"wrote {len(out_rows)} rows to {args.out} in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
