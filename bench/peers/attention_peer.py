"""PyTorch peer timings for the attention kernels.

Usage: python attention_peer.py --shapes SHAPES.csv --out PEERS.csv [--raw RAW.csv --plot PLOT.png]

SHAPES.csv has header ``kernel,shape,dtype``; the rows used here are
  attention-decode   bB-ctxN      B sequences, one new token each, N keys each
  attention-prefill  b1-tokensN   one sequence of N tokens, causal
at 32 query heads, 8 KV heads, head_dim 128 (the shapes of AttentionBench.java).

Each row is timed with torch.nn.functional.scaled_dot_product_attention pinned
to one backend at a time (flash, cuDNN, memory-efficient), on contiguous
[batch, heads, length, head_dim] tensors (SDPA has no paged cache), with
enable_gqa=True; a backend that rejects the shape is skipped with a message.
Decode is not causal (the one query sees every key); prefill is causal.

With --raw and --plot it also draws decode time against context length, ours
(from RAW.csv, the Java benchmark output) beside each peer.

Writes CSV ``kernel,shape,dtype,peer,peer_time_us``.
"""

import argparse
import csv
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from common import cuda_time_us, read_cases, write_csv

Q_HEADS, KV_HEADS, HEAD_DIM = 32, 8, 128
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
BACKENDS = [
    ("sdpa-flash", SDPBackend.FLASH_ATTENTION),
    ("sdpa-cudnn", SDPBackend.CUDNN_ATTENTION),
    ("sdpa-efficient", SDPBackend.EFFICIENT_ATTENTION),
]


def parse(kernel, shape):
    """(batch, q_len, kv_len, causal) of a shape string, or None for rows of other kernels."""
    fields = dict((part[0], part[1:]) for part in shape.split("-"))
    if kernel == "attention-decode":
        ctx = int(shape.split("ctx")[1])
        return int(fields["b"]), 1, ctx, False
    if kernel == "attention-prefill":
        n = int(shape.split("tokens")[1])
        return int(fields["b"]), n, n, True
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--raw", help="RAW.csv of the Java benchmarks, for the plot")
    parser.add_argument("--plot", help="PNG of decode time against context length")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("attention_peer.py: no CUDA device available")

    out_rows = []
    for kernel, shape, dtype in read_cases(args.shapes):
        parsed = parse(kernel, shape)
        if parsed is None or dtype not in DTYPES:
            continue
        batch, q_len, kv_len, causal = parsed
        torch.cuda.empty_cache()
        dt = DTYPES[dtype]
        q = torch.randn(batch, Q_HEADS, q_len, HEAD_DIM, dtype=dt, device="cuda")
        k = torch.randn(batch, KV_HEADS, kv_len, HEAD_DIM, dtype=dt, device="cuda")
        v = torch.randn(batch, KV_HEADS, kv_len, HEAD_DIM, dtype=dt, device="cuda")
        for name, backend in BACKENDS:
            def call():
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=True)
            try:
                call()
                t_us = cuda_time_us(call)
            except Exception as exc:  # the backend does not take this shape or dtype
                print(f"{kernel} {shape} {dtype}: {name} skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                      file=sys.stderr)
                continue
            out_rows.append((kernel, shape, dtype, name, f"{t_us:.3f}"))
            print(f"{kernel:18s} {shape:>16s} {dtype:5s} {name:16s} {t_us:10.2f} us")
        del q, k, v

    write_csv(args.out, ("kernel", "shape", "dtype", "peer", "peer_time_us"), out_rows)
    print(f"wrote {len(out_rows)} rows to {args.out}")
    if args.raw and args.plot:
        try:
            plot(args.raw, out_rows, args.plot)
        except Exception as exc:  # matplotlib missing or no decode rows: the timings above still count
            print(f"plot skipped: {type(exc).__name__}: {exc}", file=sys.stderr)


def plot(raw_path, peer_rows, path):
    """Decode time (us) against context length, one line per batch size and implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    with open(raw_path, newline="") as f:
        for r in csv.DictReader(f):
            if r["kernel"] == "attention-decode":
                batch, _, ctx, _ = parse(r["kernel"], r["shape"])
                series.setdefault(f"isthmus b{batch}", []).append((ctx, float(r["time_us"])))
    for kernel, shape, _, name, t_us in peer_rows:
        if kernel == "attention-decode":
            batch, _, ctx, _ = parse(kernel, shape)
            series.setdefault(f"{name} b{batch}", []).append((ctx, float(t_us)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("context length (keys)")
    ax.set_ylabel("decode time (us)")
    ax.set_title("decode attention, 32 q heads / 8 kv heads, head_dim 128, bf16")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
