package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Drafts with a smaller model sharing the target's vocabulary: k tokens drawn one after another
 * from the draft model's own distribution (the same sampling options as the target's, its own
 * seed), each with that distribution q kept for the target's acceptance test. The draft model
 * keeps its own caches in step with the contexts ({@link ContextFeed}); the model itself belongs
 * to the caller.
 */
public final class DraftModel implements Drafter {
    private final DecoderModel draft;
    private final SamplingOptions sampling;
    private ContextFeed feed;
    private Sampler[] samplers;
    /** Each sequence's context length when the last draft was proposed. */
    private int[] contextLengths;

    /** Seeds of the draft's samplers are offset from the target's by this, so the two draw independently. */
    static final long SEED_OFFSET = 0x5DEECE66DL;

    public DraftModel(DecoderModel draft, SamplingOptions sampling) {
        if (draft == null || sampling == null) throw new IllegalArgumentException("draft and sampling must not be null");
        this.draft = draft;
        this.sampling = sampling;
    }

    /** Refuses a target whose vocabulary the draft does not share (the acceptance test compares distributions token by token). */
    void checkVocabulary(DecoderModel target) {
        if (target.config().vocabSize() != draft.config().vocabSize())
            throw new IllegalArgumentException("the draft model's vocabulary has " + draft.config().vocabSize() + " tokens, the target's "
                    + target.config().vocabSize() + ": a draft model must share the target's vocabulary");
    }

    @Override
    public void start(List<int[]> prompts, int maxLength) {
        close(); // a drafter serves one generation at a time: the last one's caches go
        feed = new ContextFeed(draft, prompts.size(), maxLength, KvCacheType.MODEL_DTYPE);
        samplers = new Sampler[prompts.size()];
        for (int i = 0; i < samplers.length; i++) samplers[i] = new Sampler(sampling, i + SEED_OFFSET);
        List<List<Integer>> contexts = new ArrayList<>();
        for (int[] p : prompts) contexts.add(Arrays.stream(p).boxed().toList());
        boolean[] all = new boolean[prompts.size()];
        Arrays.fill(all, true);
        feed.feed(contexts, all, false, false, null, new int[prompts.size()]).close();
    }

    @Override
    public Draft[] propose(List<List<Integer>> contexts, boolean[] active, int k) {
        int batch = contexts.size(), vocab = draft.config().vocabSize();
        List<List<Integer>> extended = new ArrayList<>();
        int[][] tokens = new int[batch][k];
        double[][][] q = new double[batch][k][];
        for (List<Integer> c : contexts) extended.add(new ArrayList<>(c));
        int[] rows = new int[batch];
        contextLengths = new int[batch];
        for (int i = 0; i < batch; i++) contextLengths[i] = contexts.get(i).size();
        for (int j = 0; j < k; j++) {
            try (Tensor logits = feed.feed(extended, active, false, j == 0, null, rows)) {
                float[] all = logits.toFloatArray();
                for (int i = 0; i < batch; i++) {
                    if (!active[i]) continue;
                    float[] row = Arrays.copyOfRange(all, rows[i] * vocab, (rows[i] + 1) * vocab);
                    Sampler.Distribution d = samplers[i].distribution(row);
                    tokens[i][j] = sampling.isGreedy() ? d.ids()[0] : samplers[i].draw(d);
                    q[i][j] = d.dense(vocab);
                    extended.get(i).add(tokens[i][j]);
                }
            }
        }
        Draft[] drafts = new Draft[batch];
        for (int i = 0; i < batch; i++) drafts[i] = active[i] ? new Draft(tokens[i], q[i]) : Draft.NONE;
        return drafts;
    }

    @Override
    public void kept(boolean[] active, int[] kept) {
        // It was fed the context and all but the last drafted token; the tokens kept past what it was
        // fed (all k accepted) come with the next round's context.
        for (int i = 0; i < active.length; i++)
            if (active[i]) feed.keep(i, contextLengths[i] + kept[i]);
    }

    @Override
    public String describe() {
        return "draft model (" + draft.config().family().name().toLowerCase() + ", " + draft.dtype().label() + ")";
    }

    @Override
    public void close() {
        if (feed != null) feed.close();
        feed = null;
    }
}
