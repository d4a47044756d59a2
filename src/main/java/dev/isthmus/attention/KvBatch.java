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
 *
 * <p>A batch made by {@link KvCache#extendReusable} is grown again in place by
 * {@link KvCache#extend(KvBatch)}: its device tables keep their addresses and its block table
 * has room for a fixed length, so a CUDA graph that captured attention over it stays valid. The
 * kernels read the lengths from the device and are launched for that fixed capacity.
 *
 * <p>A quantized cache ({@link KvCacheType#INT8}, {@link KvCacheType#FP8_E4M3}) holds {@code I8}
 * codes and comes with its f32 scales ({@link KvCache} gives their shapes); q, k, v and out are
 * then in the model dtype the batch was made for.
 */
public final class KvBatch implements AutoCloseable {
    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);
    /** The head sizes a quantized cache takes (the kernels' instantiations). */
    static final Set<Integer> QUANTIZED_HEAD_DIMS = Set.of(64, 128);

    /** The pools a batch reads and writes: the model dtype, the element type, K and V, their scales (null for the model dtype). */
    record Cache(DType dtype, KvCacheType type, Tensor keys, Tensor values, Tensor keyScales, Tensor valueScales) {
        static Cache of(Tensor keys, Tensor values) {
            return new Cache(keys == null ? null : keys.dtype(), KvCacheType.MODEL_DTYPE, keys, values, null, null);
        }
    }

    private final Backend backend;
    private final Cache cache;
    private final Tensor keys;
    private final Tensor values;
    private final int[] cachedLens;
    private final int[] newTokens;
    private final int[] queryStarts;
    private final int maxBlocksPerSequence;
    private final int[] table; // host copy of blockTableTensor, row-major
    private final int[] rowLengths; // blocks used in each row of table (the rest are 0)
    private final Tensor blockTableTensor;
    private final Tensor cachedLensTensor;
    private final Tensor queryStartsTensor;
    private final boolean ownsTables; // false for a view over another layer's cache
    private final KvCache owner;      // of a reusable batch: the cache that grows it, and its sequences there
    private final int[] sequenceIds;
    // A reusable batch's host staging of its tables, kept so that a step allocates no host memory
    // (closing a shared arena costs a handshake with every thread, about 0.1 ms).
    private final Tensor hostTable;
    private final Tensor hostLens;

    private KvBatch(Backend backend, Cache cache, int[][] blockTables, int[] cachedLens, int[] newTokens, int tableWidth,
                    KvCache owner, int[] sequenceIds) {
        this.owner = owner;
        this.sequenceIds = sequenceIds == null ? null : sequenceIds.clone();
        this.backend = backend;
        this.cache = cache;
        this.keys = cache.keys();
        this.values = cache.values();
        this.cachedLens = cachedLens.clone();
        this.newTokens = newTokens.clone();
        this.ownsTables = true;
        int batch = cachedLens.length;
        queryStarts = new int[batch + 1];
        for (int b = 0; b < batch; b++) queryStarts[b + 1] = Math.addExact(queryStarts[b], newTokens[b]);
        maxBlocksPerSequence = tableWidth;
        table = new int[batch * tableWidth];
        rowLengths = new int[batch];
        for (int b = 0; b < batch; b++) setRow(b, blockTables[b]);
        Tensor t = null, c = null, q = null;
        try {
            t = deviceInts(backend, table, batch, tableWidth);
            c = deviceInts(backend, cachedLens, batch);
            q = deviceInts(backend, queryStarts, batch + 1);
        } catch (RuntimeException e) {
            for (Tensor x : new Tensor[] {t, c, q}) if (x != null) x.close();
            throw e;
        }
        blockTableTensor = t;
        cachedLensTensor = c;
        queryStartsTensor = q;
        hostTable = owner != null ? Tensor.allocateHost(DType.I32, batch, tableWidth) : null;
        hostLens = owner != null ? Tensor.allocateHost(DType.I32, batch) : null;
    }

    /** The same sequences and tables over other cache tensors; the tables stay {@code of}'s. */
    private KvBatch(KvBatch of, Cache cache) {
        this.backend = of.backend;
        this.cache = cache;
        this.keys = cache.keys();
        this.values = cache.values();
        this.cachedLens = of.cachedLens;
        this.newTokens = of.newTokens;
        this.queryStarts = of.queryStarts;
        this.maxBlocksPerSequence = of.maxBlocksPerSequence;
        this.table = of.table;
        this.rowLengths = of.rowLengths;
        this.blockTableTensor = of.blockTableTensor;
        this.cachedLensTensor = of.cachedLensTensor;
        this.queryStartsTensor = of.queryStartsTensor;
        this.ownsTables = false;
        this.owner = of.owner;
        this.sequenceIds = of.sequenceIds;
        this.hostTable = of.hostTable;
        this.hostLens = of.hostLens;
    }

    /** Row b of the host table becomes {@code blocks}, zeros after them; whether it changed. */
    private boolean setRow(int b, int[] blocks) {
        int at = b * maxBlocksPerSequence;
        if (rowLengths[b] == blocks.length && Arrays.equals(table, at, at + blocks.length, blocks, 0, blocks.length)) return false;
        Arrays.fill(table, at + blocks.length, at + Math.max(rowLengths[b], blocks.length), 0);
        System.arraycopy(blocks, 0, table, at, blocks.length);
        rowLengths[b] = blocks.length;
        return true;
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
        return of(backend, Cache.of(keys, values), blockTables, cachedLens, newTokens);
    }

    /**
     * A batch over a cache of element type {@code type} for a model of {@code dtype}: for the
     * model dtype as {@link #of(Backend, Tensor, Tensor, int[][], int[], int[])} (the scales
     * null); for int8 and fp8 keys and values are {@code I8} codes and the scales f32
     * ({@code [numBlocks, blockSize, kvHeads]} for int8, {@code [kvHeads]} for fp8).
     */
    public static KvBatch of(Backend backend, DType dtype, KvCacheType type, Tensor keys, Tensor values, Tensor keyScales, Tensor valueScales,
                             int[][] blockTables, int[] cachedLens, int[] newTokens) {
        return of(backend, new Cache(dtype, type, keys, values, keyScales, valueScales), blockTables, cachedLens, newTokens);
    }

    private static KvBatch of(Backend backend, Cache cache, int[][] blockTables, int[] cachedLens, int[] newTokens) {
        check(backend, cache, blockTables, cachedLens, newTokens);
        int widest = 1;
        for (int[] row : blockTables) widest = Math.max(widest, row.length);
        return new KvBatch(backend, cache, blockTables, cachedLens, newTokens, widest, null, null);
    }

    /**
     * As {@link #of}, for sequences {@code sequenceIds} of {@code owner}, with room for
     * {@code tableWidth} blocks per sequence: the owner rewrites it in place ({@link #rewrite}).
     */
    static KvBatch reusable(KvCache owner, int[] sequenceIds, Backend backend, Cache cache, int[][] blockTables, int[] cachedLens,
                            int[] newTokens, int tableWidth) {
        check(backend, cache, blockTables, cachedLens, newTokens);
        checkWidth(blockTables, tableWidth);
        return new KvBatch(backend, cache, blockTables, cachedLens, newTokens, tableWidth, owner, sequenceIds);
    }

    /** Whether {@code cache} made this batch with extendReusable (and it is not a view). */
    boolean isReusableOf(KvCache cache) {
        return ownsTables && owner == cache;
    }

    /** The owner's ids of a reusable batch's sequences. */
    int[] sequenceIds() {
        return sequenceIds.clone();
    }

    private static void checkWidth(int[][] blockTables, int tableWidth) {
        if ((long) blockTables.length * tableWidth > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException(blockTables.length + " sequences x " + tableWidth + " blocks is too large a block table");
        for (int b = 0; b < blockTables.length; b++)
            if (blockTables[b].length > tableWidth)
                throw new IllegalArgumentException("sequence " + b + " owns " + blockTables[b].length + " blocks, more than the table's " + tableWidth);
    }

    private static void check(Backend backend, Cache cache, int[][] blockTables, int[] cachedLens, int[] newTokens) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkCache(backend, cache);
        Tensor keys = cache.keys();
        if (blockTables == null || cachedLens == null || newTokens == null)
            throw new IllegalArgumentException("blockTables, cachedLens and newTokens must not be null");
        int batch = blockTables.length;
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
    }

    /**
     * The same sequences over another cache of the same dtype and shape (another layer's, when
     * every layer allocates its blocks alike): it shares this batch's device tables, so it needs
     * no copies, follows this batch's in-place rewrites, and its close leaves the tables alone.
     */
    public KvBatch over(Tensor keys, Tensor values) {
        if (cache.type().isQuantized())
            throw new IllegalArgumentException("the batch is over a " + cache.type().label() + " cache: over(keys, values, keyScales, valueScales) names its scales");
        return over(Cache.of(keys, values));
    }

    /** As {@link #over(Tensor, Tensor)} for a quantized cache: another layer's codes and scales, of this batch's type. */
    public KvBatch over(Tensor keys, Tensor values, Tensor keyScales, Tensor valueScales) {
        return over(new Cache(cache.dtype(), cache.type(), keys, values, keyScales, valueScales));
    }

    KvBatch over(Cache other) {
        if (blockTableTensor.isClosed()) throw new IllegalArgumentException("batch is closed");
        checkCache(backend, other);
        Checks.shape("keys", other.keys(), this.keys.shape());
        Checks.sameDtype("keys", other.keys(), "the batch's cache", this.keys);
        if (other.type() != cache.type() || other.dtype() != cache.dtype())
            throw new IllegalArgumentException("the cache is " + other.type().label() + " for " + other.dtype().label() + " but the batch's is "
                    + cache.type().label() + " for " + cache.dtype().label());
        return new KvBatch(this, other);
    }

    /**
     * Replaces the tables and cached lengths of a reusable batch (same sequences, same new token
     * counts) and copies them into the device tables where they already are: the block table only
     * when a row changed (a sequence entered a new block, or was emptied), the lengths always.
     * The work is in proportion to the blocks in use, not to the table's width.
     */
    void rewrite(int[][] blockTables, int[] cachedLens) {
        if (owner == null || !ownsTables) throw new IllegalStateException("only a reusable batch, not a view of one, is rewritten in place");
        if (blockTables == null || blockTables.length != batchSize())
            throw new IllegalArgumentException("a rewrite must keep the batch's " + batchSize() + " sequences");
        check(backend, cache, blockTables, cachedLens, newTokens);
        checkWidth(blockTables, maxBlocksPerSequence);
        boolean changed = false;
        for (int b = 0; b < blockTables.length; b++) changed |= setRow(b, blockTables[b]);
        System.arraycopy(cachedLens, 0, this.cachedLens, 0, cachedLens.length);
        if (changed) copyInts(backend, blockTableTensor, hostTable, table);
        copyInts(backend, cachedLensTensor, hostLens, this.cachedLens);
    }

    static void checkCache(Backend backend, Cache cache) {
        if (cache.type() == null) throw new IllegalArgumentException("the cache type is null");
        if (cache.dtype() == null || !DTYPES.contains(cache.dtype()))
            throw new IllegalArgumentException("the model dtype " + cache.dtype() + " is not f32, f16 or bf16");
        Tensor keys = cache.keys(), values = cache.values();
        Checks.usable("keys", keys, backend.device());
        Checks.usable("values", values, backend.device());
        if (cache.type().isQuantized()) {
            if (keys.dtype() != DType.I8)
                throw new IllegalArgumentException("keys has dtype " + keys.dtype().label() + ", but a " + cache.type().label() + " cache holds i8 codes");
        } else {
            Checks.dtypeIn("keys", keys, DTYPES);
            if (keys.dtype() != cache.dtype())
                throw new IllegalArgumentException("keys has dtype " + keys.dtype().label() + " but the model dtype is " + cache.dtype().label());
            if (cache.keyScales() != null || cache.valueScales() != null)
                throw new IllegalArgumentException("a model-dtype cache has no scales, but keyScales or valueScales was given");
        }
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
        if (cache.type().isQuantized()) {
            if (!QUANTIZED_HEAD_DIMS.contains((int) keys.dim(3)))
                throw new IllegalArgumentException("a " + cache.type().label() + " cache takes head_dim " + QUANTIZED_HEAD_DIMS + ", keys has " + keys.dim(3));
            long[] scaleShape = cache.type() == KvCacheType.INT8 ? new long[] {keys.dim(0), keys.dim(1), keys.dim(2)} : new long[] {keys.dim(2)};
            for (var e : new Object[][] {{"keyScales", cache.keyScales()}, {"valueScales", cache.valueScales()}}) {
                String name = (String) e[0];
                Tensor scales = (Tensor) e[1];
                if (scales == null) throw new IllegalArgumentException(name + " is null; a " + cache.type().label() + " cache needs its scales");
                Checks.usable(name, scales, backend.device());
                if (scales.dtype() != DType.F32) throw new IllegalArgumentException(name + " must be f32, has " + scales.dtype().label());
                Checks.shape(name, scales, scaleShape);
                Checks.contiguous(name, scales);
            }
        }
    }

    private static Tensor deviceInts(Backend backend, int[] values, long... shape) {
        try (Tensor host = Tensor.fromLongs(DType.I32, Arrays.stream(values).asLongStream().toArray(), shape)) {
            return backend.copyOf(host);
        }
    }

    private static void copyInts(Backend backend, Tensor dst, Tensor staging, int[] values) {
        staging.copyFrom(Arrays.stream(values).asLongStream().toArray());
        backend.copy(dst, staging);
    }

    public Tensor keys() { return keys; }
    public Tensor values() { return values; }
    /** The f32 scales of a quantized cache (null for the model dtype). */
    public Tensor keyScales() { return cache.keyScales(); }
    public Tensor valueScales() { return cache.valueScales(); }
    public KvCacheType cacheType() { return cache.type(); }
    /** The dtype of q / k / v / out (the elements' too, for a model-dtype cache). */
    public DType dtype() { return cache.dtype(); }
    Cache cache() { return cache; }
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

    /** Tokens the block table has room for per sequence (at most Integer.MAX_VALUE). */
    public int kvCapacity() {
        return (int) Math.min(Integer.MAX_VALUE, (long) maxBlocksPerSequence * blockSize());
    }

    /** Whether {@link KvCache#extend(KvBatch)} grows this batch in place. */
    public boolean isReusable() {
        return owner != null;
    }

    /**
     * The longest KV length this batch can reach: its capacity if it is reusable (it grows in
     * place), else {@link #maxKvLength()}. Launch shapes and workspaces are planned for it.
     */
    public int kvLengthBound() {
        return owner != null ? kvCapacity() : Math.max(1, maxKvLength());
    }

    // The device tables are the library's alone: the kernels index the cache with them, so a
    // caller who could write them could send a kernel past the pool. They are checked once, on
    // the host, when written here, and no handle to them leaves the package.

    /** The int32 {@code [batch, maxBlocksPerSequence]} table on the backend's device (unused entries 0). */
    Tensor blockTable() { return blockTableTensor; }
    /** The int32 {@code [batch]} cached lengths on the backend's device. */
    Tensor cachedLengths() { return cachedLensTensor; }
    /** The int32 {@code [batch + 1]} query row offsets on the backend's device. */
    Tensor queryStarts() { return queryStartsTensor; }

    /** The block id holding token {@code t} of sequence {@code b} (host bookkeeping, for the references). */
    int blockOf(int b, int t) {
        return table[b * maxBlocksPerSequence + t / blockSize()];
    }

    @Override
    public void close() {
        if (!ownsTables) return;
        if (hostTable != null) hostTable.close();
        if (hostLens != null) hostLens.close();
        blockTableTensor.close();
        cachedLensTensor.close();
        queryStartsTensor.close();
    }
}
