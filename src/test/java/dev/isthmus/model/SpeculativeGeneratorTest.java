package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.ChiSquare;
import dev.isthmus.testing.Expect;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Speculative decoding on the CPU, on tiny random checkpoints of every family: greedy output equal
 * to plain greedy decoding with each drafter, across KV block boundaries; caches and states after
 * a rollback equal to a run that never saw the rejected tokens; sampled output distributed as the
 * target's; bad options refused by name.
 */
class SpeculativeGeneratorTest {
    @TempDir
    Path dir;

    /** A prompt that repeats itself, so that prompt lookup finds matches; and a short one. */
    static final List<int[]> PROMPTS = List.of(new int[] {4, 8, 15, 16, 23, 42, 4, 8, 15, 16, 23, 42, 4, 8, 15, 16, 23, 7}, new int[] {50, 1, 9, 50, 1});

    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void greedyEqualsPlainGreedyWithEveryDrafter(TinyCheckpoints.Kind kind) throws IOException {
        checkGreedy(Backend.cpu(), dir, kind, DType.F32, 1, 4);
    }

    /**
     * Shared with the CUDA test: every drafter's greedy output against plain greedy decoding, 24
     * tokens (sequence 0 crosses a KV block), for each k given.
     */
    static void checkGreedy(Backend backend, Path dir, TinyCheckpoints.Kind kind, DType dtype, int... ks) throws IOException {
        Path target = TinyCheckpoints.write(dir.resolve("target"), kind, 21), other = TinyCheckpoints.write(dir.resolve("draft"), TinyCheckpoints.Kind.LLAMA, 8);
        try (DecoderModel model = DecoderModel.load(backend, target, dtype);
             DecoderModel sameModel = DecoderModel.load(backend, target, dtype);
             DecoderModel otherModel = DecoderModel.load(backend, other, dtype)) {
            List<int[]> plain = Generator.generate(model, PROMPTS, 24, SamplingOptions.greedy(), Set.of(), null).tokens();
            List<Drafter> drafters = List.of(new PromptLookup(), new DraftModel(sameModel, SamplingOptions.greedy()),
                    new DraftModel(otherModel, SamplingOptions.greedy()));
            for (Drafter drafter : drafters) {
                for (int k : ks) {
                    SpeculativeGenerator.Result r;
                    try (drafter) {
                        r = SpeculativeGenerator.generate(model, drafter, k, PROMPTS, 24, SamplingOptions.greedy(), Set.of(), null);
                    }
                    String what = kind + " " + drafter.describe() + " k=" + k;
                    for (int s = 0; s < PROMPTS.size(); s++) assertArrayEquals(plain.get(s), r.tokens().get(s), what + " sequence " + s);
                    assertTrue(r.tokensPerTargetForward() >= 1, what);
                    if (drafter instanceof DraftModel && r.drafter().equals(drafter.describe()) && sameDraft(drafters, drafter))
                        assertEquals(1.0, r.acceptanceRate(), what + ": the target itself as its draft has every token accepted");
                }
            }
        }
    }

    /** Mamba-2 (the golden fixture: its SSD states saved and restored around each rejection), with both kinds of drafter. */
    @Test
    void mamba2GreedyEqualsPlainGreedy() throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("mamba2"), DType.F32);
             DecoderModel draft = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("mamba2"), DType.F32)) {
            List<int[]> plain = Generator.generate(model, PROMPTS, 12, SamplingOptions.greedy(), Set.of(), null).tokens();
            for (Drafter drafter : List.<Drafter>of(new PromptLookup(), new DraftModel(draft, SamplingOptions.greedy()))) {
                try (drafter) {
                    SpeculativeGenerator.Result r = SpeculativeGenerator.generate(model, drafter, 3, PROMPTS, 12, SamplingOptions.greedy(), Set.of(), null);
                    for (int s = 0; s < PROMPTS.size(); s++) assertArrayEquals(plain.get(s), r.tokens().get(s), drafter.describe() + " sequence " + s);
                }
            }
        }
    }

    /** An int8 KV cache cut back after rejections: speculative greedy equals plain greedy over the same cache type. */
    @Test
    void aQuantizedCacheRollsBackToo() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 21);
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32)) {
            List<int[]> plain = Generator.generate(model, PROMPTS, 24, SamplingOptions.greedy(), Set.of(), null, KvCacheType.INT8).tokens();
            SpeculativeGenerator.Result r = SpeculativeGenerator.generate(model, new PromptLookup(), 4, PROMPTS, 24, SamplingOptions.greedy(), Set.of(),
                    null, KvCacheType.INT8);
            for (int s = 0; s < PROMPTS.size(); s++) assertArrayEquals(plain.get(s), r.tokens().get(s), "sequence " + s);
            assertTrue(r.drafted() > r.accepted(), "some drafts were rejected: " + r.accepted() + " of " + r.drafted());
        }
    }

    /**
     * An fp8 target cache calibrated on the prompts: the feed's cache takes the calibrated scales
     * (the prompt's largest code lands on the headroom code), and speculative greedy equals plain
     * greedy calibrated the same way.
     */
    @Test
    void aCalibratedFp8CacheRollsBackToo() throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("llama"), DType.F32)) {
            int[] prompt = PROMPTS.getFirst();
            try (ContextFeed feed = new ContextFeed(model, 1, 64, KvCacheType.FP8_E4M3, List.of(prompt))) {
                Fp8CalibrationTest.assertPromptPeaksAtTheHeadroomCode(model, feed.session(), prompt);
            }
            List<int[]> plain = Generator.generate(model, PROMPTS, 16, SamplingOptions.greedy(), Set.of(), null, KvCacheType.FP8_E4M3, true).tokens();
            SpeculativeGenerator.Result r = SpeculativeGenerator.generate(model, new PromptLookup(), 4, PROMPTS, 16, SamplingOptions.greedy(), Set.of(),
                    null, KvCacheType.FP8_E4M3, true);
            for (int s = 0; s < PROMPTS.size(); s++) assertArrayEquals(plain.get(s), r.tokens().get(s), "sequence " + s);
        }
    }

    private static boolean sameDraft(List<Drafter> drafters, Drafter d) {
        return drafters.get(1) == d;
    }

    /**
     * Drafts fed and then rejected, across a KV block boundary: the next forward's logits, the
     * free blocks and the Mamba states equal those of a session that was only ever fed the kept tokens.
     */
    @ParameterizedTest
    @EnumSource(value = TinyCheckpoints.Kind.class, names = {"LLAMA", "MAMBA", "JAMBA"})
    void aRollbackLeavesNoTrace(TinyCheckpoints.Kind kind) throws IOException {
        checkRollback(Backend.cpu(), dir, kind, 0);
    }

    /**
     * Shared with the CUDA test. The Mamba models replay the kept tokens as the fresh session feeds
     * them (bit for bit); an attention model's next token runs alone against the fresh session's
     * three, so a backend whose kernels depend on the token count is held to {@code bound}.
     */
    static void checkRollback(Backend backend, Path dir, TinyCheckpoints.Kind kind, double bound) throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, kind, 5);
        List<Integer> context = new ArrayList<>();
        for (int i = 0; i < 30; i++) context.add((7 * i + 3) % TinyCheckpoints.VOCAB);
        try (DecoderModel model = DecoderModel.load(backend, checkpoint, DType.F32);
             ContextFeed rolled = new ContextFeed(model, 1, 64, KvCacheType.MODEL_DTYPE); ContextFeed fresh = new ContextFeed(model, 1, 64, KvCacheType.MODEL_DTYPE)) {
            boolean[] one = {true};
            int[] rows = new int[1], tail = {1};
            rolled.feed(List.of(context), one, false, false, null, rows).close();
            List<Integer> drafted = new ArrayList<>(context);
            drafted.addAll(List.of(11, 12, 13, 14)); // to 34 tokens: a second block of 32
            rolled.feed(List.of(drafted), one, true, true, new int[] {4}, rows).close();
            rolled.keep(0, 32); // the first two drafts kept
            List<Integer> next = new ArrayList<>(context);
            next.addAll(List.of(11, 12, 40));
            fresh.feed(List.of(context), one, false, false, null, rows).close();
            try (Tensor a = rolled.feed(List.of(next), one, false, false, tail, rows); Tensor b = fresh.feed(List.of(next), one, false, false, tail, rows)) {
                if (bound == 0 || rolled.session().hasRecurrentState()) assertArrayEquals(b.toFloatArray(), a.toFloatArray(), kind + ": logits after the rollback");
                else assertTrue(Compare.relativeError(a, b) <= bound, kind + ": logits after the rollback, error " + Compare.relativeError(a, b));
            }
            assertEquals(33, rolled.session().length(0));
            if (rolled.session().kvCache() != null)
                assertEquals(fresh.session().kvCache().freeBlockCount(), rolled.session().kvCache().freeBlockCount(), "free KV blocks");
            for (int layer = 0; layer < model.config().layers(); layer++) {
                if (model.config().isAttention(layer)) continue;
                assertArrayEquals(host(backend, fresh.session().ssmState(layer)), host(backend, rolled.session().ssmState(layer)), "SSM state " + layer);
                assertArrayEquals(host(backend, fresh.session().convState(layer)), host(backend, rolled.session().convState(layer)), "conv state " + layer);
            }
        }
    }

    private static float[] host(Backend backend, Tensor t) {
        try (Tensor h = backend.toHost(t)) {
            return h.toFloatArray();
        }
    }

    /**
     * Sampled at temperature 0.4 (sharp enough that the context matters) with a draft model far from the target: over 3000 sequences, the
     * token after the most frequent first token is distributed as the target's distribution there.
     */
    @Test
    void sampledSpeculativeDecodingDrawsFromTheTarget() throws IOException {
        Path target = TinyCheckpoints.write(dir.resolve("target"), TinyCheckpoints.Kind.LLAMA, 3);
        Path other = TinyCheckpoints.write(dir.resolve("draft"), TinyCheckpoints.Kind.QWEN2, 4);
        int[] prompt = {4, 8};
        int vocab = TinyCheckpoints.VOCAB, runs = 3000;
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), target, DType.F32); DecoderModel draft = DecoderModel.load(Backend.cpu(), other, DType.F32)) {
            // Batches of identical prompts: each sequence has its own target and draft generators (seed + its index).
            List<int[]> pairs = new ArrayList<>();
            long[] firstCounts = new long[vocab];
            for (int call = 0; call < runs / 1000; call++) {
                SamplingOptions options = new SamplingOptions(0.4f, 0, 1f, 1_000_000L * call);
                try (DraftModel drafter = new DraftModel(draft, options)) {
                    pairs.addAll(SpeculativeGenerator.generate(model, drafter, 2, Collections.nCopies(1000, prompt), 2, options, Set.of(), null)
                            .tokens());
                }
            }
            for (int[] pair : pairs) firstCounts[pair[0]]++;
            int mode = 0;
            for (int t = 1; t < vocab; t++) if (firstCounts[t] > firstCounts[mode]) mode = t;
            long[] second = new long[vocab];
            for (int[] pair : pairs) if (pair[0] == mode) second[pair[1]]++;
            int[] context = Arrays.copyOf(prompt, prompt.length + 1);
            context[prompt.length] = mode;
            double[] expected;
            try (Session s = model.newSession(1, 16); Tensor logits = model.forward(s, new int[] {0}, new int[][] {context}, false)) {
                expected = new Sampler(new SamplingOptions(0.4f, 0, 1f, 0), 0).distribution(logits.toFloatArray()).dense(vocab);
            }
            assertTrue(firstCounts[mode] > 150, "enough runs with the first token " + mode + ": " + firstCounts[mode]);
            ChiSquare.assertFits("the token after " + mode, second, expected);
        }
    }

    @Test
    void badOptionsAreRefusedByName() throws IOException {
        Path target = TinyCheckpoints.write(dir.resolve("target"), TinyCheckpoints.Kind.LLAMA, 3);
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), target, DType.F32);
             DecoderModel otherVocabulary = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("llama"), DType.F32)) {
            Expect.illegalArgument("k (tokens drafted per round) must be >= 1",
                    () -> SpeculativeGenerator.generate(model, new PromptLookup(), 0, PROMPTS, 4, SamplingOptions.greedy(), Set.of(), null));
            Expect.illegalArgument("must share the target's vocabulary", () -> SpeculativeGenerator.generate(model,
                    new DraftModel(otherVocabulary, SamplingOptions.greedy()), 2, PROMPTS, 4, SamplingOptions.greedy(), Set.of(), null));
            Expect.illegalArgument("n-gram sizes", () -> new PromptLookup(1, 2));
            Expect.illegalArgument("outside the vocabulary", () -> SpeculativeGenerator.generate(model, new PromptLookup(), 2,
                    List.of(new int[] {1, 99}), 4, SamplingOptions.greedy(), Set.of(), null));
        }
    }

    @Test
    void promptLookupProposesWhatFollowedTheLatestMatch() {
        List<Integer> context = List.of(1, 2, 3, 9, 1, 2, 3, 7, 5, 1, 2, 3);
        assertArrayEquals(new int[] {7, 5}, PromptLookup.lookup(context, 2, 3, 1), "the latest 3-gram match is followed by 7, 5");
        assertArrayEquals(new int[] {7, 5, 1, 2}, PromptLookup.lookup(context, 4, 3, 1));
        assertArrayEquals(new int[] {}, PromptLookup.lookup(List.of(1, 2, 3), 4, 3, 1), "no earlier occurrence");
        assertArrayEquals(new int[] {2, 3, 4}, PromptLookup.lookup(List.of(8, 2, 3, 4, 6, 8), 3, 3, 1), "a 1-gram when no longer one matches");
    }
}
