package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.Tensor;
import java.util.List;

/**
 * A model's session kept in step with token contexts that grow and are cut back, for speculative
 * decoding: per sequence, how many context tokens the session has seen. A forward feeds each
 * sequence the context tokens it has not seen yet; cutting back either truncates the KV cache or,
 * for a model with Mamba layers (a state cannot be cut back), rewinds to the mark taken before
 * the round and leaves the tokens to be fed again by the next forward — so a rejected draft costs
 * no extra forward.
 */
final class ContextFeed implements AutoCloseable {
    private final DecoderModel model;
    private final Session session;
    private final int[] fed;
    private final boolean recurrent;

    ContextFeed(DecoderModel model, int sequences, int maxLength, KvCacheType kvCacheType) {
        this(model, sequences, maxLength, kvCacheType, null);
    }

    /** fp8Calibration: prompts an fp8 cache's scales are calibrated on ({@link Fp8Calibration}), or null for the scale 1. */
    ContextFeed(DecoderModel model, int sequences, int maxLength, KvCacheType kvCacheType, List<int[]> fp8Calibration) {
        this.model = model;
        this.session = model.newSession(sequences, maxLength, kvCacheType, fp8Calibration);
        this.fed = new int[sequences];
        this.recurrent = session.hasRecurrentState();
    }

    DecoderModel model() {
        return model;
    }

    /**
     * Feeds each active sequence what it has not seen of its context and returns the f32 host
     * logits: with {@code allPositions} one row per fed token (packed by sequence), else one row
     * per active sequence for its last token. With {@code mark}, the Mamba states are saved first,
     * for {@link #keep}. {@code rows[i]} gets the index of sequence i's first row of the last
     * {@code tail[i]} positions (allPositions) or of its only row.
     */
    Tensor feed(List<List<Integer>> contexts, boolean[] active, boolean allPositions, boolean mark, int[] tail, int[] rows) {
        int count = 0;
        for (boolean a : active) if (a) count++;
        int[] sequences = new int[count];
        int[][] tokens = new int[count][];
        int n = 0, row = 0;
        for (int i = 0; i < active.length; i++) {
            if (!active[i]) continue;
            List<Integer> context = contexts.get(i);
            if (context.size() <= fed[i]) throw new IllegalStateException("sequence " + i + " has nothing new to feed");
            if (recurrent && mark) session.mark(i);
            sequences[n] = i;
            tokens[n] = context.subList(fed[i], context.size()).stream().mapToInt(Integer::intValue).toArray();
            if (allPositions) {
                if (tail[i] > tokens[n].length) throw new IllegalStateException("sequence " + i + " fed fewer tokens than the rows asked for");
                rows[i] = row + tokens[n].length - tail[i];
                row += tokens[n].length;
            } else {
                rows[i] = n;
            }
            fed[i] = context.size();
            n++;
        }
        return model.forward(session, sequences, tokens, allPositions);
    }

    /**
     * Sequence i keeps the first {@code length} tokens of its context; what it was fed past them is
     * undone. Tokens of the context past what it was fed are fed by the next {@link #feed}.
     */
    void keep(int i, int length) {
        if (length >= fed[i]) return;
        if (recurrent) {
            session.rewind(i);
            fed[i] = session.length(i);
        } else {
            session.truncate(i, length);
            fed[i] = length;
        }
    }

    /** Tokens of sequence i the session holds. */
    int fed(int i) {
        return fed[i];
    }

    Session session() {
        return session;
    }

    @Override
    public void close() {
        session.close();
    }
}
