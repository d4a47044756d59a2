package dev.isthmus.attention;

import java.util.Arrays;

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
 * @param longRope Phi-3's LongRoPE per-frequency factors and attention factor, or null for none
 */
public record Rope(float base, boolean neox, float positionScale, Llama3Scaling llama3, LongRope longRope) {
    public Rope {
        if (!(Float.isFinite(base) && base > 1)) throw new IllegalArgumentException("rope base must be finite and > 1, got " + base);
        if (!(Float.isFinite(positionScale) && positionScale > 0))
            throw new IllegalArgumentException("rope positionScale must be finite and > 0, got " + positionScale);
        if (llama3 != null && longRope != null) throw new IllegalArgumentException("a rope has llama3 or longrope scaling, not both");
    }

    /** Without LongRoPE. */
    public Rope(float base, boolean neox, float positionScale, Llama3Scaling llama3) {
        this(base, neox, positionScale, llama3, null);
    }

    /** Without Llama 3 scaling or LongRoPE. */
    public Rope(float base, boolean neox, float positionScale) {
        this(base, neox, positionScale, null, null);
    }

    public static Rope neox(float base) {
        return new Rope(base, true, 1f);
    }

    public static Rope interleaved(float base) {
        return new Rope(base, false, 1f);
    }

    public Rope withPositionScale(float scale) {
        return new Rope(base, neox, scale, llama3, longRope);
    }

    /** This rope with Llama 3.1's frequency scaling (null: without). */
    public Rope withLlama3Scaling(Llama3Scaling scaling) {
        return new Rope(base, neox, positionScale, scaling, longRope);
    }

    /** This rope with LongRoPE (null: without). */
    public Rope withLongRope(LongRope scaling) {
        return new Rope(base, neox, positionScale, llama3, scaling);
    }

    /**
     * LongRoPE (Ding et al. 2024, as Phi-3 uses it: {@code rope_type "longrope"}): pair {@code j}'s
     * frequency is divided by an extension factor, {@code f_j = base^(-2j / head_dim) / e_j}, with
     * {@code e = shortFactors} while a sequence is at most {@code originalMaxPositions} long and
     * {@code e = longFactors} once it is longer, the choice made per sequence by its length at the
     * end of the step (every token of a step rotated with the same factors; keys already in the
     * cache keep the rotation they were stored with). cos and sin are both multiplied by
     * {@code attentionFactor}, so every attention score grows by its square.
     */
    public record LongRope(float[] shortFactors, float[] longFactors, int originalMaxPositions, float attentionFactor) {
        public LongRope {
            if (shortFactors == null || longFactors == null) throw new IllegalArgumentException("longrope factors must not be null");
            if (shortFactors.length != longFactors.length)
                throw new IllegalArgumentException("longrope short (" + shortFactors.length + ") and long (" + longFactors.length
                        + ") factors differ in length");
            for (float[] factors : new float[][] {shortFactors, longFactors})
                for (float e : factors)
                    if (!(Float.isFinite(e) && e > 0)) throw new IllegalArgumentException("longrope factors must be finite and > 0, got " + e);
            if (originalMaxPositions < 1)
                throw new IllegalArgumentException("longrope originalMaxPositions must be >= 1, got " + originalMaxPositions);
            if (!(Float.isFinite(attentionFactor) && attentionFactor > 0))
                throw new IllegalArgumentException("longrope attentionFactor must be finite and > 0, got " + attentionFactor);
            shortFactors = shortFactors.clone();
            longFactors = longFactors.clone();
        }

        @Override
        public float[] shortFactors() {
            return shortFactors.clone();
        }

        @Override
        public float[] longFactors() {
            return longFactors.clone();
        }

        /** The factors of a sequence {@code length} tokens long. */
        float[] factorsFor(int length) {
            return length > originalMaxPositions ? longFactors : shortFactors;
        }

        @Override
        public boolean equals(Object o) {
            return o instanceof LongRope r && Arrays.equals(shortFactors, r.shortFactors) && Arrays.equals(longFactors, r.longFactors)
                    && originalMaxPositions == r.originalMaxPositions && Float.compare(attentionFactor, r.attentionFactor) == 0;
        }

        @Override
        public int hashCode() {
            return 31 * (31 * Arrays.hashCode(shortFactors) + Arrays.hashCode(longFactors)) + originalMaxPositions;
        }

        @Override
        public String toString() {
            return "LongRope[short=" + Arrays.toString(shortFactors) + ", long=" + Arrays.toString(longFactors) + ", originalMaxPositions="
                    + originalMaxPositions + ", attentionFactor=" + attentionFactor + "]";
        }
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
