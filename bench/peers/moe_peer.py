"""PyTorch peer timings for the MoE layer and the dense GEMM.

Usage: python moe_peer.py --shapes SHAPES.csv --out PEERS.csv

SHAPES.csv has header ``kernel,shape,dtype``. Rows handled here:
  moe-mixtral, moe-deepseek  shape ``T=..;H=..;I=..;E=..;k=..[;G=..;TG=..]``
  gemm-own                   shape ``NxNxN`` or ``NxNxN;Bt`` (B stored (N, K))
Other rows are skipped.

The MoE peer is the straightforward PyTorch layer a user would write: router
logits in fp32, top-k (softmax renormalized; or sigmoid + bias, grouped,
renormalized, scaled by 2.5), then a loop over experts that gathers each
expert's tokens with index_select, runs silu(x W1^T) * (x W3^T) W2^T, scales by
the routing weight and adds into the output with index_add_, plus the residual.
The GEMM peer is torch.matmul (cuBLAS). Weights are random normal, as on our side.

Writes CSV ``kernel,shape,dtype,peer,peer_time_us``.
"""

import argparse
import sys

import torch
import torch.nn.functional as F

from common import cuda_time_us, read_cases, write_csv

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
ROUTED_SCALING = 2.5


def parse_moe(shape):
    fields = dict(part.split("=") for part in shape.split(";"))
    return {key: int(value) for key, value in fields.items()}


def route(logits, bias, k, groups, top_groups):
    """(weights, ids), each (T, k): softmax top-k renormalized, or DeepSeek's grouped sigmoid."""
    if bias is None:
        probs = logits.softmax(dim=-1)
        weights, ids = probs.topk(k, dim=-1)
        return weights / weights.sum(dim=-1, keepdim=True), ids
    scores = logits.sigmoid()
    choice = scores + bias
    t, e = choice.shape
    grouped = choice.view(t, groups, e // groups)
    group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)
    keep = group_scores.topk(top_groups, dim=-1).indices
    mask = torch.zeros(t, groups, dtype=torch.bool, device=logits.device).scatter_(1, keep, True)
    choice = choice.masked_fill(~mask.repeat_interleave(e // groups, dim=1), float("-inf"))
    ids = choice.topk(k, dim=-1).indices
    weights = scores.gather(1, ids)
    return weights / weights.sum(dim=-1, keepdim=True) * ROUTED_SCALING, ids


def moe_layer(x, residual, router, bias, w13, w2, k, groups, top_groups):
    logits = (x @ router.t()).float()
    weights, ids = route(logits, bias, k, groups, top_groups)
    out = residual.clone()
    inter = w2.shape[2]
    flat_ids = ids.reshape(-1)
    for e in range(w13.shape[0]):
        pairs = (flat_ids == e).nonzero().squeeze(1)
        if pairs.numel() == 0:
            continue
        tokens = pairs // k
        xe = x.index_select(0, tokens)
        gate_up = xe @ w13[e].t()
        h = F.silu(gate_up[:, :inter]) * gate_up[:, inter:]
        y = (h @ w2[e].t()) * weights.reshape(-1)[pairs].unsqueeze(1).to(x.dtype)
        out.index_add_(0, tokens, y)
    return out


def make_moe(kernel, shape, dtype):
    p = parse_moe(shape)
    dt = DTYPES[dtype]
    t, h, inter, e, k = p["T"], p["H"], p["I"], p["E"], p["k"]
    groups, top_groups = p.get("G", 1), p.get("TG", 1)
    dev = "cuda"
    x = torch.randn(t, h, dtype=dt, device=dev)
    residual = torch.randn(t, h, dtype=dt, device=dev)
    router = torch.randn(e, h, dtype=dt, device=dev) / h ** 0.5
    bias = torch.randn(e, device=dev) * 0.01 if kernel == "moe-deepseek" else None
    w13 = torch.randn(e, 2 * inter, h, dtype=dt, device=dev) / h ** 0.5
    w2 = torch.randn(e, h, inter, dtype=dt, device=dev) / inter ** 0.5
    return lambda: moe_layer(x, residual, router, bias, w13, w2, k, groups, top_groups)


def make_gemm(shape, dtype):
    dims, _, layout = shape.partition(";")
    m, n, k = (int(v) for v in dims.split("x"))
    dt = DTYPES[dtype]
    a = torch.randn(m, k, dtype=dt, device="cuda")
    c = torch.empty(m, n, dtype=dt, device="cuda")
    if layout == "Bt":  # B stored (N, K), as a Linear's weight
        b = torch.randn(n, k, dtype=dt, device="cuda")
        return lambda: torch.matmul(a, b.t(), out=c)
    b = torch.randn(k, n, dtype=dt, device="cuda")
    return lambda: torch.matmul(a, b, out=c)


PEERS = {
    "moe-mixtral": "torch loop over experts (index_select/index_add_)",
    "moe-deepseek": "torch loop over experts (index_select/index_add_)",
    "gemm-own": "torch.matmul (cuBLAS)",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", required=True, help="input CSV kernel,shape,dtype")
    parser.add_argument("--out", required=True, help="output CSV of peer timings")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("moe_peer.py: no CUDA device available")

    out_rows = []
    for kernel, shape, dtype in read_cases(args.shapes):
        if kernel not in PEERS or dtype not in DTYPES:
            continue
        torch.cuda.empty_cache()
        with torch.no_grad():
            fn = make_gemm(shape, dtype) if kernel == "gemm-own" else make_moe(kernel, shape, dtype)
            t_us = cuda_time_us(fn, warmup=3, iters=20)
        del fn
        out_rows.append((kernel, shape, dtype, PEERS[kernel], f"{t_us:.3f}"))
        print(f"{kernel:14s} {shape:40s} {dtype:5s} {PEERS[kernel]:50s} {t_us:12.2f} us")
        sys.stdout.flush()

    write_csv(args.out, ("kernel", "shape", "dtype", "peer", "peer_time_us"), out_rows)
    print(f"wrote {len(out_rows)} rows to {args.out}")


if __name__ == "__main__":
    main()
