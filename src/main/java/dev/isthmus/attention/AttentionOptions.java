package dev.isthmus.attention;

/**
 * How query row at position {@code p} (its place in its sequence) scores key {@code t}:
 *
 * <pre>
 *   s = scale * q.k                                  (scale: 1/sqrt(head_dim) unless given)
 *   s = softcap * tanh(s / softcap)                  (only when softcap > 0)
 *   key t is visible when t < kvLength
 *                     and (windowLeft  < 0 or t >= p - windowLeft)
 *                     and (windowRight < 0 or t <= p + windowRight)
 *                     and (not causal      or t <= p)
 * </pre>
 *
 * Causal masking is aligned bottom-right: the new tokens are the last ones of the sequence, so a
 * chunk of a prompt or a few speculative tokens see the cached prefix and their predecessors.
 *
 * @param scale softmax scale, or NaN for 1/sqrt(head_dim)
 * @param windowLeft keys before the query that stay visible, or -1 for all
 * @param windowRight keys after the query that stay visible, or -1 for all (causal caps it at 0)
 * @param softcap logit soft-capping value, or 0 for none
 */
public record AttentionOptions(boolean causal, float scale, int windowLeft, int windowRight, float softcap) {
    public AttentionOptions {
        if (!Float.isNaN(scale) && !(Float.isFinite(scale) && scale > 0))
            throw new IllegalArgumentException("scale must be positive and finite (or NaN for the default), got " + scale);
        if (windowLeft < -1) throw new IllegalArgumentException("windowLeft must be >= 0 or -1 (unlimited), got " + windowLeft);
        if (windowRight < -1) throw new IllegalArgumentException("windowRight must be >= 0 or -1 (unlimited), got " + windowRight);
        if (!(Float.isFinite(softcap) && softcap >= 0)) throw new IllegalArgumentException("softcap must be >= 0 and finite, got " + softcap);
    }

    /** Decoder attention: causal, default scale, no window, no soft-cap. */
    public static AttentionOptions decoder() {
        return new AttentionOptions(true, Float.NaN, -1, -1, 0f);
    }

    /** Encoder attention: every key of the sequence visible. */
    public static AttentionOptions encoder() {
        return new AttentionOptions(false, Float.NaN, -1, -1, 0f);
    }

    public AttentionOptions withScale(float newScale) {
        return new AttentionOptions(causal, newScale, windowLeft, windowRight, softcap);
    }

    public AttentionOptions withWindow(int left, int right) {
        return new AttentionOptions(causal, scale, left, right, softcap);
    }

    public AttentionOptions withSoftcap(float cap) {
        return new AttentionOptions(causal, scale, windowLeft, windowRight, cap);
    }

    /** The scale in effect for {@code headDim}. */
    public float scaleFor(int headDim) {
        return Float.isNaN(scale) ? (float) (1.0 / Math.sqrt(headDim)) : scale;
    }

    /** The right window in effect: 0 when causal, -1 for unlimited. */
    int effectiveWindowRight() {
        if (!causal) return windowRight;
        return 0;
    }
}
