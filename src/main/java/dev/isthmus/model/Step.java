package dev.isthmus.model;

import dev.isthmus.attention.AttentionWorkspace;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.KvCache;
import dev.isthmus.backend.Backend;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One forward call over a batch: which sequences take part, how many new tokens each brings and
 * where its rows start in the packed (tokens, hidden) activations, the KV batch its attention
 * layers share, and the scratch tensors the layers allocate for it.
 *
 * <p>A replayable step (the session's decode step) runs again and again over the same shapes:
 * its first run records the scratch it allocates, and after {@link #rewind()} each later run gets
 * the same tensors back in the same order, so the step's device addresses never change (which a
 * CUDA graph needs) and nothing is allocated after the first run.
 */
final class Step implements AutoCloseable {
    final Session session;
    final Backend backend;
    final int[] sequences;
    final int[] newTokens;
    final int[] starts;
    final int totalTokens;
    private final boolean fullDecode;
    private final boolean replayable;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final List<Tensor> scratch = new ArrayList<>();
    private int next; // of a replayable step: the scratch tensor the next allocate returns
    private KvBatch kvBatch;
    private AttentionWorkspace attentionWorkspace;
    private MoeLayer.Workspace moeWorkspace;

    private Step(Session session, int[] sequences, int[] newTokens, boolean replayable) {
        this.session = session;
        this.backend = session.backend();
        this.sequences = sequences.clone();
        this.newTokens = newTokens.clone();
        this.replayable = replayable;
        this.starts = new int[sequences.length + 1];
        for (int i = 0; i < sequences.length; i++) starts[i + 1] = starts[i] + newTokens[i];
        this.totalTokens = starts[sequences.length];
        this.fullDecode = isFullDecode(session, sequences, newTokens);
    }

    /** A step of {@code newTokens[i]} tokens for sequence {@code sequences[i]}; grows their KV blocks now. */
    static Step of(Session session, int[] sequences, int[] newTokens) {
        Step step = new Step(session, sequences, newTokens, false);
        KvCache cache = session.kvCache();
        if (cache != null) step.kvBatch = step.own(cache.extend(sequences, newTokens));
        return step;
    }

    /** The batched decode step of every sequence of the session, to be run again and again: see {@link #advanceKv()}. */
    static Step replayableDecode(Session session) {
        int[] sequences = new int[session.maxSequences()];
        for (int i = 0; i < sequences.length; i++) sequences[i] = i;
        int[] ones = new int[sequences.length];
        Arrays.fill(ones, 1);
        return new Step(session, sequences, ones, true);
    }

    /**
     * Grows every sequence's KV blocks by this step's tokens, rewriting the same device tables
     * each time (a replayable step's batch is made once, with room for the session's length).
     */
    void advanceKv() {
        KvCache cache = session.kvCache();
        if (cache == null) return;
        if (kvBatch == null) kvBatch = own(cache.extendReusable(sequences, newTokens, session.maxLength()));
        else cache.extend(kvBatch);
    }

    /** The step's KV batch over model layer {@code layer}'s pool. */
    KvBatch kvBatch(int layer) {
        KvCache cache = session.kvCache();
        int pool = session.kvLayer(layer);
        return cache.layer(kvBatch, pool);
    }

    /** One new token for every sequence of the session, in order: the batched decode step. */
    boolean isFullDecode() {
        return fullDecode;
    }

    /** Whether a step of {@code newTokens[i]} tokens for {@code sequences[i]} is the batched decode step of the session. */
    static boolean isFullDecode(Session session, int[] sequences, int[] newTokens) {
        if (sequences.length != session.maxSequences()) return false;
        for (int i = 0; i < sequences.length; i++)
            if (sequences[i] != i || newTokens[i] != 1) return false;
        return true;
    }

    /** Before a replayable step runs again: the next allocate returns the first recorded tensor. */
    void rewind() {
        next = 0;
    }

    /** A tensor on the backend that lives until the step closes (a replayable step's recorded one, on later runs). */
    Tensor allocate(DType dtype, long... shape) {
        if (replayable && next < scratch.size()) {
            Tensor t = scratch.get(next++);
            if (t.dtype() != dtype || !Arrays.equals(t.shape(), shape))
                throw new IllegalStateException("a replayed step asked for " + dtype.label() + Arrays.toString(shape) + " where its first run had "
                        + t.dtype().label() + Arrays.toString(t.shape()));
            return t;
        }
        Tensor t = own(backend.allocate(dtype, shape));
        scratch.add(t);
        if (replayable) next++;
        return t;
    }

    /** The attention split plan for this step's batch shape, shared by every attention layer. */
    AttentionWorkspace attentionWorkspace(KvBatch batch, int queryHeads) {
        if (attentionWorkspace == null) attentionWorkspace = own(AttentionWorkspace.allocate(backend, batch, queryHeads));
        return attentionWorkspace;
    }

    /** The MoE buffers for this step's token count, shared by every MoE layer (they have one shape). */
    MoeLayer.Workspace moeWorkspace(int hidden, int intermediate, DType dtype, RouterConfig router) {
        if (moeWorkspace == null) moeWorkspace = own(MoeLayer.Workspace.allocate(backend, totalTokens, hidden, intermediate, dtype, router));
        return moeWorkspace;
    }

    private <T extends AutoCloseable> T own(T resource) {
        owned.add(resource);
        return resource;
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        for (AutoCloseable c : owned) {
            try {
                c.close();
            } catch (Exception e) {
                if (failure == null) failure = new IllegalStateException("freeing a step's scratch failed", e);
            }
        }
        owned.clear();
        scratch.clear();
        if (failure != null) throw failure;
    }
}
