package dev.isthmus.scan;

import dev.isthmus.tensor.Tensor;

/**
 * The CPU reference of {@link SelectiveScan}: the recurrence of the paper step by step, in
 * double, one (row, channel) at a time. Arguments are checked by SelectiveScan before this runs.
 */
public final class SelectiveScanReference {
    private SelectiveScanReference() {}

    static void scan(Tensor y, Tensor finalState, Tensor u, Tensor delta, Tensor z, Tensor b, Tensor c,
                     ScanWeights weights, Tensor initialState, Tensor seqStarts) {
        int batch = (int) u.dim(0), channels = (int) u.dim(1), length = (int) u.dim(2);
        int groups = (int) b.dim(1), nstate = (int) b.dim(2);
        // Row r covers steps [starts[r], starts[r+1]) of batch entry batchOf[r].
        int rows;
        long[] starts;
        if (seqStarts == null) {
            rows = batch;
            starts = null;
        } else {
            starts = seqStarts.toLongArray();
            rows = starts.length - 1;
        }
        float[] us = u.toFloatArray(), deltas = delta.toFloatArray(), bs = b.toFloatArray(), cs = c.toFloatArray();
        float[] zs = z == null ? null : z.toFloatArray();
        Params p = Params.of(weights, channels);
        float[] h0 = initialState == null ? new float[rows * channels * nstate] : initialState.toFloatArray();
        float[] out = new float[us.length];
        float[] last = new float[rows * channels * nstate];
        double[] h = new double[nstate];
        for (int row = 0; row < rows; row++) {
            int batchIndex = starts == null ? row : 0;
            int lo = starts == null ? 0 : (int) starts[row];
            int hi = starts == null ? length : (int) starts[row + 1];
            for (int ch = 0; ch < channels; ch++) {
                int state = (row * channels + ch) * nstate;
                for (int n = 0; n < nstate; n++) h[n] = h0[state + n];
                int seq = (batchIndex * channels + ch) * length;
                int bc = (batchIndex * groups + ch / (channels / groups)) * nstate * length;
                for (int t = lo; t < hi; t++) {
                    double dt = p.dt(deltas[seq + t], ch);
                    double acc = 0;
                    for (int n = 0; n < nstate; n++) {
                        h[n] = Math.exp(dt * p.a[ch * nstate + n]) * h[n] + dt * bs[bc + n * length + t] * us[seq + t];
                        acc += cs[bc + n * length + t] * h[n];
                    }
                    out[seq + t] = (float) p.output(acc, us[seq + t], zs == null ? null : zs[seq + t], ch);
                }
                for (int n = 0; n < nstate; n++) last[state + n] = (float) h[n];
            }
        }
        y.copyFrom(out);
        if (finalState != null) finalState.copyFrom(last);
    }

    static void step(Tensor y, Tensor state, Tensor slots, Tensor u, Tensor delta, Tensor z, Tensor b, Tensor c,
                     ScanWeights weights) {
        int batch = (int) u.dim(0), channels = (int) u.dim(1);
        int groups = (int) b.dim(1), nstate = (int) b.dim(2);
        long[] slotOf = slots == null ? null : slots.toLongArray();
        float[] us = u.toFloatArray(), deltas = delta.toFloatArray(), bs = b.toFloatArray(), cs = c.toFloatArray();
        float[] zs = z == null ? null : z.toFloatArray();
        float[] pool = state.toFloatArray();
        Params p = Params.of(weights, channels);
        float[] out = new float[us.length];
        for (int row = 0; row < batch; row++) {
            long slot = slotOf == null ? row : slotOf[row];
            if (slot < 0) continue; // a padding row: y stays 0, its state is not touched
            for (int ch = 0; ch < channels; ch++) {
                int i = row * channels + ch;
                int h = (int) ((slot * channels + ch) * nstate);
                int bc = (row * groups + ch / (channels / groups)) * nstate;
                double dt = p.dt(deltas[i], ch);
                double acc = 0;
                for (int n = 0; n < nstate; n++) {
                    double next = Math.exp(dt * p.a[ch * nstate + n]) * pool[h + n] + dt * bs[bc + n] * us[i];
                    pool[h + n] = (float) next; // the state is kept in f32 between steps
                    acc += cs[bc + n] * next;
                }
                out[i] = (float) p.output(acc, us[i], zs == null ? null : zs[i], ch);
            }
        }
        y.copyFrom(out);
        state.copyFrom(pool);
    }

    /** The fp32 parameters as arrays, and the two pointwise parts of the math. */
    private record Params(float[] a, float[] d, float[] deltaBias, boolean withSoftplus) {
        static Params of(ScanWeights w, int channels) {
            return new Params(w.a().toFloatArray(), w.d() == null ? new float[channels] : w.d().toFloatArray(),
                    w.deltaBias() == null ? new float[channels] : w.deltaBias().toFloatArray(), w.deltaSoftplus());
        }

        /** dt = delta + bias, through softplus(x) = log(1 + e^x) if asked. */
        double dt(float delta, int ch) {
            double x = (double) delta + deltaBias[ch];
            return withSoftplus ? softplus(x) : x;
        }

        /** y = sum_n C h + D u, gated by silu(z) when z is given. */
        double output(double sumCh, float u, Float z, int ch) {
            double out = sumCh + (double) d[ch] * u;
            return z == null ? out : out * silu(z);
        }
    }

    /** log(1 + e^x); for large x, e^x overflows while the result is x itself to double precision. */
    public static double softplus(double x) {
        return x > 30 ? x : Math.log1p(Math.exp(x));
    }

    public static double silu(double x) {
        return x / (1 + Math.exp(-x));
    }
}
