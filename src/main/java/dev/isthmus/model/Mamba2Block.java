package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.ssd.Ssd;
import dev.isthmus.ssd.SsdWeights;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The Mamba-2 block (Dao &amp; Gu 2024, figure 6), with D = H P channels in H heads of P, B and C
 * in G groups of N states:
 *
 * <pre>
 *   z, xBC, dt = in_proj(h)                           (rows 0..D, D..2D+2GN, the last H of in_proj)
 *   xBC        = silu(causal_conv1d(xBC))             (conv state: the last W-1 inputs)
 *   x, B, C    = xBC                                  (D, GN and GN channels)
 *   y          = ssd(x, dt, A = -exp(A_log), B, C, D; dt_bias, softplus, time_step_limit)   (SSM state)
 *   y          = gated_rmsnorm(y, z) per group of D / G channels
 *   out        = out_proj(y)
 * </pre>
 *
 * A prompt runs sequence by sequence in pieces of at most {@link #PIECE} tokens, each continuing
 * the conv and SSM states of the last: the conv runs channel-major, and x, B and C are turned
 * token-major for the SSD by products with an identity of the piece's length (there is no
 * transpose kernel). A decode step of every sequence runs the projections and the one-token conv
 * update over the whole batch, then the SSD step row by row (a row's x, B and C are contiguous
 * only within the row).
 */
final class Mamba2Block implements StateSpaceBlock {
    /** Tokens of a prompt piece: bounds the identity the transposes multiply by (PIECE^2 elements). */
    static final int PIECE = 256;

    private final int inner, heads, headDim, groups, state, convChannels;
    private final Tensor wz, wxbc, wdt, convWeight, convBias, xWeight, xBias, bWeight, bBias, cWeight, cBias, norm, out;
    private final float normEps;
    private final SsdWeights ssd;

    Mamba2Block(Weights w, ModelConfig c, String prefix) {
        inner = c.mambaInner();
        heads = c.ssdHeads();
        headDim = c.ssdHeadDim();
        groups = c.mamba2().groups();
        state = c.stateSize();
        convChannels = c.convChannels();
        long h = c.hiddenSize(), width = c.convKernel(), bc = (long) groups * state;
        Tensor inProj = w.load(prefix + "in_proj.weight", inner + convChannels + (long) heads, h);
        wz = inProj.slice(0, 0, inner);
        wxbc = inProj.slice(0, inner, inner + convChannels);
        wdt = inProj.slice(0, inner + convChannels, inner + convChannels + (long) heads);
        convWeight = w.load(prefix + "conv1d.weight", convChannels, 1, width).reshape(convChannels, width);
        convBias = w.optional(prefix + "conv1d.bias", c.convBias(), convChannels);
        // The conv is depthwise: x, B and C each take their rows of its weight and bias (prompt pieces).
        xWeight = convWeight.slice(0, 0, inner);
        bWeight = convWeight.slice(0, inner, inner + bc);
        cWeight = convWeight.slice(0, inner + bc, convChannels);
        xBias = convBias == null ? null : convBias.slice(0, 0, inner);
        bBias = convBias == null ? null : convBias.slice(0, inner, inner + bc);
        cBias = convBias == null ? null : convBias.slice(0, inner + bc, convChannels);
        norm = w.load(prefix + "norm.weight", inner);
        out = w.load(prefix + "out_proj.weight", h, inner);
        normEps = c.normEps();
        ssd = new SsdWeights(MambaBlock.stateDecay(w, prefix + "A_log", heads), w.loadF32(prefix + "D", heads), w.loadF32(prefix + "dt_bias", heads), true,
                c.mamba2().dtMin(), c.mamba2().dtMax());
    }

    @Override
    public void forward(Step step, int layer, Tensor x, Tensor result) {
        if (step.isFullDecode()) {
            decode(step, layer, x, result);
            return;
        }
        for (int i = 0; i < step.sequences.length; i++) {
            int seq = step.sequences[i];
            boolean continues = step.session.length(seq) > 0;
            for (int lo = step.starts[i]; lo < step.starts[i + 1]; lo += PIECE) {
                int hi = Math.min(lo + PIECE, step.starts[i + 1]);
                piece(step, layer, seq, continues || lo > step.starts[i], x.slice(0, lo, hi), result.slice(0, lo, hi));
            }
        }
    }

    /** L tokens of one sequence: the conv channel-major (C, L) per part of xBC, the rest token-major. */
    private void piece(Step step, int layer, int seq, boolean continues, Tensor h, Tensor result) {
        Backend backend = step.backend;
        DType dtype = h.dtype();
        int length = (int) h.dim(0);
        long bc = (long) groups * state;
        Tensor xbcT = step.allocate(dtype, convChannels, length);
        Gemm.gemm(backend, xbcT, wxbc, false, h, true, 1f, 0f);
        Tensor convState = step.session.convState(layer).slice(0, seq, seq + 1);
        Tensor x = convThenTranspose(step, xbcT, convState, 0, inner, xWeight, xBias, continues);
        Tensor b = convThenTranspose(step, xbcT, convState, inner, bc, bWeight, bBias, continues);
        Tensor c = convThenTranspose(step, xbcT, convState, inner + bc, bc, cWeight, cBias, continues);
        Tensor z = step.allocate(dtype, length, inner);
        Gemm.gemm(backend, z, h, false, wz, true, 1f, 0f);
        Tensor dt = step.allocate(dtype, 1, length, heads);
        Gemm.gemm(backend, dt.reshape(length, heads), h, false, wdt, true, 1f, 0f);
        Tensor y = step.allocate(dtype, 1, length, heads, headDim);
        Tensor ssm = step.session.ssmState(layer).slice(0, seq, seq + 1);
        Ssd.scan(backend, y, ssm, x.reshape(1, length, heads, headDim), dt, b.reshape(1, length, groups, state),
                c.reshape(1, length, groups, state), ssd, continues ? ssm : null);
        finish(step, y.reshape(length, inner), z, result);
    }

    /** Channels [from, from + count) of xBC^T (C, L) through the conv (their rows of its state), as (L, count). */
    private Tensor convThenTranspose(Step step, Tensor xbcT, Tensor convState, long from, long count, Tensor weight, Tensor bias,
                                     boolean continues) {
        long length = xbcT.dim(1);
        Tensor in = xbcT.slice(0, from, from + count).reshape(1, count, length);
        Tensor conv = step.allocate(xbcT.dtype(), 1, count, length);
        Tensor partState = convState.reshape(convChannels, convState.dim(2)).slice(0, from, from + count).reshape(1, count, convState.dim(2));
        CausalConv1d.apply(step.backend, conv, partState, in, weight, bias, continues ? partState : null, true);
        Tensor tokenMajor = step.allocate(xbcT.dtype(), length, count);
        MambaBlock.transposeInto(step, tokenMajor, conv.reshape(count, length));
        return tokenMajor;
    }

    /** Every sequence of the session advances by one token: row r is sequence r. */
    private void decode(Step step, int layer, Tensor h, Tensor result) {
        Backend backend = step.backend;
        DType dtype = h.dtype();
        int batch = (int) h.dim(0);
        long bc = (long) groups * state;
        Tensor xbc = step.allocate(dtype, batch, convChannels);
        Tensor z = step.allocate(dtype, batch, inner);
        Tensor dt = step.allocate(dtype, batch, heads);
        Gemm.gemm(backend, xbc, h, false, wxbc, true, 1f, 0f);
        Gemm.gemm(backend, z, h, false, wz, true, 1f, 0f);
        Gemm.gemm(backend, dt, h, false, wdt, true, 1f, 0f);
        CausalConv1d.update(backend, xbc, step.session.convState(layer), xbc, convWeight, convBias, true);
        Tensor y = step.allocate(dtype, batch, heads, headDim);
        Tensor ssm = step.session.ssmState(layer);
        for (int r = 0; r < batch; r++) {
            Tensor row = xbc.slice(0, r, r + 1);
            Ssd.step(backend, y.slice(0, r, r + 1), ssm.slice(0, r, r + 1), null, row.slice(1, 0, inner).reshape(1, heads, headDim),
                    dt.slice(0, r, r + 1), row.slice(1, inner, inner + bc).reshape(1, groups, state),
                    row.slice(1, inner + bc, inner + 2 * bc).reshape(1, groups, state), ssd);
        }
        finish(step, y.reshape(batch, inner), z, result);
    }

    /** result = out_proj(gated_rmsnorm(y, z)), token-major. */
    private void finish(Step step, Tensor y, Tensor z, Tensor result) {
        Tensor normed = step.allocate(y.dtype(), y.dim(0), inner);
        Ssd.gatedRmsNorm(step.backend, normed, y, z, norm, inner / groups, normEps);
        Gemm.gemm(step.backend, result, normed, false, out, true, 1f, 0f);
    }
}
