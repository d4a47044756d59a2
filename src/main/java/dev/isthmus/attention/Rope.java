package dev.isthmus.attention;

/**
 * Rotary position embedding (Su et al. 2021) over the whole head: pair {@code j} of
 * {@code head_dim / 2} is rotated by the angle {@code position * positionScale * f_j}, where
 * {@code f_j = base^(-2j / head_dim)}, or that frequency rescaled by {@link Llama3Scaling} when
 * {@code llama3} is set. Pairs are either adjacent elements {@code (2j, 2j+1)} ("interleaved", the
 * original GPT-J form) or the two halves {@code (j, j + head_dim/2)} ("NeoX", as Llama checkpoints use).
 * {@code positionScale} is linear position interpolation ({@code 1 / factor}); NTK-aware scaling
 * is a different {@code base}.
 *
 * @param llama3 Llama 3.1's per-frequency scaling, or null for none
 */
public record Rope(float base, boolean neox, float positionScale, Llama3Scaling llama3) {
    public Rope {
        if (!(Float.isFinite(base) && base > 1)) throw new IllegalArgumentException("rope base must be finite and > 1, got " + base);
        if (!(Float.isFinite(positionScale) && positionScale > 0))
            throw new IllegalArgumentException("rope positionScale must be finite and > 0, got " + positionScale);
    }

    /** Without Llama 3 scaling. */
    public Rope(float base, boolean neox, float positionScale) {
        this(base, neox, positionScale, null);
    }

    public static Rope neox(float base) {
        return new Rope(base, true, 1f);
    }

    public static Rope interleaved(float base) {
        return new Rope(base, false, 1f);
    }

    public Rope withPositionScale(float scale) {
        return new Rope(base, neox, scale, llama3);
    }

    /** This rope with Llama 3.1's frequency scaling (null: without). */
    public Rope withLlama3Scaling(Llama3Scaling scaling) {
        return new Rope(base, neox, positionScale, scaling);
    }

    /**
     * Llama 3.1's RoPE scaling ({@code rope_type "llama3"} in config.json): with the wavelength
     * {@code w = 2 pi / f} of a frequency {@code f}, {@code low = originalMaxPositions / lowFreqFactor}
     * and {@code high = originalMaxPositions / highFreqFactor}, a frequency stays as it is when
     * {@code w < high}, becomes {@code f / factor} when {@code w > low}, and in between is blended,
     * {@code (1 - s) f / factor + s f} with {@code s = (originalMaxPositions / w - lowFreqFactor) /
     * (highFreqFactor - lowFreqFactor)}. Factor 1 changes nothing.
     */
    public record Llama3Scaling(float factor, float lowFreqFactor, float highFreqFactor, int originalMaxPositions) {
        public Llama3Scaling {
            if (!(Float.isFinite(factor) && factor >= 1))
                throw new IllegalArgumentException("llama3 rope factor must be finite and >= 1, got " + factor);
            if (!(Float.isFinite(lowFreqFactor) && lowFreqFactor > 0))
                throw new IllegalArgumentException("llama3 rope lowFreqFactor must be finite and > 0, got " + lowFreqFactor);
            if (!(Float.isFinite(highFreqFactor) && highFreqFactor > lowFreqFactor))
                throw new IllegalArgumentException("llama3 rope highFreqFactor must be finite and > lowFreqFactor " + lowFreqFactor
                        + ", got " + highFreqFactor);
            if (originalMaxPositions < 1)
                throw new IllegalArgumentException("llama3 rope originalMaxPositions must be >= 1, got " + originalMaxPositions);
        }
    }

    /** Mode code of the C ABI: 1 interleaved, 2 NeoX (0 is no rotation). */
    int mode() {
        return neox ? 2 : 1;
    }
}
