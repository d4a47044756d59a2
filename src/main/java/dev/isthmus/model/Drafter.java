package dev.isthmus.model;

import java.util.List;

/**
 * Proposes the next tokens of each sequence for speculative decoding ({@link SpeculativeGenerator}):
 * the target model then verifies them all in one forward. A drafter sees every sequence's whole
 * context (prompt and the tokens emitted so far) and learns after each round how many of its
 * tokens were kept.
 */
public interface Drafter extends AutoCloseable {
    /**
     * The tokens proposed for one sequence, and the distributions they were drawn from: {@code q[j]}
     * a dense row over the vocabulary for token j, or {@code q} null for a drafter that proposes
     * without sampling (each token with probability one).
     */
    record Draft(int[] tokens, double[][] q) {
        public static final Draft NONE = new Draft(new int[0], null);
    }

    /**
     * Called before the first round of a generation, with the prompts and the longest context any
     * sequence will reach; what an earlier generation left is dropped.
     */
    void start(List<int[]> prompts, int maxLength);

    /**
     * Up to {@code k} tokens to follow each context {@code contexts.get(i)} with {@code active[i]}
     * (prompt and emitted tokens, the last not yet seen by the target); {@link Draft#NONE} for none.
     */
    Draft[] propose(List<List<Integer>> contexts, boolean[] active, int k);

    /** After the target's verification: sequence i kept the first {@code kept[i]} tokens of its draft. */
    void kept(boolean[] active, int[] kept);

    /** What drafts, for reports: "prompt lookup (n-gram 3..1)", "draft model (llama, f32)". */
    String describe();

    /** Frees what the drafter holds for the current generation. */
    @Override
    void close();
}
