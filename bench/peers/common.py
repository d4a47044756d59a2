"""Shared helpers for the PyTorch peer and ceiling benchmarks.

torch is imported lazily so that this module can be imported (and
write_csv used) on machines without PyTorch.
"""

import csv
import os
import statistics


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
