"""Shared helpers for the PyTorch peer and ceiling benchmarks.

torch is imported lazily so that this module can be imported (and
write_csv used) on machines without PyTorch.
"""

import argparse
import csv
import os
import re
import statistics
import sys
import time


def cuda_time_us(fn, warmup=10, iters=100, flush_l2=True):
    """Return the median time of one call of ``fn()`` on the GPU, in microseconds.

    ``fn`` is called ``warmup`` times first (not timed), then ``iters`` times,
    each call bracketed by its own pair of CUDA events so that every iteration
    is measured separately. The median is robust against occasional outliers.
    With ``flush_l2`` a buffer twice the L2 size is overwritten before every
    timed call (outside the events), as the Java GPU benchmarks do, so both
    sides read their inputs from memory rather than from a warm cache.
    """
    import torch

    for _ in range(warmup):
        fn()
    flush = None
    if flush_l2:
        l2 = torch.cuda.get_device_properties(0).L2_cache_size
        flush = torch.empty(2 * max(l2, 1 << 20), dtype=torch.uint8, device="cuda")
    torch.cuda.synchronize()

    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for start, end in zip(starts, ends):
        if flush is not None:
            flush.fill_(0xFF)
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()

    # elapsed_time() is in milliseconds.
    times_us = [s.elapsed_time(e) * 1e3 for s, e in zip(starts, ends)]
    return statistics.median(times_us)


def write_csv(path, header, rows):
    """Write ``rows`` (sequences) under a ``header`` line to the CSV file ``path``."""
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def read_cases(path):
    """The (kernel, shape, dtype) rows of the SHAPES.csv the Java benchmarks wrote."""
    with open(path, newline="") as f:
        return [(r["kernel"].strip(), r["shape"].strip(), r["dtype"].strip()) for r in csv.DictReader(f)]


def letter_dims(shape):
    """A shape named by letters and sizes: 'B8xD2048xL4096xN16' -> {'B': 8, 'D': 2048, 'L': 4096, 'N': 16}."""
    return {k: int(v) for k, v in re.findall(r"([A-Z])(\d+)", shape)}


def run_letter_peers(script, description, peer_names, dtypes, make_call, length_chunk, chunked_kernel, warmup, iters, shape_width):
    """The main of a peer whose shapes are named by letters: times make_call(kernel, dims, dtype)
    for each case of --shapes it has a peer for (skipping `chunked_kernel` cases whose L is not a
    multiple of `length_chunk`) and writes CSV kernel,shape,dtype,peer,peer_time_us to --out."""
    import torch

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--shapes", required=True, help="input CSV kernel,shape,dtype")
    parser.add_argument("--out", required=True, help="output CSV of peer timings")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit(f"{script}: no CUDA device available")

    out_rows = []
    t0 = time.monotonic()
    for kernel, shape, dtype in read_cases(args.shapes):
        if kernel not in peer_names or dtype not in dtypes:
            continue
        dims = letter_dims(shape)
        if kernel == chunked_kernel and dims["L"] % length_chunk != 0:
            print(f"skipping {kernel} {shape}: L is not a multiple of {length_chunk}", file=sys.stderr)
            continue
        torch.cuda.empty_cache()
        with torch.no_grad():
            t_us = cuda_time_us(make_call(kernel, dims, dtypes[dtype]), warmup=warmup, iters=iters)
        out_rows.append((kernel, shape, dtype, peer_names[kernel], f"{t_us:.3f}"))
        print(f"{kernel:24s} {shape:>{shape_width}s} {dtype:5s} {peer_names[kernel]:40s} {t_us:12.2f} us")

    write_csv(args.out, ("kernel", "shape", "dtype", "peer", "peer_time_us"), out_rows)
    print(f"wrote {len(out_rows)} rows to {args.out} in {time.monotonic() - t0:.1f} s")
