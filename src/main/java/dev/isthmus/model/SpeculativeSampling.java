package dev.isthmus.model;

import java.util.Arrays;

/**
 * The acceptance rule of speculative sampling (Leviathan et al. 2023; Chen et al. 2023): drafted
 * token x_j, drawn from the drafter's q_j, is kept with probability min(1, p_j(x_j) / q_j(x_j))
 * where p_j is the target's distribution after the context and the drafts before it; at the first
 * rejection one token is drawn from max(0, p_j - q_j) normalised and the round ends; when every
 * draft is kept a bonus token is drawn from p_k. Whatever q is, each emitted token is distributed
 * exactly as p. At temperature 0 every p_j is one token with probability one, so a draft is kept
 * exactly when it is the target's argmax and the token emitted at a rejection is the argmax: the
 * output is greedy decoding's, token for token.
 */
final class SpeculativeSampling {
    private SpeculativeSampling() {}

    /**
     * The tokens a round emits: the kept drafts then one more. {@code p} has one distribution per
     * draft token and one after the last; a drafter without distributions ({@code draft.q()} null)
     * proposed each token with probability one.
     */
    static int[] verify(Sampler.Distribution[] p, Drafter.Draft draft, Sampler sampler) {
        int k = draft.tokens().length;
        if (p.length != k + 1) throw new IllegalArgumentException(k + " drafted tokens need " + (k + 1) + " target distributions, got " + p.length);
        int[] out = new int[k + 1];
        for (int j = 0; j < k; j++) {
            int x = draft.tokens()[j];
            double px = p[j].of(x), qx = draft.q() == null ? 1 : draft.q()[j][x];
            // u < px / qx, written so that a draft its drafter gave no probability is kept whenever p allows it.
            if (sampler.uniform() * qx < px) {
                out[j] = x;
                continue;
            }
            out[j] = sampler.draw(residual(p[j], draft.q() == null ? null : draft.q()[j], x));
            return Arrays.copyOf(out, j + 1);
        }
        out[k] = sampler.draw(p[k]);
        return out;
    }

    /** max(0, p - q) normalised; q null: the point mass at {@code drafted}. p itself where nothing is left (p = q). */
    static Sampler.Distribution residual(Sampler.Distribution p, double[] q, int drafted) {
        double[] r = new double[p.ids().length];
        double sum = 0;
        for (int i = 0; i < r.length; i++) {
            int t = p.ids()[i];
            double qt = q == null ? (t == drafted ? 1 : 0) : q[t];
            sum += r[i] = Math.max(0, p.p()[i] - qt);
        }
        if (!(sum > 0)) return p;
        for (int i = 0; i < r.length; i++) r[i] /= sum;
        return new Sampler.Distribution(p.ids(), r);
    }
}
