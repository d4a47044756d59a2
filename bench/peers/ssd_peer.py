"""PyTorch peer timings for the Mamba-2 SSD kernels (the chunked scan and its decode step).

Usage: python ssd_peer.py --shapes SHAPES.csv --out PEERS.csv

SHAPES.csv has header ``kernel,shape,dtype``; the rows this script times are

  ssd-scan          BbxLlxHhxPpxNnxGg   the chunked SSD algorithm (below), fp32 math
  ssd-state-update  BbxHhxPpxNnxGg      one decode step, plain tensor ops

with the same options as the Java benchmark: dt bias and softplus, D skip, the final states.
Other rows are skipped.

The scan is the SSD algorithm of Dao and Gu (2024, section 7) in plain tensor ops, with chunks of
CHUNK steps and heads split into G groups of R = H / G that share B and C. With
cum the running sum of dt' A inside each chunk and xs = dt' x:

  1. within each chunk: y = ((C B^T) o exp(cum_t - cum_s) [s <= t]) xs
  2. the state each chunk leaves: sum_s exp(cum_end - cum_s) xs_s B_s^T
  3. the states passed from chunk to chunk (a Python loop: S <- exp(cum_end) S + state)
  4. each chunk's incoming state read out: y += exp(cum_t) C_t S

Writes CSV ``kernel,shape,dtype,peer,peer_time_us``.
"""


import torch
import torch.nn.functional as F

from common import run_letter_peers

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
CHUNK = 64
PEER_NAMES = {
    "ssd-scan": f"torch chunked SSD (chunk {CHUNK})",
    "ssd-state-update": "torch SSD state update",
}



def ssd(x, dt, a, b, c, d, dt_bias):
    """y (B, L, H, P) and the final states (B, H, P, N); x (B, L, H, P), dt (B, L, H), b, c (B, L, G, N)."""
    bsz, length, heads, p = x.shape
    groups, n = b.shape[2], b.shape[3]
    r, k, q = heads // groups, length // CHUNK, CHUNK
    step = F.softplus(dt.float() + dt_bias)                                         # dt' (B, L, H)
    xs = (x.float() * step[..., None]).view(bsz, k, q, groups, r, p)                # dt' x
    cum = torch.cumsum((step * a).view(bsz, k, q, groups, r), dim=2)                # (B, K, Q, G, R)
    bc = b.float().view(bsz, k, q, groups, n)
    cc = c.float().view(bsz, k, q, groups, n)
    # 1. the quadratic form inside each chunk
    seg = cum[:, :, :, None] - cum[:, :, None, :]                                   # (B, K, T, S, G, R)
    causal = torch.tril(torch.ones(q, q, dtype=torch.bool, device=x.device))[None, None, :, :, None, None]
    decay = torch.exp(seg.masked_fill(~causal, float("-inf")))
    cb = torch.einsum("bktgn,bksgn->bktsg", cc, bc)
    y = torch.einsum("bktsgr,bksgrp->bktgrp", cb[..., None] * decay, xs)
    # 2. the chunk states
    to_end = torch.exp(cum[:, :, -1:] - cum)                                        # (B, K, Q, G, R)
    states = torch.einsum("bksgn,bksgr,bksgrp->bkgrpn", bc, to_end, xs)
    # 3. the states between chunks
    chunk_decay = torch.exp(cum[:, :, -1])                                          # (B, K, G, R)
    s = torch.zeros(bsz, groups, r, p, n, device=x.device)
    incoming = []
    for i in range(k):
        incoming.append(s)
        s = chunk_decay[:, i, :, :, None, None] * s + states[:, i]
    incoming = torch.stack(incoming, dim=1)                                         # (B, K, G, R, P, N)
    # 4. the incoming state read out
    y = y + torch.einsum("bktgn,bkgrpn,bktgr->bktgrp", cc, incoming, torch.exp(cum))
    y = y.reshape(bsz, length, heads, p) + d[:, None] * x.float()
    return y.to(x.dtype), s.reshape(bsz, heads, p, n)


def step(state, x, dt, a, b, c, d, dt_bias):
    """One decode step; state (B, H, P, N) fp32 updated in place; x (B, H, P), dt (B, H), b, c (B, G, N)."""
    heads, groups = x.shape[1], b.shape[1]
    step_ = F.softplus(dt.float() + dt_bias)                                        # (B, H)
    bh = b.float().repeat_interleave(heads // groups, dim=1)                        # (B, H, N)
    ch = c.float().repeat_interleave(heads // groups, dim=1)
    state.mul_(torch.exp(step_ * a)[..., None, None]).add_((step_[..., None] * x.float())[..., None] * bh[:, :, None, :])
    y = torch.einsum("bhpn,bhn->bhp", state, ch) + d[:, None] * x.float()
    return y.to(x.dtype)


def make_call(kernel, dims, dt_type):
    dev = "cuda"
    bsz, heads, p, n, groups = dims["B"], dims["H"], dims["P"], dims["N"], dims["G"]
    a = -torch.empty(heads, device=dev).uniform_(1.0, 16.0)
    d = torch.randn(heads, device=dev)
    bias = torch.empty(heads, device=dev).uniform_(-6.0, -2.0)
    if kernel == "ssd-scan":
        length = dims["L"]
        x = torch.randn(bsz, length, heads, p, dtype=dt_type, device=dev)
        dt = torch.randn(bsz, length, heads, dtype=dt_type, device=dev)
        b, c = (torch.randn(bsz, length, groups, n, dtype=dt_type, device=dev) for _ in range(2))
        return lambda: ssd(x, dt, a, b, c, d, bias)
    x = torch.randn(bsz, heads, p, dtype=dt_type, device=dev)
    dt = torch.randn(bsz, heads, dtype=dt_type, device=dev)
    b, c = (torch.randn(bsz, groups, n, dtype=dt_type, device=dev) for _ in range(2))
    state = torch.randn(bsz, heads, p, n, device=dev)
    return lambda: step(state, x, dt, a, b, c, d, bias)


def main():
    run_letter_peers("ssd_peer.py", __doc__.splitlines()[0], PEER_NAMES, DTYPES, make_call, CHUNK, "ssd-scan", warmup=2, iters=5,
                     shape_width=28)


if __name__ == "__main__":
    main()
