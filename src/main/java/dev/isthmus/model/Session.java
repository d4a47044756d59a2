package dev.isthmus.model;

import dev.isthmus.attention.KvCache;
import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The per-sequence caches of a batch of up to {@code maxSequences} sequences of up to
 * {@code maxLength} tokens: a paged KV cache with one pool per attention layer (one allocator
 * and one block table per sequence for all of them), and per Mamba layer a conv state
 * (sequences, D, W-1) in the compute dtype and an SSM state (sequences, D, N) in f32. Sequence
 * {@code i} is row {@code i} of every state and sequence {@code i} of the KV cache.
 *
 * <p>The KV cache holds the model's dtype or, when the session was made with a quantized
 * {@link KvCacheType}, int8 or fp8 codes with their scales (fp8 with the scale 1 throughout).
 *
 * <p>The session also keeps the batched decode step ({@link DecodeStep}) once it has run: on
 * CUDA it is captured as a CUDA graph and replayed, unless {@link #setCudaGraph} turned that off.
 */
public final class Session implements AutoCloseable {
    /** Tokens per KV-cache block. */
    static final int BLOCK_SIZE = 32;

    private final DecoderModel model;
    private final int maxSequences;
    private final int maxLength;
    private final int[] lengths;
    private final KvCacheType kvCacheType;
    private final KvCache kvCache;  // null without attention layers
    private final int[] kvLayer;    // per model layer: its pool in kvCache, or -1
    private final Tensor[] convStates;
    private final Tensor[] ssmStates;
    /** The Mamba states of each sequence as {@link #mark} saw them (allocated at the first mark), and the length then. */
    private Tensor[] markedConv, markedSsm;
    private final int[] markedLengths;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private boolean cudaGraph = true;
    private DecodeStep.Draw draw;
    private boolean stepTiming;
    private boolean closed;
    private DecodeStep decodeStep;
    private GemmWorkspace gemmWorkspace; // the projections' split-K workspace (the own GEMM kernel's)

    Session(DecoderModel model, int maxSequences, int maxLength, KvCacheType kvCacheType) {
        this(model, maxSequences, maxLength, kvCacheType, null);
    }

    /** fp8Scales: an fp8 cache's scales ({@link Fp8Calibration}), or null for the scale 1 (and for the other cache types). */
    Session(DecoderModel model, int maxSequences, int maxLength, KvCacheType kvCacheType, Fp8Calibration.Scales fp8Scales) {
        if (kvCacheType == null) throw new IllegalArgumentException("kvCacheType is null");
        if (fp8Scales != null && kvCacheType != KvCacheType.FP8_E4M3)
            throw new IllegalArgumentException("fp8 scales given for a " + kvCacheType.label() + " KV cache");
        if (maxSequences < 1) throw new IllegalArgumentException("maxSequences must be >= 1, got " + maxSequences);
        if (maxLength < 1) throw new IllegalArgumentException("maxLength must be >= 1, got " + maxLength);
        this.model = model;
        this.maxSequences = maxSequences;
        this.maxLength = maxLength;
        this.kvCacheType = kvCacheType;
        ModelConfig c = model.config();
        Backend backend = model.backend();
        int layers = c.layers();
        kvLayer = new int[layers];
        convStates = new Tensor[layers];
        ssmStates = new Tensor[layers];
        int attentionLayers = 0;
        for (int i = 0; i < layers; i++) kvLayer[i] = c.isAttention(i) ? attentionLayers++ : -1;
        try {
            if (attentionLayers > 0) {
                long blocks = (long) maxSequences * ((maxLength + (long) BLOCK_SIZE - 1) / BLOCK_SIZE);
                if (blocks > Integer.MAX_VALUE)
                    throw new IllegalArgumentException("maxSequences " + maxSequences + " x maxLength " + maxLength + " needs " + blocks
                            + " KV blocks of " + BLOCK_SIZE + " tokens; at most " + Integer.MAX_VALUE);
                KvCache cache = fp8Scales == null
                        ? KvCache.allocate(backend, model.dtype(), kvCacheType, attentionLayers, (int) blocks, BLOCK_SIZE, c.kvHeads(), c.headDim())
                        : KvCache.allocateFp8(backend, model.dtype(), attentionLayers, (int) blocks, BLOCK_SIZE, c.kvHeads(), c.headDim(),
                                fp8Scales.keys(), fp8Scales.values());
                owned.add(cache);
                for (int s = 0; s < maxSequences; s++) cache.newSequence();
                kvCache = cache;
            } else {
                kvCache = null;
            }
            for (int i = 0; i < layers; i++) {
                if (c.isAttention(i)) continue;
                convStates[i] = own(backend.allocate(model.dtype(), maxSequences, c.convChannels(), c.convKernel() - 1));
                ssmStates[i] = own(c.mamba2() == null ? backend.allocate(DType.F32, maxSequences, c.mambaInner(), c.stateSize())
                        : backend.allocate(DType.F32, maxSequences, c.ssdHeads(), c.ssdHeadDim(), c.stateSize()));
            }
            // made here, not on first use, so that no allocation falls inside a decode step's graph capture
            gemmWorkspace = GemmWorkspace.allocate(backend);
            owned.add(gemmWorkspace);
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        // After the caches: a count they could not hold is refused by them, not by an OutOfMemoryError here.
        this.lengths = new int[maxSequences];
        this.markedLengths = new int[maxSequences];
        Arrays.fill(markedLengths, -1);
    }

    /** The split-K workspace the session's projections pass to the GEMM (used where the own kernel runs). */
    GemmWorkspace gemmWorkspace() {
        return gemmWorkspace;
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
     * Empties sequence {@code sequence} so that its slot can take a new prompt: its KV blocks go
     * back to the pool and its Mamba states are zeroed. The other sequences, and the decode step
     * with its CUDA graph, carry on: continuous batching over a fixed set of slots.
     */
    public void reset(int sequence) {
        checkSequence(sequence);
        if (kvCache != null) kvCache.clear(sequence);
        for (Tensor state : convStates) if (state != null) zero(state.slice(0, sequence, sequence + 1));
        for (Tensor state : ssmStates) if (state != null) zero(state.slice(0, sequence, sequence + 1));
        lengths[sequence] = 0;
        markedLengths[sequence] = -1;
    }

    /** Whether a layer keeps a recurrent state (Mamba) that a cut-back KV cache alone cannot undo. */
    public boolean hasRecurrentState() {
        for (Tensor state : ssmStates) if (state != null) return true;
        return false;
    }

    /**
     * Cuts sequence {@code sequence} back to its first {@code length} tokens (speculative
     * decoding's rejected drafts): the KV blocks past them go back to the pool. Only for models
     * without recurrent layers; with Mamba layers use {@link #mark} and {@link #rewind}.
     */
    public void truncate(int sequence, int length) {
        checkSequence(sequence);
        if (hasRecurrentState())
            throw new IllegalArgumentException("the model has recurrent (Mamba) layers, whose state cannot be cut back; use mark and rewind");
        if (length < 0 || length > lengths[sequence])
            throw new IllegalArgumentException("sequence " + sequence + " has " + lengths[sequence] + " tokens; cannot cut it back to " + length);
        if (kvCache != null) kvCache.truncate(sequence, length);
        lengths[sequence] = length;
    }

    /**
     * Remembers sequence {@code sequence} as it is now, for {@link #rewind}: its length, and a copy
     * of its Mamba states (the KV cache needs no copy: tokens past the mark are cut off).
     */
    public void mark(int sequence) {
        checkSequence(sequence);
        for (int i = 0; i < ssmStates.length; i++) {
            if (ssmStates[i] == null) continue;
            if (markedSsm == null) {
                markedConv = new Tensor[ssmStates.length];
                markedSsm = new Tensor[ssmStates.length];
            }
            if (markedSsm[i] == null) {
                markedConv[i] = own(model.backend().allocate(convStates[i].dtype(), convStates[i].shape()));
                markedSsm[i] = own(model.backend().allocate(ssmStates[i].dtype(), ssmStates[i].shape()));
            }
            copyRow(markedConv[i], convStates[i], sequence);
            copyRow(markedSsm[i], ssmStates[i], sequence);
        }
        markedLengths[sequence] = lengths[sequence];
    }

    /**
     * Puts sequence {@code sequence} back as the last {@link #mark} saw it: the KV cache cut back to
     * that length, the Mamba states copied back. The mark stays, for another rewind.
     */
    public void rewind(int sequence) {
        checkSequence(sequence);
        int length = markedLengths[sequence];
        if (length < 0) throw new IllegalArgumentException("sequence " + sequence + " has no mark to rewind to");
        if (length > lengths[sequence])
            throw new IllegalArgumentException("sequence " + sequence + " is shorter (" + lengths[sequence] + ") than its mark (" + length
                    + "): it was reset since");
        if (kvCache != null) kvCache.truncate(sequence, length);
        for (int i = 0; i < ssmStates.length; i++) {
            if (ssmStates[i] == null) continue;
            copyRow(convStates[i], markedConv[i], sequence);
            copyRow(ssmStates[i], markedSsm[i], sequence);
        }
        lengths[sequence] = length;
    }

    private void copyRow(Tensor dst, Tensor src, int row) {
        model.backend().copy(dst.slice(0, row, row + 1), src.slice(0, row, row + 1));
    }

    private void checkSequence(int sequence) {
        if (closed) throw new IllegalArgumentException("the session is closed");
        if (sequence < 0 || sequence >= maxSequences)
            throw new IllegalArgumentException("sequence " + sequence + " is outside the session's " + maxSequences);
    }

    private void zero(Tensor t) {
        try (Tensor zeros = Tensor.allocateHost(t.dtype(), t.shape())) { // an arena's memory starts zeroed
            model.backend().copy(t, zeros);
        }
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
            if (c.isAttention(i)) bytes += 2 * blocks * BLOCK_SIZE * c.kvHeads() * kvBytesPerElementRow(c.headDim());
            else bytes += convStates[i].byteSize() / maxSequences + ssmStates[i].byteSize() / maxSequences;
        }
        return bytes;
    }

    /** Bytes of one (token, kv head) row of K or of V: head_dim elements, and an int8 cache's f32 scale. */
    private long kvBytesPerElementRow(int headDim) {
        return switch (kvCacheType) {
            case MODEL_DTYPE -> (long) headDim * model.dtype().byteSize();
            case INT8 -> headDim + 4L;
            case FP8_E4M3 -> headDim;
        };
    }

    /** What the session's KV cache holds. */
    public KvCacheType kvCacheType() {
        return kvCacheType;
    }

    Backend backend() {
        return model.backend();
    }

    /** The KV cache of every attention layer; null when the model has none. */
    KvCache kvCache() {
        return kvCache;
    }

    /** Model layer {@code layer}'s pool in {@link #kvCache()}. */
    int kvLayer(int layer) {
        return kvLayer[layer];
    }

    DecoderModel model() {
        return model;
    }

    /**
     * Whether the batched decode step on CUDA is captured as a CUDA graph and replayed (the
     * default) or launched kernel by kernel each step, for comparison. Set it before the first
     * decode step; the CPU backend ignores it.
     */
    public void setCudaGraph(boolean enabled) {
        if (decodeStep != null) throw new IllegalStateException("the decode step has already run; set this before it");
        cudaGraph = enabled;
    }

    boolean cudaGraph() {
        return cudaGraph;
    }

    /**
     * Makes the batched decode step draw each sequence's next token itself, as its last kernel:
     * the argmax into {@code ids} (greedy options), or {@link Sampling#sample} with {@code seeds}
     * and {@code offsets} (which the step moves on); on CUDA the draw is then part of the step's
     * graph, so a sampled step is one graph replay and only {@code ids} need come back. The tensors
     * stay the caller's and must outlive the session's decode steps. Set it before the first decode step.
     */
    public void drawOnDevice(SamplingOptions options, Tensor ids, Tensor seeds, Tensor offsets) {
        if (decodeStep != null) throw new IllegalStateException("the decode step has already run; set this before it");
        if (options == null || ids == null) throw new IllegalArgumentException("options and ids must not be null");
        if (!options.isGreedy() && (seeds == null || offsets == null))
            throw new IllegalArgumentException("sampling with a temperature needs seeds and offsets");
        draw = new DecodeStep.Draw(options, ids, seeds, offsets);
    }

    DecodeStep.Draw draw() {
        return draw;
    }

    /**
     * On CUDA, whether each decode step records CUDA events around its launches (the graph's, or
     * every kernel's when eager), for {@link #lastStepDeviceMicros()}: benchmarks compare that
     * device time with the step's wall time.
     */
    public void setStepTiming(boolean enabled) {
        stepTiming = enabled;
    }

    boolean stepTiming() {
        return stepTiming;
    }

    /**
     * Device microseconds of the last decode step, from just before its first launch to just
     * after its last: with a CUDA graph, the time of its kernels back to back. NaN unless
     * {@link #setStepTiming} is on and a decode step ran on CUDA.
     */
    public double lastStepDeviceMicros() {
        return decodeStep == null ? Double.NaN : decodeStep.deviceMicros();
    }

    /** How the decode step runs: "not run yet", "eager" with the reason, or "cuda graph". */
    public String decodeMode() {
        return decodeStep == null ? "not run yet" : decodeStep.mode();
    }

    /** The batched decode step, made on first use and kept with the session. */
    DecodeStep decodeStep() {
        if (decodeStep == null) {
            decodeStep = new DecodeStep(this);
            owned.add(decodeStep);
        }
        return decodeStep;
    }

    Tensor convState(int layer) {
        return convStates[layer];
    }

    Tensor ssmState(int layer) {
        return ssmStates[layer];
    }

    /** Checks a step against the session before any work: known sequences, room for the tokens. */
    void checkStep(int[] sequences, int[] newTokens) {
        if (closed) throw new IllegalArgumentException("the session is closed");
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

    void advance(int[] sequences, int[] newTokens) {
        for (int i = 0; i < sequences.length; i++) lengths[sequences[i]] += newTokens[i];
    }

    @Override
    public void close() {
        RuntimeException failure = null;
        for (int i = owned.size() - 1; i >= 0; i--) { // the decode step (made last) before the caches it reads
            try {
                owned.get(i).close();
            } catch (Exception e) {
                if (failure == null) failure = new IllegalStateException("freeing the session failed", e);
            }
        }
        owned.clear();
        decodeStep = null;
        closed = true;
        if (lengths != null) Arrays.fill(lengths, 0); // null when the constructor failed
        if (failure != null) throw failure;
    }
}
