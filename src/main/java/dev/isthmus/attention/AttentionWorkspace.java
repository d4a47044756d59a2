package dev.isthmus.attention;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * The split of the KV length chosen for one batch shape, and the f32 partial results it needs:
 * {@code partialOut [splits, totalNewTokens, queryHeads, headDim]} and
 * {@code partialLse [splits, totalNewTokens, queryHeads]}, with int32
 * {@code splitCounts [totalNewTokens, queryHeads]} of zeros in which the decode kernel counts the
 * blocks of a row group done (the last one merges the partials and puts the count back to zero).
 * Java sizes and allocates them here so
 * the native launcher never allocates (and a CUDA graph can capture the launch). On the CPU there
 * is nothing to split: one piece, no buffers. Reusable for any batch of the same or smaller
 * token count and no longer KV length bound (a reusable batch's bound is its capacity, so one
 * workspace serves all its steps).
 */
public final class AttentionWorkspace implements AutoCloseable {
    /** Query rows (GQA group members x new tokens) one block of the CUDA kernel handles. */
    public static final int ROWS_PER_BLOCK = 4;
    /** The kernel's KV tile; split boundaries fall on it. */
    static final int KV_TILE = 32;

    private final int splits;
    private final int chunk;
    private final int maxKvLength;
    private final int tokens;
    private final int queryHeads;
    private final Tensor partialOut;
    private final Tensor partialLse;
    private final Tensor splitCounts;

    private AttentionWorkspace(int splits, int chunk, int maxKvLength, int tokens, int queryHeads, Tensor partialOut, Tensor partialLse,
                               Tensor splitCounts) {
        this.splits = splits;
        this.chunk = chunk;
        this.maxKvLength = maxKvLength;
        this.tokens = tokens;
        this.queryHeads = queryHeads;
        this.partialOut = partialOut;
        this.partialLse = partialLse;
        this.splitCounts = splitCounts;
    }

    /** Plans the split for {@code batch} with {@code queryHeads} heads on {@code backend} ({@link Attention#splitCount}) and allocates its buffers. */
    public static AttentionWorkspace allocate(Backend backend, KvBatch batch, int queryHeads) {
        checkArguments(backend, batch, queryHeads);
        int splits = switch (backend) {
            case CpuBackend cpu -> 1;
            case CudaBackend cuda -> Attention.splitCount(cuda.properties().multiprocessorCount(),
                    AttentionCuda.decodeBlocksPerSm(cuda, batch), batch.batchSize(), batch.kvHeads(), queryHeads, batch.maxNewTokens(),
                    batch.kvLengthBound());
        };
        return allocate(backend, batch, queryHeads, splits);
    }

    /** A workspace for at most {@code splits} pieces of the KV length (the CPU backend always uses one). */
    public static AttentionWorkspace allocate(Backend backend, KvBatch batch, int queryHeads, int splits) {
        checkArguments(backend, batch, queryHeads);
        if (splits < 1 || splits > 1024) throw new IllegalArgumentException("splits must be in [1, 1024], got " + splits);
        if (backend instanceof CpuBackend) splits = 1;
        int maxKv = batch.kvLengthBound();
        int tokens = batch.totalNewTokens();
        // Pieces of whole KV tiles; rounding up may leave fewer pieces than asked for.
        int chunk = (int) (Attention.ceilDiv(Attention.ceilDiv(maxKv, splits), KV_TILE) * KV_TILE);
        splits = (int) Attention.ceilDiv(maxKv, chunk);
        if (splits == 1 || tokens == 0) return new AttentionWorkspace(1, chunk, maxKv, tokens, queryHeads, null, null, null);
        Tensor out = null, lse = null, counts = null;
        try (Tensor zeros = Tensor.allocateHost(DType.I32, tokens, queryHeads)) {
            out = backend.allocate(DType.F32, splits, tokens, queryHeads, batch.headDim());
            lse = backend.allocate(DType.F32, splits, tokens, queryHeads);
            counts = backend.allocate(DType.I32, tokens, queryHeads);
            backend.copy(counts, zeros);
            return new AttentionWorkspace(splits, chunk, maxKv, tokens, queryHeads, out, lse, counts);
        } catch (RuntimeException e) {
            for (Tensor t : new Tensor[] {out, lse, counts}) if (t != null) t.close();
            throw e;
        }
    }

    private static void checkArguments(Backend backend, KvBatch batch, int queryHeads) {
        if (backend == null || batch == null) throw new IllegalArgumentException("backend and batch must not be null");
        if (queryHeads < 1 || queryHeads % batch.kvHeads() != 0)
            throw new IllegalArgumentException("queryHeads " + queryHeads + " is not a positive multiple of the cache's " + batch.kvHeads() + " kv heads");
    }

    /** Pieces each sequence's KV length is split into (1: no split). */
    public int splits() { return splits; }
    /** Keys per piece (a multiple of the kernel's KV tile). */
    public int chunk() { return chunk; }
    Tensor partialOut() { return partialOut; }
    Tensor partialLse() { return partialLse; }
    Tensor splitCounts() { return splitCounts; }

    void checkFits(Backend backend, KvBatch batch, int qHeads) {
        if (splits == 1) return;
        if (partialOut.isClosed()) throw new IllegalArgumentException("workspace is closed");
        if (!partialOut.device().equals(backend.device()))
            throw new IllegalArgumentException("workspace is on " + partialOut.device() + " but the backend runs on " + backend.device());
        if (batch.totalNewTokens() > tokens || qHeads != queryHeads || batch.kvLengthBound() > maxKvLength
                || partialOut.dim(3) != batch.headDim())
            throw new IllegalArgumentException("workspace was planned for " + tokens + " tokens x " + queryHeads + " heads up to KV length "
                    + maxKvLength + "; this batch has " + batch.totalNewTokens() + " x " + qHeads + " up to " + batch.kvLengthBound());
    }

    @Override
    public void close() {
        if (partialOut != null) partialOut.close();
        if (partialLse != null) partialLse.close();
        if (splitCounts != null) splitCounts.close();
    }
}
