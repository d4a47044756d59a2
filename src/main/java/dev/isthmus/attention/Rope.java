package dev.isthmus.attention;

/**
 * Rotary position embedding (Su et al. 2021) over the whole head: pair {@code j} of
 * {@code head_dim / 2} is rotated by the angle {@code position * positionScale * base^(-2j / head_dim)}.
 * Pairs are either adjacent elements {@code (2j, 2j+1)} ("interleaved", the original GPT-J
 * form) or the two halves {@code (j, j + head_dim/2)} ("NeoX", as Llama checkpoints use).
 * {@code positionScale} is the hook for long-context variants: linear position interpolation
 * uses {@code 1 / factor}; NTK-aware scaling is a different {@code base}.
 */
public record Rope(float base, boolean neox, float positionScale) {
    public Rope {
        if (!(Float.isFinite(base) && base > 1)) throw new IllegalArgumentException("rope base must be finite and > 1, got " + base);
        if (!(Float.isFinite(positionScale) && positionScale > 0))
            throw new IllegalArgumentException("rope positionScale must be finite and > 0, got " + positionScale);
    }

    public static Rope neox(float base) {
        return new Rope(base, true, 1f);
    }

    public static Rope interleaved(float base) {
        return new Rope(base, false, 1f);
    }

    public Rope withPositionScale(float scale) {
        return new Rope(base, neox, scale);
    }

    /** Mode code of the C ABI: 1 interleaved, 2 NeoX (0 is no rotation). */
    int mode() {
        return neox ? 2 : 1;
    }
}
