"""PyTorch peer timings for the Mamba kernels (selective scan, state update, causal conv1d).

Usage: python scan_peer.py --shapes SHAPES.csv --out PEERS.csv

SHAPES.csv has header ``kernel,shape,dtype``; the rows this script times are

  selective-scan          BbxDdxLlxNn   chunked scan in log space (below), fp32 math
  selective-state-update  BbxDdxNn      one decode step, plain tensor ops
  causal-conv1d           BbxDdxLlxWw   F.conv1d with groups=D, padding W-1, then silu

with the same options as the Java benchmark: z gate, D skip, delta bias, softplus; G = 1.
Other rows are skipped.

The scan peer is the fastest formulation we know in plain PyTorch. L is cut into chunks of
CHUNK steps; inside a chunk, with S_t = sum_{s<=t} dt_s A (a cumulative sum in log space),

    h_t = exp(S_t) * (h_start + sum_{s<=t} exp(-S_s) * dt_s B_s u_s)

for every chunk at once, and a short Python loop passes the state from one chunk to the next.
The chunk is short enough that exp(-S_s) stays inside fp32 for the benchmark's A and dt.

Writes CSV ``kernel,shape,dtype,peer,peer_time_us``.
"""


import torch
import torch.nn.functional as F

from common import run_letter_peers

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}
CHUNK = 32
PEER_NAMES = {
    "selective-scan": f"torch chunked log-space scan (chunk {CHUNK})",
    "selective-state-update": "torch state update",
    "causal-conv1d": "torch conv1d(groups=D)+silu",
}



def scan(u, delta, z, b, c, a, d, bias):
    """y of the selective scan; u, delta, z (B, D, L); b, c (B, 1, N, L); a (D, N); d, bias (D)."""
    batch, dim, length = u.shape
    nstate = a.shape[1]
    chunks = length // CHUNK
    dt = F.softplus(delta.float() + bias[:, None])                           # (B, D, L)
    log_a = (dt[..., None] * a[:, None, :]).view(batch, dim, chunks, CHUNK, nstate)
    s = torch.cumsum(log_a, dim=3)                                          # S_t within each chunk
    bt = b[:, 0].float().transpose(1, 2)                                     # (B, L, N)
    x = (dt * u.float())[..., None] * bt[:, None]                            # dt B u: (B, D, L, N)
    x = x.view(batch, dim, chunks, CHUNK, nstate)
    h = torch.exp(s) * torch.cumsum(torch.exp(-s) * x, dim=3)                # from h = 0 per chunk
    decay = torch.exp(s[..., -1, :])                                         # (B, D, chunks, N)
    carry = torch.zeros(batch, dim, nstate, device=u.device)
    starts = []
    for k in range(chunks):                                                  # state into each chunk
        starts.append(carry)
        carry = decay[:, :, k] * carry + h[:, :, k, -1]
    h = h + torch.exp(s) * torch.stack(starts, dim=2)[:, :, :, None, :]
    ct = c[:, 0].float().transpose(1, 2).reshape(batch, 1, chunks, CHUNK, nstate)
    y = (h * ct).sum(-1).view(batch, dim, length) + d[:, None] * u.float()
    return (y * F.silu(z.float())).to(u.dtype)


def step(state, u, delta, z, b, c, a, d, bias):
    """One decode step, state (B, D, N) fp32 updated in place; u, delta, z (B, D); b, c (B, 1, N)."""
    dt = F.softplus(delta.float() + bias)
    state.mul_(torch.exp(dt[..., None] * a)).add_((dt * u.float())[..., None] * b.float())
    y = (state * c.float()).sum(-1) + d * u.float()
    return (y * F.silu(z.float())).to(u.dtype)


def make_call(kernel, dims, dt):
    dev = "cuda"
    if kernel == "selective-scan":
        bsz, dim, length, nstate = dims["B"], dims["D"], dims["L"], dims["N"]
        u, delta, z = (torch.randn(bsz, dim, length, dtype=dt, device=dev) for _ in range(3))
        b, c = (torch.randn(bsz, 1, nstate, length, dtype=dt, device=dev) for _ in range(2))
        a = -torch.empty(dim, nstate, device=dev).uniform_(0.1, 4.0)
        d = torch.randn(dim, device=dev)
        bias = torch.empty(dim, device=dev).uniform_(-3.0, 0.0)
        return lambda: scan(u, delta, z, b, c, a, d, bias)
    if kernel == "selective-state-update":
        bsz, dim, nstate = dims["B"], dims["D"], dims["N"]
        u, delta, z = (torch.randn(bsz, dim, dtype=dt, device=dev) for _ in range(3))
        b, c = (torch.randn(bsz, 1, nstate, dtype=dt, device=dev) for _ in range(2))
        a = -torch.empty(dim, nstate, device=dev).uniform_(0.1, 4.0)
        d = torch.randn(dim, device=dev)
        bias = torch.empty(dim, device=dev).uniform_(-3.0, 0.0)
        state = torch.randn(bsz, dim, nstate, device=dev)
        return lambda: step(state, u, delta, z, b, c, a, d, bias)
    bsz, dim, length, width = dims["B"], dims["D"], dims["L"], dims["W"]
    x = torch.randn(bsz, dim, length, dtype=dt, device=dev)
    w = torch.randn(dim, 1, width, dtype=dt, device=dev) * 0.5
    bias = torch.randn(dim, dtype=dt, device=dev)
    return lambda: F.silu(F.conv1d(x, w, bias, padding=width - 1, groups=dim)[..., :length])


def main():
    run_letter_peers("scan_peer.py", __doc__.splitlines()[0], PEER_NAMES, DTYPES, make_call, CHUNK, "selective-scan", warmup=3, iters=10,
                     shape_width=22)


if __name__ == "__main__":
    main()
