package dev.isthmus.scan;

import dev.isthmus.tensor.Tensor;

/** The CPU reference of {@link CausalConv1d}: the sum as written, in double. Checked by CausalConv1d first. */
final class CausalConv1dReference {
    private CausalConv1dReference() {}

    static void apply(Tensor out, Tensor finalState, Tensor x, Tensor weight, Tensor bias, Tensor initialState, boolean silu) {
        int rows = (int) (x.dim(0) * x.dim(1)), channels = (int) x.dim(1), length = (int) x.dim(2);
        int width = (int) weight.dim(1), history = width - 1;
        float[] xs = x.toFloatArray(), w = weight.toFloatArray();
        float[] bs = bias == null ? null : bias.toFloatArray();
        float[] init = initialState == null ? new float[rows * history] : initialState.toFloatArray();
        float[] ys = new float[xs.length];
        float[] last = new float[rows * history];
        for (int r = 0; r < rows; r++) {
            int ch = r % channels;
            // The channel's inputs with its history in front: padded[history + t] = x[t].
            float[] padded = new float[history + length];
            System.arraycopy(init, r * history, padded, 0, history);
            System.arraycopy(xs, r * length, padded, history, length);
            for (int t = 0; t < length; t++) {
                double acc = bs == null ? 0 : bs[ch];
                for (int k = 0; k < width; k++) acc += (double) w[ch * width + k] * padded[t + k];
                ys[r * length + t] = (float) (silu ? SelectiveScanReference.silu(acc) : acc);
            }
            System.arraycopy(padded, length, last, r * history, history);
        }
        out.copyFrom(ys);
        if (finalState != null) finalState.copyFrom(last);
    }

    static void update(Tensor out, Tensor convState, Tensor x, Tensor weight, Tensor bias, boolean silu) {
        int rows = (int) (x.dim(0) * x.dim(1)), channels = (int) x.dim(1);
        int width = (int) weight.dim(1), history = width - 1;
        float[] xs = x.toFloatArray(), w = weight.toFloatArray();
        float[] bs = bias == null ? null : bias.toFloatArray();
        float[] state = convState == null ? new float[0] : convState.toFloatArray();
        float[] ys = new float[rows];
        for (int r = 0; r < rows; r++) {
            int ch = r % channels;
            double acc = bs == null ? 0 : bs[ch];
            for (int k = 0; k < history; k++) acc += (double) w[ch * width + k] * state[r * history + k];
            acc += (double) w[ch * width + history] * xs[r];
            ys[r] = (float) (silu ? SelectiveScanReference.silu(acc) : acc);
            for (int k = 0; k + 1 < history; k++) state[r * history + k] = state[r * history + k + 1];
            if (history > 0) state[r * history + history - 1] = xs[r];
        }
        out.copyFrom(ys);
        if (convState != null) convState.copyFrom(state);
    }
}
