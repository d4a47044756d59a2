package dev.isthmus.moe;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.FloatFormats;
import dev.isthmus.tensor.Tensor;

/**
 * The CPU references of every MoE stage and of the whole layer, written from the math in double.
 * Values the API stores between stages (the SwiGLU activations, the weighted slot outputs) are
 * rounded to the tensors' dtype where they are stored, as the kernels store them. Arguments are
 * checked by the API classes before anything here runs.
 */
final class MoeReference {
    private MoeReference() {}

    /** One token's routing: the k experts, best first, and their weights. */
    record Route(int[] ids, double[] weights) {}

    static Route route(float[] logits, int offset, float[] bias, RouterConfig c) {
        int e = c.experts();
        double[] score = new double[e];
        if (c.scoring() == RouterConfig.Scoring.SOFTMAX) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < e; i++) max = Math.max(max, logits[offset + i]);
            for (int i = 0; i < e; i++) sum += score[i] = Math.exp(logits[offset + i] - max);
            for (int i = 0; i < e; i++) score[i] /= sum;
        } else {
            for (int i = 0; i < e; i++) score[i] = 1 / (1 + Math.exp(-logits[offset + i]));
        }
        double[] choice = new double[e];
        for (int i = 0; i < e; i++) choice[i] = score[i] + (bias == null ? 0 : bias[i]);
        boolean[] excluded = new boolean[e];
        if (c.groups() > 1) {
            int size = e / c.groups();
            double[] groupScore = new double[c.groups()];
            for (int g = 0; g < c.groups(); g++) {
                double best = Double.NEGATIVE_INFINITY, second = Double.NEGATIVE_INFINITY;
                for (int i = g * size; i < (g + 1) * size; i++) {
                    if (choice[i] > best) {
                        second = best;
                        best = choice[i];
                    } else if (choice[i] > second) {
                        second = choice[i];
                    }
                }
                groupScore[g] = size == 1 ? best : best + second;
            }
            boolean[] kept = new boolean[c.groups()];
            for (int round = 0; round < c.topGroups(); round++) kept[argmax(groupScore, kept)] = true;
            for (int i = 0; i < e; i++) excluded[i] = !kept[i / size];
        }
        int[] ids = new int[c.topK()];
        double[] weights = new double[c.topK()];
        double total = 0;
        for (int s = 0; s < c.topK(); s++) {
            ids[s] = argmax(choice, excluded);
            excluded[ids[s]] = true;
            total += score[ids[s]];
        }
        for (int s = 0; s < c.topK(); s++)
            weights[s] = (c.renormalize() ? score[ids[s]] / total : score[ids[s]]) * c.routedScaling();
        return new Route(ids, weights);
    }

    /** The first index of the largest value not yet excluded (ties go to the lower index). */
    private static int argmax(double[] values, boolean[] excluded) {
        int best = -1;
        for (int i = 0; i < values.length; i++)
            if (!excluded[i] && (best < 0 || values[i] > values[best])) best = i;
        return best;
    }

    static void topK(Tensor weights, Tensor ids, Tensor logits, Tensor bias, RouterConfig c) {
        int tokens = Math.toIntExact(logits.dim(0)), k = c.topK();
        float[] z = logits.toFloatArray();
        float[] b = bias == null ? null : bias.toFloatArray();
        float[] w = new float[tokens * k];
        long[] id = new long[tokens * k];
        for (int t = 0; t < tokens; t++) {
            Route r = route(z, t * c.experts(), b, c);
            for (int s = 0; s < k; s++) {
                w[t * k + s] = (float) r.weights()[s];
                id[t * k + s] = r.ids()[s];
            }
        }
        weights.copyFrom(w);
        ids.copyFrom(id);
    }

    /**
     * Histogram, prefix sum of segments padded to the tile, pairs in ascending order per segment;
     * with a capacity C > 0 each expert keeps its first C pairs and the rest are dropped.
     */
    static void align(Dispatch.Buffers out, Tensor ids, int expertCapacity) {
        long[] id = ids.toLongArray();
        int pairs = id.length, experts = out.experts(), tile = out.tile();
        int[] counts = new int[experts];
        for (long e : id) counts[(int) e]++;
        int[] cursor = new int[experts], kept = new int[experts];
        int running = 0;
        for (int e = 0; e < experts; e++) {
            kept[e] = expertCapacity > 0 ? Math.min(counts[e], expertCapacity) : counts[e];
            cursor[e] = running;
            running += (kept[e] + tile - 1) / tile * tile;
        }
        long[] sorted = new long[Math.toIntExact(out.sortedPairs().elementCount())];
        java.util.Arrays.fill(sorted, pairs);
        long[] tileExperts = new long[Math.toIntExact(out.tileExperts().elementCount())];
        java.util.Arrays.fill(tileExperts, -1);
        for (int e = 0; e < experts; e++)
            for (int t = cursor[e] / tile; t < (cursor[e] + kept[e] + tile - 1) / tile; t++) tileExperts[t] = e;
        long[] dropped = new long[pairs];
        int[] taken = new int[experts];
        for (int p = 0; p < pairs; p++) {
            int e = (int) id[p];
            if (taken[e] < kept[e]) sorted[cursor[e] + taken[e]++] = p;
            else dropped[p] = 1;
        }
        long[] countsOut = new long[experts];
        for (int e = 0; e < experts; e++) countsOut[e] = counts[e];
        out.sortedPairs().copyFrom(sorted);
        out.tileExperts().copyFrom(tileExperts);
        out.paddedTotal().copyFrom(new long[] {running});
        out.expertCounts().copyFrom(countsOut);
        out.dropped().copyFrom(dropped);
    }

    /**
     * A grouped projection over the aligned pairs: for each listed pair p of expert e,
     * row p of {@code out} from row (p / rowDiv) of {@code a} and expert e's weights.
     * SwiGLU: out[p, j] = silu(a . w[e, j]) * (a . w[e, n + j]); else out[p, j] = scale[p] * (a . w[e, j]).
     */
    static void grouped(Tensor out, Tensor a, Tensor w, Dispatch.Buffers d, int rowDiv, boolean swiglu, Tensor scale) {
        int n = Math.toIntExact(out.dim(1)), k = Math.toIntExact(a.dim(1));
        int wRows = Math.toIntExact(w.dim(1));
        float[] as = a.toFloatArray(), ws = w.toFloatArray(), o = out.toFloatArray();
        float[] sc = scale == null ? null : scale.toFloatArray();
        long[] sorted = d.sortedPairs().toLongArray(), tileExperts = d.tileExperts().toLongArray();
        long used = d.paddedTotal().toLongArray()[0];
        for (int pos = 0; pos < used; pos++) {
            int pair = (int) sorted[pos];
            if (pair >= d.pairs()) continue;
            long expert = tileExperts[pos / d.tile()];
            int aRow = pair / rowDiv;
            for (int j = 0; j < n; j++) {
                double first = dot(as, aRow * (long) k, ws, (expert * wRows + j) * k, k);
                double v;
                if (swiglu) {
                    double up = dot(as, aRow * (long) k, ws, (expert * wRows + n + j) * k, k);
                    v = silu(first) * up;
                } else {
                    v = first * (sc == null ? 1 : sc[pair]);
                }
                o[pair * n + j] = (float) v;
            }
        }
        out.copyFrom(o);
    }

    static void combine(Tensor out, Tensor slotOut, Tensor dropped, Tensor shared, Tensor residual, int topK) {
        int tokens = Math.toIntExact(out.dim(0)), h = Math.toIntExact(out.dim(1));
        float[] slots = slotOut.toFloatArray();
        long[] drop = dropped == null ? null : dropped.toLongArray();
        float[] sh = shared == null ? null : shared.toFloatArray();
        float[] res = residual == null ? null : residual.toFloatArray();
        float[] o = new float[tokens * h];
        for (int t = 0; t < tokens; t++)
            for (int j = 0; j < h; j++) {
                double sum = 0;
                for (int s = 0; s < topK; s++)
                    if (drop == null || drop[t * topK + s] == 0) sum += slots[(t * topK + s) * h + j];
                if (sh != null) sum += sh[t * h + j];
                if (res != null) sum += res[t * h + j];
                o[t * h + j] = (float) sum;
            }
        out.copyFrom(o);
    }

    /** mean router probability per expert, E * sum f_e P_e with f_e = counts / (T k), mean lse^2. */
    static void routerStats(RouterStats.Result out, Tensor logits, Tensor expertCounts, RouterConfig c) {
        int tokens = Math.toIntExact(logits.dim(0)), e = c.experts();
        float[] z = logits.toFloatArray();
        long[] counts = expertCounts.toLongArray();
        double[] prob = new double[e];
        double zSum = 0;
        for (int t = 0; t < tokens; t++) {
            double max = Double.NEGATIVE_INFINITY, ex = 0, sig = 0;
            for (int i = 0; i < e; i++) max = Math.max(max, z[t * e + i]);
            for (int i = 0; i < e; i++) {
                ex += Math.exp(z[t * e + i] - max);
                sig += sigmoid(z[t * e + i]);
            }
            for (int i = 0; i < e; i++)
                prob[i] += c.scoring() == RouterConfig.Scoring.SOFTMAX ? Math.exp(z[t * e + i] - max) / ex : sigmoid(z[t * e + i]) / sig;
            double lse = max + Math.log(ex);
            zSum += lse * lse;
        }
        float[] mean = new float[e];
        double aux = 0;
        for (int i = 0; i < e; i++) {
            mean[i] = tokens == 0 ? 0f : (float) (prob[i] / tokens);
            double f = tokens == 0 ? 0 : (double) counts[i] / ((double) tokens * c.topK());
            aux += f * (tokens == 0 ? 0 : prob[i] / tokens);
        }
        out.meanProbability().copyFrom(mean);
        out.auxLoss().copyFrom(new float[] {(float) (e * aux)});
        out.zLoss().copyFrom(new float[] {tokens == 0 ? 0f : (float) (zSum / tokens)});
    }

    /**
     * The whole layer as a plain loop over tokens and their chosen experts:
     * y_t = sum_s w_s * W2_e(silu(W1_e x_t) * W3_e x_t) (+ shared_t) (+ residual_t), with the
     * router logits x_t . Wg_e in double. The activations and each weighted slot output are
     * rounded to the dtype, where the layer stores them. With an expert capacity C > 0, an expert
     * serves only the first C (token, slot) pairs routed to it, in token then slot order.
     */
    static void layer(Tensor out, Tensor x, MoeLayer.Weights w, RouterConfig c, Tensor shared, Tensor residual,
                      int expertCapacity) {
        int tokens = Math.toIntExact(x.dim(0)), h = Math.toIntExact(x.dim(1));
        int inter = Math.toIntExact(w.down().dim(2)), e = c.experts();
        DType dtype = x.dtype();
        float[] xs = x.toFloatArray(), gate = w.router().toFloatArray(), up = w.gateUp().toFloatArray(), down = w.down().toFloatArray();
        float[] bias = w.routerBias() == null ? null : w.routerBias().toFloatArray();
        float[] sh = shared == null ? null : shared.toFloatArray();
        float[] res = residual == null ? null : residual.toFloatArray();
        float[] o = new float[tokens * h];
        int[] served = new int[e];
        for (int t = 0; t < tokens; t++) {
            float[] logits = new float[e];
            for (int i = 0; i < e; i++) logits[i] = (float) dot(xs, (long) t * h, gate, (long) i * h, h);
            Route r = route(logits, 0, bias, c);
            double[] y = new double[h];
            for (int s = 0; s < c.topK(); s++) {
                long expert = r.ids()[s];
                if (expertCapacity > 0 && served[(int) expert]++ >= expertCapacity) continue;
                float[] act = new float[inter];
                for (int j = 0; j < inter; j++) {
                    double g = dot(xs, (long) t * h, up, (expert * 2 * inter + j) * h, h);
                    double u = dot(xs, (long) t * h, up, (expert * 2 * inter + inter + j) * h, h);
                    act[j] = FloatFormats.roundTo(dtype, (float) (silu(g) * u));
                }
                for (int n = 0; n < h; n++)
                    y[n] += FloatFormats.roundTo(dtype, (float) (r.weights()[s] * dot(act, 0, down, (expert * h + n) * inter, inter)));
            }
            for (int n = 0; n < h; n++) {
                double v = y[n];
                if (sh != null) v += sh[t * h + n];
                if (res != null) v += res[t * h + n];
                o[t * h + n] = (float) v;
            }
        }
        out.copyFrom(o);
    }

    static double silu(double v) {
        return v / (1 + Math.exp(-v));
    }

    private static double sigmoid(double v) {
        return 1 / (1 + Math.exp(-v));
    }

    private static double dot(float[] a, long aOffset, float[] b, long bOffset, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += (double) a[(int) (aOffset + i)] * b[(int) (bOffset + i)];
        return sum;
    }
}
