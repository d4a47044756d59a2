package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Generation with speculative decoding: each round a {@link Drafter} proposes up to k tokens per
 * sequence, the target model runs the pending token and all drafts of every sequence in one
 * forward (k + 1 new tokens each), and {@link SpeculativeSampling} keeps a prefix of each draft
 * and emits one token more — so a round reads the target's weights once and yields 1 to k + 1
 * tokens per sequence, the output distributed exactly as the target's own sampling (at
 * temperature 0: greedy decoding's tokens). Sequences of a batch keep different counts. Rejected
 * tokens leave no trace: the KV cache is cut back to what was kept, and a model with Mamba layers
 * goes back to the state saved before the round and is fed the kept tokens again with the next
 * round's forward ({@link ContextFeed}).
 */
public final class SpeculativeGenerator {
    private SpeculativeGenerator() {}

    /**
     * @param tokens         the new tokens of each sequence, a stop token included when one ended it
     * @param prefillNanos   the prompts through the target (and the draft model, if any)
     * @param decodeNanos    all rounds
     * @param targetForwards rounds each sequence took part in, summed over the sequences
     * @param drafted        tokens proposed, summed over the sequences
     * @param accepted       of those, the tokens kept
     * @param drafter        {@link Drafter#describe()}
     */
    public record Result(List<int[]> tokens, long prefillNanos, long decodeNanos, long targetForwards, long drafted, long accepted,
                         String drafter) {
        /** Kept drafts over proposed drafts (0 when nothing was proposed). */
        public double acceptanceRate() {
            return drafted == 0 ? 0 : (double) accepted / drafted;
        }

        /** Tokens emitted by the rounds per target forward of a sequence: 1 for plain decoding, up to k + 1. */
        public double tokensPerTargetForward() {
            return targetForwards == 0 ? 0 : (double) decodeTokens() / targetForwards;
        }

        /** Tokens emitted by the rounds per second, over the whole batch. */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : decodeTokens() / (decodeNanos / 1e9);
        }

        /** Every token but each sequence's first (which comes from the prefill). */
        private long decodeTokens() {
            return tokens.stream().mapToLong(t -> Math.max(0, t.length - 1)).sum();
        }
    }

    public static Result generate(DecoderModel target, Drafter drafter, int k, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Generator.Listener listener) {
        return generate(target, drafter, k, prompts, maxNewTokens, sampling, stopTokens, listener, KvCacheType.MODEL_DTYPE);
    }

    /** As above, with the target's KV cache holding {@code kvCacheType} (a draft model keeps its own in its dtype; an fp8 cache the scale 1). */
    public static Result generate(DecoderModel target, Drafter drafter, int k, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Generator.Listener listener, KvCacheType kvCacheType) {
        return generate(target, drafter, k, prompts, maxNewTokens, sampling, stopTokens, listener, kvCacheType, false);
    }

    /** As above; calibrateFp8: an fp8 target cache's scales calibrated on the prompts first, one extra prefill ({@link Fp8Calibration}). */
    public static Result generate(DecoderModel target, Drafter drafter, int k, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Generator.Listener listener, KvCacheType kvCacheType, boolean calibrateFp8) {
        if (kvCacheType == null) throw new IllegalArgumentException("kvCacheType is null");
        if (target == null || drafter == null || prompts == null || sampling == null || stopTokens == null)
            throw new IllegalArgumentException("target, drafter, prompts, sampling and stopTokens must not be null");
        if (k < 1) throw new IllegalArgumentException("k (tokens drafted per round) must be >= 1, got " + k);
        if (prompts.isEmpty()) throw new IllegalArgumentException("no prompts");
        if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
        if (drafter instanceof DraftModel d) d.checkVocabulary(target);
        int batch = prompts.size(), longest = 0, vocab = target.config().vocabSize();
        List<List<Integer>> contexts = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            int[] p = prompts.get(i);
            if (p == null || p.length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            for (int t : p) if (t < 0 || t >= vocab) throw new IllegalArgumentException("token " + t + " of prompt " + i + " is outside the vocabulary of " + vocab);
            longest = Math.max(longest, p.length);
            contexts.add(new ArrayList<>(Arrays.stream(p).boxed().toList()));
        }
        // A round may feed k drafts past the last kept token.
        int maxLength = longest + maxNewTokens + k + 1;
        Sampler[] samplers = new Sampler[batch];
        List<List<Integer>> drawn = new ArrayList<>();
        for (int i = 0; i < batch; i++) {
            samplers[i] = new Sampler(sampling, i);
            drawn.add(new ArrayList<>());
        }
        boolean[] done = new boolean[batch], all = new boolean[batch];
        Arrays.fill(all, true);
        int[] rows = new int[batch], tail = new int[batch];
        long forwards = 0, drafted = 0, accepted = 0;
        try (ContextFeed feed = new ContextFeed(target, batch, maxLength, kvCacheType, calibrateFp8 ? prompts : null)) {
            long start = System.nanoTime();
            try (Tensor logits = feed.feed(contexts, all, false, false, null, rows)) {
                float[] values = logits.toFloatArray();
                for (int i = 0; i < batch; i++)
                    emit(i, new int[] {samplers[i].sample(Arrays.copyOfRange(values, rows[i] * vocab, (rows[i] + 1) * vocab))}, contexts, drawn, done,
                            maxNewTokens, stopTokens, listener);
            }
            drafter.start(prompts, maxLength);
            long prefill = System.nanoTime() - start;
            start = System.nanoTime();
            while (!Generator.allDone(done)) {
                boolean[] active = new boolean[batch];
                for (int i = 0; i < batch; i++) active[i] = !done[i];
                Drafter.Draft[] drafts = drafter.propose(contexts, active, k);
                List<List<Integer>> verified = new ArrayList<>();
                int[] lengths = new int[batch], kept = new int[batch];
                for (int i = 0; i < batch; i++) {
                    lengths[i] = contexts.get(i).size();
                    List<Integer> c = new ArrayList<>(contexts.get(i));
                    if (active[i]) {
                        checkDraft(drafts[i], k, vocab, i);
                        for (int t : drafts[i].tokens()) c.add(t);
                        tail[i] = drafts[i].tokens().length + 1;
                    }
                    verified.add(c);
                }
                try (Tensor logits = feed.feed(verified, active, true, true, tail, rows)) {
                    float[] values = logits.toFloatArray();
                    for (int i = 0; i < batch; i++) {
                        if (!active[i]) continue;
                        Sampler.Distribution[] p = new Sampler.Distribution[tail[i]];
                        for (int j = 0; j < p.length; j++)
                            p[j] = samplers[i].distribution(Arrays.copyOfRange(values, (rows[i] + j) * vocab, (rows[i] + j + 1) * vocab));
                        int[] emitted = SpeculativeSampling.verify(p, drafts[i], samplers[i]);
                        kept[i] = emitted.length - 1;
                        feed.keep(i, lengths[i] + kept[i]);
                        emit(i, emitted, contexts, drawn, done, maxNewTokens, stopTokens, listener);
                        forwards++;
                        drafted += drafts[i].tokens().length;
                        accepted += kept[i];
                    }
                }
                drafter.kept(active, kept);
            }
            long decode = System.nanoTime() - start;
            return new Result(drawn.stream().map(l -> l.stream().mapToInt(Integer::intValue).toArray()).toList(), prefill, decode, forwards,
                    drafted, accepted, drafter.describe());
        }
    }

    private static void checkDraft(Drafter.Draft draft, int k, int vocab, int sequence) {
        if (draft == null || draft.tokens() == null) throw new IllegalArgumentException("the drafter gave sequence " + sequence + " no draft");
        if (draft.tokens().length > k)
            throw new IllegalArgumentException("the drafter proposed " + draft.tokens().length + " tokens for sequence " + sequence + "; k is " + k);
        for (int t : draft.tokens())
            if (t < 0 || t >= vocab) throw new IllegalArgumentException("drafted token " + t + " is outside the vocabulary of " + vocab);
        if (draft.q() != null && (draft.q().length != draft.tokens().length || Arrays.stream(draft.q()).anyMatch(r -> r == null || r.length != vocab)))
            throw new IllegalArgumentException("the drafter's distributions for sequence " + sequence + " are not one row of " + vocab + " per token");
    }

    /** Sequence i's round emitted {@code tokens}; they go to the context and out until it is done. */
    private static void emit(int i, int[] tokens, List<List<Integer>> contexts, List<List<Integer>> drawn, boolean[] done, int maxNewTokens,
                             Set<Integer> stopTokens, Generator.Listener listener) {
        for (int token : tokens) {
            if (done[i]) return;
            drawn.get(i).add(token);
            contexts.get(i).add(token);
            if (listener != null) listener.onToken(i, token);
            if (stopTokens.contains(token) || drawn.get(i).size() >= maxNewTokens) done[i] = true;
        }
    }
}
