package dev.isthmus.model;

import dev.isthmus.random.RandomFill;
import dev.isthmus.tensor.Tensor;

/** The CPU side of {@link Sampling}: each row's distribution by the host sampler's math, the draw in id order. */
final class SamplingReference {
    private SamplingReference() {}

    static void sample(Tensor ids, Tensor probs, Tensor logits, SamplingOptions options, Tensor seeds, Tensor offsets) {
        int rows = (int) logits.dim(0), cols = (int) logits.dim(1);
        float[] all = logits.toFloatArray();
        long[] seed = seeds.toLongArray(), offset = offsets.toLongArray();
        long[] drawn = new long[rows];
        float[] p = new float[rows];
        float[] row = new float[cols];
        for (int r = 0; r < rows; r++) {
            System.arraycopy(all, r * cols, row, 0, cols);
            Sampler.Distribution d = Sampler.distribution(row, options);
            int token = draw(d, RandomFill.unitFloat(seed[r], offset[r]), cols);
            drawn[r] = token;
            p[r] = (float) d.of(token);
            offset[r]++;
        }
        ids.copyFrom(drawn);
        if (probs != null) probs.copyFrom(p);
        offsets.copyFrom(offset);
    }

    /** The first token, in id order, whose running probability exceeds u (the last kept one if rounding leaves u unreached). */
    static int draw(Sampler.Distribution d, double u, int vocab) {
        double[] dense = d.dense(vocab);
        double running = 0;
        int last = d.ids()[0];
        for (int t = 0; t < vocab; t++) {
            if (dense[t] == 0) continue;
            running += dense[t];
            last = t;
            if (running > u) return t;
        }
        return last;
    }
}
