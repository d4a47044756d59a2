package dev.isthmus.moe;

/**
 * How a router turns logits into k experts and their weights.
 *
 * <ul>
 *   <li>{@code scoring}: SOFTMAX (score = softmax(z) over all experts, Mixtral) or SIGMOID
 *       (score = sigmoid(z), DeepSeek-V3);</li>
 *   <li>the per-expert bias given to {@link Router#topK} is added to the score to choose experts
 *       and left out of the weights;</li>
 *   <li>{@code renormalize}: weights are divided by the sum of the chosen scores (softmax
 *       renormalized over the top k equals the softmax of the top-k logits);</li>
 *   <li>{@code groups > 1}: grouped top-k. A group scores the sum of its two best choice scores
 *       (its best one when a group holds one expert); only the {@code topGroups} best groups are
 *       eligible;</li>
 *   <li>{@code routedScaling} multiplies every weight.</li>
 * </ul>
 * Ties go to the lower expert (and the lower group). Scores are fp32 on the GPU, double on the CPU.
 */
public record RouterConfig(int experts, int topK, Scoring scoring, boolean renormalize, int groups, int topGroups,
                           float routedScaling) {

    public enum Scoring {
        SOFTMAX, SIGMOID;

        /** The isthmus_moe_scoring code. */
        int code() {
            return ordinal();
        }
    }

    /** Limits of the CUDA router (isthmus.h ISTHMUS_MOE_MAX_*), enforced on every backend. */
    public static final int MAX_EXPERTS = 1024;
    public static final int MAX_TOP_K = 32;
    public static final int MAX_GROUPS = 64;

    public RouterConfig {
        if (experts < 1 || experts > MAX_EXPERTS)
            throw new IllegalArgumentException("experts must be in [1, " + MAX_EXPERTS + "], got " + experts);
        if (topK < 1 || topK > MAX_TOP_K)
            throw new IllegalArgumentException("topK must be in [1, " + MAX_TOP_K + "], got " + topK);
        if (topK > experts) throw new IllegalArgumentException("topK " + topK + " exceeds experts " + experts);
        if (scoring == null) throw new IllegalArgumentException("scoring is null");
        if (groups < 1 || groups > MAX_GROUPS || experts % groups != 0)
            throw new IllegalArgumentException("groups " + groups + " must divide experts " + experts + " and be in [1, " + MAX_GROUPS + "]");
        if (topGroups < 1 || topGroups > groups)
            throw new IllegalArgumentException("topGroups " + topGroups + " must be in [1, groups " + groups + "]");
        if (topK > topGroups * (experts / groups))
            throw new IllegalArgumentException("topK " + topK + " exceeds the " + topGroups * (experts / groups)
                    + " experts in topGroups " + topGroups + " groups of " + experts / groups);
        if (!Float.isFinite(routedScaling)) throw new IllegalArgumentException("routedScaling must be finite, got " + routedScaling);
    }

    /** Softmax top-k without groups (Mixtral: {@code softmax(8, 2, true)}). */
    public static RouterConfig softmax(int experts, int topK, boolean renormalize) {
        return new RouterConfig(experts, topK, Scoring.SOFTMAX, renormalize, 1, 1, 1f);
    }

    /** Sigmoid scores, grouped, renormalized and scaled (DeepSeek-V3: {@code sigmoidGrouped(256, 8, 8, 4, 2.5f)}). */
    public static RouterConfig sigmoidGrouped(int experts, int topK, int groups, int topGroups, float routedScaling) {
        return new RouterConfig(experts, topK, Scoring.SIGMOID, true, groups, topGroups, routedScaling);
    }
}
