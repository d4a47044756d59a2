package dev.isthmus.ssd;

import static dev.isthmus.scan.SelectiveScanReference.silu;
import static dev.isthmus.scan.SelectiveScanReference.softplus;

import dev.isthmus.tensor.Tensor;

/**
 * The CPU reference of {@link Ssd}: the recurrence step by step, in double, one (row, head) at a
 * time, with no chunks (the chunked form is the kernel's business). Arguments are checked by Ssd
 * before this runs.
 */
final class SsdReference {
    private SsdReference() {}

    static void scan(Tensor y, Tensor finalStates, Tensor x, Tensor dt, Tensor b, Tensor c, SsdWeights weights,
                     Tensor initialStates, Tensor seqStarts) {
        int batch = (int) x.dim(0), length = (int) x.dim(1), heads = (int) x.dim(2), headDim = (int) x.dim(3);
        int groups = (int) b.dim(2), nstate = (int) b.dim(3);
        long[] starts = seqStarts == null ? null : seqStarts.toLongArray();
        int rows = starts == null ? batch : starts.length - 1;
        float[] xs = x.toFloatArray(), dts = dt.toFloatArray(), bs = b.toFloatArray(), cs = c.toFloatArray();
        Params p = Params.of(weights, heads);
        int stateSize = headDim * nstate;
        float[] h0 = initialStates == null ? new float[rows * heads * stateSize] : initialStates.toFloatArray();
        float[] out = new float[xs.length];
        float[] last = new float[rows * heads * stateSize];
        double[] s = new double[stateSize];
        for (int row = 0; row < rows; row++) {
            int batchIndex = starts == null ? row : 0;
            int lo = starts == null ? 0 : (int) starts[row];
            int hi = starts == null ? length : (int) starts[row + 1];
            for (int h = 0; h < heads; h++) {
                int state = (row * heads + h) * stateSize;
                for (int i = 0; i < stateSize; i++) s[i] = h0[state + i];
                int g = h / (heads / groups);
                for (int t = lo; t < hi; t++) {
                    long token = (long) batchIndex * length + t;
                    double step = p.dt(dts[(int) (token * heads + h)], h);
                    double decay = Math.exp(step * p.a[h]);
                    int xi = (int) ((token * heads + h) * headDim), bc = (int) ((token * groups + g) * nstate);
                    for (int q = 0; q < headDim; q++) {
                        double acc = 0;
                        for (int n = 0; n < nstate; n++) {
                            int i = q * nstate + n;
                            s[i] = decay * s[i] + step * xs[xi + q] * bs[bc + n];
                            acc += cs[bc + n] * s[i];
                        }
                        out[xi + q] = (float) (acc + (double) p.d[h] * xs[xi + q]);
                    }
                }
                for (int i = 0; i < stateSize; i++) last[state + i] = (float) s[i];
            }
        }
        y.copyFrom(out);
        if (finalStates != null) finalStates.copyFrom(last);
    }

    static void step(Tensor y, Tensor state, Tensor slots, Tensor x, Tensor dt, Tensor b, Tensor c, SsdWeights weights) {
        int batch = (int) x.dim(0), heads = (int) x.dim(1), headDim = (int) x.dim(2);
        int groups = (int) b.dim(1), nstate = (int) b.dim(2);
        long[] slotOf = slots == null ? null : slots.toLongArray();
        float[] xs = x.toFloatArray(), dts = dt.toFloatArray(), bs = b.toFloatArray(), cs = c.toFloatArray();
        float[] pool = state.toFloatArray();
        Params p = Params.of(weights, heads);
        float[] out = new float[xs.length];
        for (int row = 0; row < batch; row++) {
            long slot = slotOf == null ? row : slotOf[row];
            if (slot < 0) continue; // a padding row: y stays 0, its state is not touched
            for (int h = 0; h < heads; h++) {
                double step = p.dt(dts[row * heads + h], h);
                double decay = Math.exp(step * p.a[h]);
                int xi = (row * heads + h) * headDim, bc = (row * groups + h / (heads / groups)) * nstate;
                long s = (slot * heads + h) * headDim * nstate;
                for (int q = 0; q < headDim; q++) {
                    double acc = 0;
                    for (int n = 0; n < nstate; n++) {
                        int i = (int) (s + (long) q * nstate + n);
                        double next = decay * pool[i] + step * xs[xi + q] * bs[bc + n];
                        pool[i] = (float) next; // the state is kept in f32 between steps
                        acc += cs[bc + n] * next;
                    }
                    out[xi + q] = (float) (acc + (double) p.d[h] * xs[xi + q]);
                }
            }
        }
        y.copyFrom(out);
        state.copyFrom(pool);
    }

    static void gatedRmsNorm(Tensor out, Tensor y, Tensor z, Tensor weight, long groupSize, float eps) {
        float[] ys = y.toFloatArray(), zs = z == null ? null : z.toFloatArray(), w = weight.toFloatArray();
        int group = (int) groupSize;
        float[] result = new float[ys.length];
        double[] v = new double[group];
        for (int start = 0; start < ys.length; start += group) {
            double squares = 0;
            for (int i = 0; i < group; i++) {
                int at = start + i;
                v[i] = zs == null ? ys[at] : ys[at] * silu(zs[at]);
                squares += v[i] * v[i];
            }
            double scale = 1 / Math.sqrt(squares / group + eps);
            for (int i = 0; i < group; i++) {
                int at = start + i;
                result[at] = (float) (v[i] * scale * w[at % w.length]);
            }
        }
        out.copyFrom(result);
    }

    /** The fp32 parameters as arrays, and dt' = clamp(softplus(dt + bias), dtMin, dtMax). */
    private record Params(float[] a, float[] d, float[] dtBias, boolean withSoftplus, double dtMin, double dtMax) {
        static Params of(SsdWeights w, int heads) {
            return new Params(w.a().toFloatArray(), w.d() == null ? new float[heads] : w.d().toFloatArray(),
                    w.dtBias() == null ? new float[heads] : w.dtBias().toFloatArray(), w.dtSoftplus(), w.dtMin(), w.dtMax());
        }

        double dt(float dt, int h) {
            double v = (double) dt + dtBias[h];
            if (withSoftplus) v = softplus(v);
            return Math.min(Math.max(v, dtMin), dtMax);
        }
    }
}
