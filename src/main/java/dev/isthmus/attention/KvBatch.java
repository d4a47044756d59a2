package dev.isthmus.attention;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.Set;

/**
 * One batch of sequences over a paged KV cache, as the attention operations read it.
 *
 * <p>The cache is a pool of blocks, keys and values each {@code [numBlocks, blockSize, kvHeads,
 * headDim]}. Sequence {@code b} owns the blocks {@code blockTable[b][0..]}; its token {@code t}
 * lives in block {@code blockTable[b][t / blockSize]} at offset {@code t % blockSize}. The batch
 * brings {@code newTokens[b]} new tokens (queries, and the keys/values that {@link Attention#append}
 * writes) after {@code cachedLens[b]} tokens already in the cache, so the sequence is
 * {@code kvLength(b) = cachedLens[b] + newTokens[b]} long and new token {@code i} sits at position
 * {@code cachedLens[b] + i}. Queries are packed without padding: sequence {@code b}'s rows are
 * {@code [queryStarts[b], queryStarts[b + 1])} of q.
 *
 * <p>Everything is checked here, in Java, once: block ids inside the pool, lengths within the
 * blocks a sequence owns. The integer tables are copied to the backend's device (int32) and
 * freed by {@link #close()}; the cache tensors are borrowed, not owned.
 */
public final class KvBatch implements AutoCloseable {
    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    private final Tensor keys;
    private final Tensor values;
    private final int[] cachedLens;
    private final int[] newTokens;
    private final int[] queryStarts;
    private final int maxBlocksPerSequence;
    private final int[] table; // host copy of blockTableTensor, row-major
    private final Tensor blockTableTensor;
    private final Tensor cachedLensTensor;
    private final Tensor queryStartsTensor;

    private KvBatch(Backend backend, Tensor keys, Tensor values, int[][] blockTables, int[] cachedLens, int[] newTokens) {
        this.keys = keys;
        this.values = values;
        this.cachedLens = cachedLens.clone();
        this.newTokens = newTokens.clone();
        int batch = cachedLens.length;
        queryStarts = new int[batch + 1];
        for (int b = 0; b < batch; b++) queryStarts[b + 1] = Math.addExact(queryStarts[b], newTokens[b]);
        int widest = 1;
        for (int[] row : blockTables) widest = Math.max(widest, row.length);
        maxBlocksPerSequence = widest;
        table = new int[batch * widest];
        for (int b = 0; b < batch; b++)
            System.arraycopy(blockTables[b], 0, table, b * widest, blockTables[b].length);
        Tensor t = null, c = null, q = null;
        try {
            t = deviceInts(backend, Arrays.stream(table).asLongStream().toArray(), batch, widest);
            c = deviceInts(backend, Arrays.stream(cachedLens).asLongStream().toArray(), batch);
            q = deviceInts(backend, Arrays.stream(queryStarts).asLongStream().toArray(), batch + 1);
        } catch (RuntimeException e) {
            for (Tensor x : new Tensor[] {t, c, q}) if (x != null) x.close();
            throw e;
        }
        blockTableTensor = t;
        cachedLensTensor = c;
        queryStartsTensor = q;
    }

    /**
     * A batch over the cache tensors {@code keys} and {@code values} (same dtype and shape
     * {@code [numBlocks, blockSize, kvHeads, headDim]}, on the backend's device).
     *
     * @param blockTables per sequence, the ids of the blocks it owns, in order
     * @param cachedLens per sequence, the tokens already in the cache
     * @param newTokens per sequence, the tokens this batch adds (and queries with); may be 0
     */
    public static KvBatch of(Backend backend, Tensor keys, Tensor values, int[][] blockTables, int[] cachedLens, int[] newTokens) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkCache(backend, keys, values);
        if (blockTables == null || cachedLens == null || newTokens == null)
            throw new IllegalArgumentException("blockTables, cachedLens and newTokens must not be null");
        int batch = blockTables.length;
        if (batch == 0) throw new IllegalArgumentException("blockTables is empty; a batch needs at least one sequence");
        if (cachedLens.length != batch || newTokens.length != batch)
            throw new IllegalArgumentException("blockTables has " + batch + " sequences but cachedLens has " + cachedLens.length
                    + " and newTokens " + newTokens.length);
        long numBlocks = keys.dim(0);
        long blockSize = keys.dim(1);
        long totalNew = 0;
        for (int b = 0; b < batch; b++) {
            int[] table = blockTables[b];
            if (table == null) throw new IllegalArgumentException("blockTables[" + b + "] is null");
            for (int j = 0; j < table.length; j++)
                if (table[j] < 0 || table[j] >= numBlocks)
                    throw new IllegalArgumentException("blockTables[" + b + "][" + j + "] = " + table[j]
                            + " points outside the pool of " + numBlocks + " blocks");
            if (cachedLens[b] < 0) throw new IllegalArgumentException("cachedLens[" + b + "] = " + cachedLens[b] + " is negative");
            if (newTokens[b] < 0) throw new IllegalArgumentException("newTokens[" + b + "] = " + newTokens[b] + " is negative");
            long length = (long) cachedLens[b] + newTokens[b];
            if (length > Integer.MAX_VALUE) throw new IllegalArgumentException("sequence " + b + " has length " + length + "; at most " + Integer.MAX_VALUE);
            long capacity = (long) table.length * blockSize;
            if (length > capacity)
                throw new IllegalArgumentException("sequence " + b + " has length " + cachedLens[b] + " + " + newTokens[b] + " = " + length
                        + " past its cache capacity of " + table.length + " blocks x " + blockSize + " = " + capacity + " tokens");
            totalNew += newTokens[b];
        }
        if (totalNew > Integer.MAX_VALUE) throw new IllegalArgumentException("the batch has " + totalNew + " new tokens; at most " + Integer.MAX_VALUE);
        return new KvBatch(backend, keys, values, blockTables, cachedLens, newTokens);
    }

    static void checkCache(Backend backend, Tensor keys, Tensor values) {
        Checks.usable("keys", keys, backend.device());
        Checks.usable("values", values, backend.device());
        Checks.dtypeIn("keys", keys, DTYPES);
        Checks.sameDtype("values", values, "keys", keys);
        Checks.rank("keys", keys, 4);
        Checks.shape("values", values, keys.shape());
        Checks.contiguous("keys", keys);
        Checks.contiguous("values", values);
        if (keys.dim(0) < 1 || keys.dim(0) > Integer.MAX_VALUE) throw new IllegalArgumentException("keys has " + keys.dim(0) + " blocks; 1 to " + Integer.MAX_VALUE);
        if (keys.dim(1) < 1 || keys.dim(1) > Integer.MAX_VALUE) throw new IllegalArgumentException("keys has block size " + keys.dim(1));
        if (keys.dim(2) < 1) throw new IllegalArgumentException("keys has no kv heads");
        if (!Attention.HEAD_DIMS.contains((int) keys.dim(3)))
            throw new IllegalArgumentException("keys has head_dim " + keys.dim(3) + ", expected one of " + Attention.HEAD_DIMS);
    }

    private static Tensor deviceInts(Backend backend, long[] values, long... shape) {
        try (Tensor host = Tensor.fromLongs(DType.I32, values, shape)) {
            return backend.copyOf(host);
        }
    }

    public Tensor keys() { return keys; }
    public Tensor values() { return values; }
    public DType dtype() { return keys.dtype(); }
    public int batchSize() { return cachedLens.length; }
    public int blockSize() { return (int) keys.dim(1); }
    public int numBlocks() { return (int) keys.dim(0); }
    public int kvHeads() { return (int) keys.dim(2); }
    public int headDim() { return (int) keys.dim(3); }
    public int maxBlocksPerSequence() { return maxBlocksPerSequence; }

    /** Tokens already cached for sequence {@code b} before this batch's new ones. */
    public int cachedLength(int b) { return cachedLens[b]; }
    /** New tokens (query rows) of sequence {@code b}. */
    public int newTokens(int b) { return newTokens[b]; }
    /** First query row of sequence {@code b} in the packed q; {@code queryStart(batchSize())} is the total. */
    public int queryStart(int b) { return queryStarts[b]; }
    /** Keys sequence {@code b} attends over: cached plus new. */
    public int kvLength(int b) { return cachedLens[b] + newTokens[b]; }
    public int totalNewTokens() { return queryStarts[cachedLens.length]; }

    public int maxNewTokens() { return Arrays.stream(newTokens).max().orElse(0); }
    public int maxKvLength() {
        int m = 0;
        for (int b = 0; b < cachedLens.length; b++) m = Math.max(m, kvLength(b));
        return m;
    }

    /** The int32 {@code [batch, maxBlocksPerSequence]} table on the backend's device (unused entries 0). */
    public Tensor blockTable() { return blockTableTensor; }
    /** The int32 {@code [batch]} cached lengths on the backend's device. */
    public Tensor cachedLengths() { return cachedLensTensor; }
    /** The int32 {@code [batch + 1]} query row offsets on the backend's device. */
    public Tensor queryStarts() { return queryStartsTensor; }

    /** The block id holding token {@code t} of sequence {@code b} (host bookkeeping, for the references). */
    int blockOf(int b, int t) {
        return table[b * maxBlocksPerSequence + t / blockSize()];
    }

    @Override
    public void close() {
        blockTableTensor.close();
        cachedLensTensor.close();
        queryStartsTensor.close();
    }
}
