package dev.isthmus.model;

/**
 * How the next token is drawn from a row of logits: greedy (temperature 0: the largest logit,
 * the lowest id on ties), or softmax(logits / temperature) restricted to the {@code topK} largest
 * (0: all), then to the smallest set whose probability reaches {@code topP} (1: all), then to the
 * tokens whose probability is at least {@code minP} times the largest (0: all), drawn with a
 * generator seeded by {@code seed}. NaN logits are never drawn.
 */
public record SamplingOptions(float temperature, int topK, float topP, float minP, long seed) {
    public SamplingOptions {
        if (!(Float.isFinite(temperature) && temperature >= 0)) throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("topK must be >= 0 (0: no limit), got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("topP must be in (0, 1], got " + topP);
        if (!(minP >= 0 && minP <= 1)) throw new IllegalArgumentException("minP must be in [0, 1], got " + minP);
    }

    /** Without a min-p cut. */
    public SamplingOptions(float temperature, int topK, float topP, long seed) {
        this(temperature, topK, topP, 0f, seed);
    }

    public static SamplingOptions greedy() {
        return new SamplingOptions(0f, 0, 1f, 0L);
    }

    public boolean isGreedy() {
        return temperature == 0f;
    }
}
