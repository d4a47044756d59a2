package dev.isthmus.model;

import dev.isthmus.attention.AttentionWorkspace;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.backend.Backend;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * One forward call over a batch: which sequences take part, how many new tokens each brings and
 * where its rows start in the packed (tokens, hidden) activations, plus the scratch tensors the
 * layers allocate for it. A batched decode step borrows them from the session, which keeps them
 * for the next decode step (decode shapes repeat, and a device free would wait for the GPU);
 * other steps free theirs when they close.
 */
final class Step implements AutoCloseable {
    final Session session;
    final Backend backend;
    final int[] sequences;
    final int[] newTokens;
    final int[] starts;
    final int totalTokens;
    private final boolean fullDecode;
    private final List<AutoCloseable> scratch = new ArrayList<>();
    private final List<Tensor> borrowed = new ArrayList<>();
    private AttentionWorkspace attentionWorkspace;
    private MoeLayer.Workspace moeWorkspace;

    Step(Session session, int[] sequences, int[] newTokens) {
        this.session = session;
        this.backend = session.backend();
        this.sequences = sequences.clone();
        this.newTokens = newTokens.clone();
        this.starts = new int[sequences.length + 1];
        for (int i = 0; i < sequences.length; i++) starts[i + 1] = starts[i] + newTokens[i];
        this.totalTokens = starts[sequences.length];
        this.fullDecode = computeFullDecode();
    }

    /** One new token for every sequence of the session, in order: the batched decode step. */
    boolean isFullDecode() {
        return fullDecode;
    }

    private boolean computeFullDecode() {
        if (sequences.length != session.maxSequences()) return false;
        for (int i = 0; i < sequences.length; i++)
            if (sequences[i] != i || newTokens[i] != 1) return false;
        return true;
    }

    /** A tensor on the backend that lives until the step closes. */
    Tensor allocate(DType dtype, long... shape) {
        if (fullDecode) {
            Tensor t = session.borrow(dtype, shape);
            borrowed.add(t);
            return t;
        }
        Tensor t = backend.allocate(dtype, shape);
        scratch.add(t);
        return t;
    }

    /** The attention split plan for this step's batch shape, shared by every attention layer. */
    AttentionWorkspace attentionWorkspace(KvBatch batch, int queryHeads) {
        if (attentionWorkspace == null) {
            attentionWorkspace = AttentionWorkspace.allocate(backend, batch, queryHeads);
            scratch.add(attentionWorkspace);
        }
        return attentionWorkspace;
    }

    /** The MoE buffers for this step's token count, shared by every MoE layer (they have one shape). */
    MoeLayer.Workspace moeWorkspace(int hidden, int intermediate, DType dtype, RouterConfig router) {
        if (moeWorkspace == null) {
            moeWorkspace = MoeLayer.Workspace.allocate(backend, totalTokens, hidden, intermediate, dtype, router);
            scratch.add(moeWorkspace);
        }
        return moeWorkspace;
    }

    @Override
    public void close() {
        borrowed.forEach(session::giveBack);
        borrowed.clear();
        RuntimeException failure = null;
        for (AutoCloseable c : scratch) {
            try {
                c.close();
            } catch (Exception e) {
                if (failure == null) failure = new IllegalStateException("freeing a step's scratch failed", e);
            }
        }
        scratch.clear();
        if (failure != null) throw failure;
    }
}
