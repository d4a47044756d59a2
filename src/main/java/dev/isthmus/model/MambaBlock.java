package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The Mamba block (Gu &amp; Dao 2023, figure 3), with D channels, N states and time-step rank R:
 *
 * <pre>
 *   x, z   = in_proj(h)                          (the two halves of in_proj's rows)
 *   x      = silu(causal_conv1d(x))               (conv state: the last W-1 inputs)
 *   dt, B, C = x_proj(x)                          (rows 0..R, R..R+N, R+N..R+2N of x_proj)
 *   delta  = dt_proj(dt)  (its bias is the scan's delta bias, softplus applied in the scan)
 *   y      = selective_scan(x, delta, A = -exp(A_log), B, C, D) * silu(z)   (SSM state)
 *   out    = out_proj(y)
 * </pre>
 *
 * The Jamba variant RMS-normalizes dt, B and C before use. A prompt runs sequence by sequence in
 * the scan's channel-major layout (the projections are GEMMs with a transposed operand, so no
 * transpose kernel is needed); a decode step of every sequence at once runs the one-token conv
 * update and scan step, token-major.
 */
final class MambaBlock implements StateSpaceBlock {
    private final int inner, state, rank;
    private final Tensor wx, wz, convWeight, convBias, wdt, wb, wc, dtProj, out;
    private final Tensor dtNorm, bNorm, cNorm;
    private final float normEps;
    private final ScanWeights scan;

    MambaBlock(Weights w, ModelConfig c, String prefix) {
        inner = c.mambaInner();
        state = c.stateSize();
        rank = c.dtRank();
        long h = c.hiddenSize(), width = c.convKernel();
        if (width < 2) throw new IllegalArgumentException("config.json: a conv kernel of " + width + " is not supported (2 or more)");
        Tensor inProj = w.load(prefix + "in_proj.weight", 2L * inner, h);
        wx = inProj.slice(0, 0, inner);
        wz = inProj.slice(0, inner, 2L * inner);
        convWeight = w.load(prefix + "conv1d.weight", inner, 1, width).reshape(inner, width);
        convBias = w.optional(prefix + "conv1d.bias", c.convBias(), inner);
        Tensor xProj = w.load(prefix + "x_proj.weight", (long) rank + 2L * state, inner);
        wdt = xProj.slice(0, 0, rank);
        wb = xProj.slice(0, rank, rank + state);
        wc = xProj.slice(0, rank + state, rank + 2L * state);
        dtProj = w.load(prefix + "dt_proj.weight", inner, rank);
        out = w.load(prefix + "out_proj.weight", h, inner);
        boolean normed = c.family() == ModelConfig.Family.JAMBA;
        dtNorm = w.optional(prefix + "dt_layernorm.weight", normed, rank);
        bNorm = w.optional(prefix + "b_layernorm.weight", normed, state);
        cNorm = w.optional(prefix + "c_layernorm.weight", normed, state);
        normEps = c.normEps();
        scan = new ScanWeights(stateDecay(w, prefix + "A_log", inner, state), w.loadF32(prefix + "D", inner), w.loadF32(prefix + "dt_proj.bias", inner), true);
    }

    @Override
    public void forward(Step step, int layer, Tensor x, Tensor result) {
        if (step.isFullDecode()) {
            decode(step, layer, x, result);
            return;
        }
        for (int i = 0; i < step.sequences.length; i++) {
            int seq = step.sequences[i];
            prefill(step, layer, seq, step.session.length(seq) > 0, x.slice(0, step.starts[i], step.starts[i + 1]),
                    result.slice(0, step.starts[i], step.starts[i + 1]));
        }
    }

    /** One sequence of L tokens, channel-major: x^T = Wx h^T is (D, L), as the conv and the scan take it. */
    private void prefill(Step step, int layer, int seq, boolean continues, Tensor h, Tensor result) {
        Backend backend = step.backend;
        DType dtype = h.dtype();
        long length = h.dim(0);
        Tensor xt = step.allocate(dtype, 1, inner, length);
        Tensor zt = step.allocate(dtype, 1, inner, length);
        Tensor conv = step.allocate(dtype, 1, inner, length);
        Gemm.gemm(backend, xt.reshape(inner, length), wx, false, h, true, 1f, 0f);
        Gemm.gemm(backend, zt.reshape(inner, length), wz, false, h, true, 1f, 0f);
        Tensor convState = step.session.convState(layer).slice(0, seq, seq + 1);
        CausalConv1d.apply(backend, conv, convState, xt, convWeight, convBias, continues ? convState : null, true);
        Tensor u = conv.reshape(inner, length);
        Tensor delta = step.allocate(dtype, 1, inner, length);
        Tensor b = step.allocate(dtype, 1, 1, state, length);
        Tensor c = step.allocate(dtype, 1, 1, state, length);
        if (dtNorm == null) {
            Tensor dt = step.allocate(dtype, rank, length);
            Gemm.gemm(backend, dt, wdt, false, u, false, 1f, 0f);
            Gemm.gemm(backend, delta.reshape(inner, length), dtProj, false, dt, false, 1f, 0f);
            Gemm.gemm(backend, b.reshape(state, length), wb, false, u, false, 1f, 0f);
            Gemm.gemm(backend, c.reshape(state, length), wc, false, u, false, 1f, 0f);
        } else {
            // The norms run over dt's R and B's, C's N values of each token: compute those token-major.
            Tensor dt = normedProjection(step, u, true, wdt, dtNorm);
            Gemm.gemm(backend, delta.reshape(inner, length), dtProj, false, dt, true, 1f, 0f);
            transposeInto(step, b.reshape(state, length), normedProjection(step, u, true, wb, bNorm));
            transposeInto(step, c.reshape(state, length), normedProjection(step, u, true, wc, cNorm));
        }
        Tensor y = step.allocate(dtype, 1, inner, length);
        Tensor ssm = step.session.ssmState(layer).slice(0, seq, seq + 1);
        SelectiveScan.scan(backend, y, ssm, conv, delta, zt, b, c, scan, continues ? ssm : null);
        Gemm.gemm(backend, result, y.reshape(inner, length), true, out, true, 1f, 0f);
    }

    /** Every sequence of the session advances by one token, token-major (B, D). */
    private void decode(Step step, int layer, Tensor h, Tensor result) {
        Backend backend = step.backend;
        DType dtype = h.dtype();
        long batch = h.dim(0);
        Tensor x = step.allocate(dtype, batch, inner);
        Tensor z = step.allocate(dtype, batch, inner);
        Gemm.gemm(backend, x, h, false, wx, true, 1f, 0f);
        Gemm.gemm(backend, z, h, false, wz, true, 1f, 0f);
        CausalConv1d.update(backend, x, step.session.convState(layer), x, convWeight, convBias, true);
        Tensor dt = normedProjection(step, x, false, wdt, dtNorm);
        Tensor b = normedProjection(step, x, false, wb, bNorm);
        Tensor c = normedProjection(step, x, false, wc, cNorm);
        Tensor delta = step.allocate(dtype, batch, inner);
        Gemm.gemm(backend, delta, dt, false, dtProj, true, 1f, 0f);
        Tensor y = step.allocate(dtype, batch, inner);
        SelectiveScan.step(backend, y, step.session.ssmState(layer), null, x, delta, z, b.reshape(batch, 1, state),
                c.reshape(batch, 1, state), scan);
        Gemm.gemm(backend, result, y, false, out, true, 1f, 0f);
    }

    /** A = -exp(A_log) in f32 on the weights' backend: the state decay as the checkpoint keeps its log. */
    static Tensor stateDecay(Weights w, String name, long... shape) {
        try (Tensor aLog = w.host(name, DType.F32, shape)) {
            float[] values = aLog.toFloatArray();
            for (int i = 0; i < values.length; i++) values[i] = (float) -Math.exp(values[i]);
            return w.upload(Tensor.fromFloats(DType.F32, values, shape));
        }
    }

    /** Token-major x W^T, RMS-normalized by {@code norm} when there is one; x is (T, D), or (D, T) when {@code channelMajor}. */
    private Tensor normedProjection(Step step, Tensor x, boolean channelMajor, Tensor weight, Tensor norm) {
        long tokens = channelMajor ? x.dim(1) : x.dim(0);
        Tensor p = step.allocate(x.dtype(), tokens, weight.dim(0));
        Gemm.gemm(step.backend, p, x, channelMajor, weight, true, 1f, 0f);
        if (norm != null) RmsNorm.apply(step.backend, p, p, norm, normEps);
        return p;
    }

    /** dst (N, T) = src (T, N)^T, as the product I_N src^T (N is the small state size). */
    static void transposeInto(Step step, Tensor dst, Tensor src) {
        long n = dst.dim(0);
        Tensor identity = step.allocate(src.dtype(), n, n);
        float[] ones = new float[(int) (n * n)];
        for (int i = 0; i < n; i++) ones[i * (int) n + i] = 1f;
        try (Tensor host = Tensor.fromFloats(src.dtype(), ones, n, n)) {
            step.backend.copy(identity, host);
        }
        Gemm.gemm(step.backend, dst, identity, false, src, true, 1f, 0f);
    }
}
