package dev.isthmus.model;

import dev.isthmus.attention.KvCache;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The per-sequence caches of a batch of up to {@code maxSequences} sequences of up to
 * {@code maxLength} tokens: a paged KV cache per attention layer, and per Mamba layer a conv state
 * (sequences, D, W-1) in the compute dtype and an SSM state (sequences, D, N) in f32. Sequence
 * {@code i} is row {@code i} of every state and sequence {@code i} of every KV cache.
 */
public final class Session implements AutoCloseable {
    /** Tokens per KV-cache block. */
    static final int BLOCK_SIZE = 32;

    private final DecoderModel model;
    private final int maxSequences;
    private final int maxLength;
    private final int[] lengths;
    private final KvCache[] kvCaches;
    private final Tensor[] convStates;
    private final Tensor[] ssmStates;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final Map<String, ArrayDeque<Tensor>> spare = new HashMap<>();

    Session(DecoderModel model, int maxSequences, int maxLength) {
        if (maxSequences < 1) throw new IllegalArgumentException("maxSequences must be >= 1, got " + maxSequences);
        if (maxLength < 1) throw new IllegalArgumentException("maxLength must be >= 1, got " + maxLength);
        this.model = model;
        this.maxSequences = maxSequences;
        this.maxLength = maxLength;
        this.lengths = new int[maxSequences];
        ModelConfig c = model.config();
        Backend backend = model.backend();
        int layers = c.layers();
        kvCaches = new KvCache[layers];
        convStates = new Tensor[layers];
        ssmStates = new Tensor[layers];
        try {
            int blocksPerSequence = (maxLength + BLOCK_SIZE - 1) / BLOCK_SIZE;
            for (int i = 0; i < layers; i++) {
                if (c.isAttention(i)) {
                    KvCache cache = KvCache.allocate(backend, model.dtype(), maxSequences * blocksPerSequence, BLOCK_SIZE, c.kvHeads(), c.headDim());
                    owned.add(cache);
                    for (int s = 0; s < maxSequences; s++) cache.newSequence();
                    kvCaches[i] = cache;
                } else {
                    convStates[i] = own(backend.allocate(model.dtype(), maxSequences, c.mambaInner(), c.convKernel() - 1));
                    ssmStates[i] = own(backend.allocate(DType.F32, maxSequences, c.mambaInner(), c.stateSize()));
                }
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
    }

    private Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    public int maxSequences() {
        return maxSequences;
    }

    public int maxLength() {
        return maxLength;
    }

    /** Tokens processed so far for sequence {@code i}. */
    public int length(int i) {
        return lengths[i];
    }

    /**
     * Bytes this session holds per sequence: the KV blocks a sequence of {@code tokens} tokens
     * needs in every attention layer plus the fixed Mamba states.
     */
    public long bytesPerSequence(int tokens) {
        ModelConfig c = model.config();
        long bytes = 0;
        long blocks = (tokens + BLOCK_SIZE - 1) / BLOCK_SIZE;
        for (int i = 0; i < c.layers(); i++) {
            if (c.isAttention(i)) bytes += 2 * blocks * BLOCK_SIZE * c.kvHeads() * c.headDim() * (long) model.dtype().byteSize();
            else bytes += convStates[i].byteSize() / maxSequences + ssmStates[i].byteSize() / maxSequences;
        }
        return bytes;
    }

    Backend backend() {
        return model.backend();
    }

    KvCache kvCache(int layer) {
        return kvCaches[layer];
    }

    Tensor convState(int layer) {
        return convStates[layer];
    }

    Tensor ssmState(int layer) {
        return ssmStates[layer];
    }

    /** Checks a step against the session before any work: known sequences, room for the tokens. */
    void checkStep(int[] sequences, int[] newTokens) {
        if (sequences.length != newTokens.length)
            throw new IllegalArgumentException("sequences has " + sequences.length + " entries but tokens " + newTokens.length);
        if (sequences.length == 0) throw new IllegalArgumentException("the step has no sequences");
        boolean[] seen = new boolean[maxSequences];
        for (int i = 0; i < sequences.length; i++) {
            int s = sequences[i];
            if (s < 0 || s >= maxSequences) throw new IllegalArgumentException("sequence " + s + " is outside the session's " + maxSequences);
            if (seen[s]) throw new IllegalArgumentException("sequence " + s + " appears twice in one step");
            seen[s] = true;
            if (newTokens[i] < 1) throw new IllegalArgumentException("sequence " + s + " brings no tokens");
            if ((long) lengths[s] + newTokens[i] > maxLength)
                throw new IllegalArgumentException("sequence " + s + " would reach " + (lengths[s] + newTokens[i]) + " tokens; the session holds "
                        + maxLength);
        }
    }

    /** A scratch tensor of this shape kept from an earlier step, or a new one; hand it back with {@link #giveBack}. */
    Tensor borrow(DType dtype, long... shape) {
        ArrayDeque<Tensor> kept = spare.get(key(dtype, shape));
        if (kept != null && !kept.isEmpty()) return kept.pop();
        Tensor t = model.backend().allocate(dtype, shape);
        owned.add(t);
        return t;
    }

    void giveBack(Tensor t) {
        spare.computeIfAbsent(key(t.dtype(), t.shape()), k -> new ArrayDeque<>()).push(t);
    }

    private static String key(DType dtype, long[] shape) {
        return dtype.label() + Arrays.toString(shape);
    }

    void advance(int[] sequences, int[] newTokens) {
        for (int i = 0; i < sequences.length; i++) lengths[sequences[i]] += newTokens[i];
    }

    @Override
    public void close() {
        for (AutoCloseable c : owned) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException("freeing the session failed", e);
            }
        }
        owned.clear();
        spare.clear();
        Arrays.fill(lengths, 0);
    }
}
