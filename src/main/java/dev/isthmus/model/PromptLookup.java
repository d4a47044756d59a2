package dev.isthmus.model;

import java.util.List;

/**
 * Drafts by prompt lookup: the last n tokens of a sequence (n from {@code maxNgram} down to
 * {@code minNgram}) are searched for earlier in its own context — the prompt and the text so far —
 * and the tokens that followed their latest earlier occurrence are proposed. No second model: it
 * pays off where the output repeats the input (summaries, code edits, quoting).
 */
public final class PromptLookup implements Drafter {
    private final int maxNgram, minNgram;

    public PromptLookup(int maxNgram, int minNgram) {
        if (minNgram < 1 || maxNgram < minNgram)
            throw new IllegalArgumentException("n-gram sizes must satisfy 1 <= min <= max, got min " + minNgram + ", max " + maxNgram);
        this.maxNgram = maxNgram;
        this.minNgram = minNgram;
    }

    /** n-grams of 3 down to 1 tokens. */
    public PromptLookup() {
        this(3, 1);
    }

    @Override
    public void start(List<int[]> prompts, int maxLength) {}

    @Override
    public Draft[] propose(List<List<Integer>> contexts, boolean[] active, int k) {
        Draft[] drafts = new Draft[contexts.size()];
        for (int i = 0; i < drafts.length; i++) drafts[i] = active[i] ? new Draft(lookup(contexts.get(i), k, maxNgram, minNgram), null) : Draft.NONE;
        return drafts;
    }

    /** The up to k tokens after the latest earlier occurrence of the longest matching suffix n-gram; none without a match. */
    static int[] lookup(List<Integer> context, int k, int maxNgram, int minNgram) {
        int length = context.size();
        for (int n = Math.min(maxNgram, length - 1); n >= minNgram; n--) {
            // Latest start first: the most recent repetition predicts best.
            for (int start = length - n - 1; start >= 0; start--) {
                boolean match = true;
                for (int j = 0; j < n && match; j++) match = context.get(start + j).equals(context.get(length - n + j));
                if (!match) continue;
                int from = start + n, count = Math.min(k, length - from);
                int[] tokens = new int[count];
                for (int j = 0; j < count; j++) tokens[j] = context.get(from + j);
                return tokens;
            }
        }
        return new int[0];
    }

    @Override
    public void kept(boolean[] active, int[] kept) {}

    @Override
    public String describe() {
        return "prompt lookup (n-grams " + maxNgram + ".." + minNgram + ")";
    }

    @Override
    public void close() {}
}
