"""Measure the two hardware ceilings of the current GPU with PyTorch.

* copy_gbps: device-to-device copy bandwidth, counting bytes read + written
  (a 1 GiB tensor copied with dst.copy_(src): GB/s = 2 * bytes / time).
* bf16_gemm_tflops: dense bf16 GEMM rate of an 8192x8192x8192 torch.matmul
  (flops = 2 * M * N * K).

Usage: python ceilings.py --out CEILINGS.csv
Writes CSV ``name,value,unit`` and prints the same rows.
"""

import argparse

import torch

from common import cuda_time_us, write_csv


def copy_bandwidth_gbps():
    """Device-to-device copy bandwidth in GB/s (1e9 bytes), read + write."""
    nbytes = 1 << 30  # 1 GiB
    src = torch.rand(nbytes // 4, dtype=torch.float32, device="cuda")
    dst = torch.empty_like(src)
    t_us = cuda_time_us(lambda: dst.copy_(src), warmup=5, iters=50)
    gbps = 2 * nbytes / (t_us * 1e-6) / 1e9
    del src, dst
    torch.cuda.empty_cache()
    return gbps


def bf16_gemm_tflops(n=8192):
    """bf16 GEMM rate in TFLOP/s for an n x n x n product of random normal data."""
    a = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(n, n, dtype=torch.bfloat16, device="cuda")
    c = torch.empty(n, n, dtype=torch.bfloat16, device="cuda")
    t_us = cuda_time_us(lambda: torch.matmul(a, b, out=c), warmup=5, iters=50)
    tflops = 2 * n * n * n / (t_us * 1e-6) / 1e12
    del a, b, c
    torch.cuda.empty_cache()
    return tflops


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output CSV (name,value,unit)")
    args = parser.parse_args()

    if not torch.cuda.is_available():
        raise SystemExit("ceilings.py: no CUDA device available")

    rows = [
        ("copy_gbps", f"{copy_bandwidth_gbps():.1f}", "GB/s"),
        ("bf16_gemm_tflops", f"{bf16_gemm_tflops():.1f}", "TFLOP/s"),
    ]
    write_csv(args.out, ("name", "value", "unit"), rows)
    print(f"device: {torch.cuda.get_device_name()}")
    for name, value, unit in rows:
        print(f"{name},{value},{unit}")


if __name__ == "__main__":
    main()
