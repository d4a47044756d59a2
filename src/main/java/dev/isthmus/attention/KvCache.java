package dev.isthmus.attention;

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
 * A paged KV cache: a pool of {@code numBlocks} blocks of {@code blockSize} tokens for keys and
 * for values ({@code [numBlocks, blockSize, kvHeads, headDim]} each, on the backend's device),
 * with the block allocator and the per-sequence block lists kept here in Java. A contiguous cache
 * is the special case of one block per sequence whose block size is the longest sequence.
 *
 * <p>A model's cache has one pool per attention layer, all indexed by the same block ids: the
 * layers of a model grow their sequences alike, so one allocator and one block table per
 * sequence serve them all, and a batch over layer 0 reaches layer {@code l} through
 * {@link #layer(KvBatch, int)} without copying its tables.
 *
 * <p>The elements are the model's dtype or a quantized code ({@link KvCacheType},
 * {@link KvQuantization}): an int8 cache holds {@code I8} codes and, per layer, f32 scales for K
 * and V of shape {@code [numBlocks, blockSize, kvHeads]} (the cache's shape without head_dim,
 * paged by the same block ids); an fp8 cache holds E4M3 bytes (as {@code I8}) and, per layer, the
 * fixed f32 scales {@code [kvHeads]} of K and of V.
 *
 * <pre>{@code
 * try (KvCache cache = KvCache.allocate(gpu, DType.BF16, 1024, 16, 8, 128)) {
 *     int seq = cache.newSequence();
 *     try (KvBatch prompt = cache.extend(new int[] {seq}, new int[] {promptLength})) {
 *         Attention.append(gpu, prompt, q, k, v, Rope.neox(10000f), null);
 *         Attention.attend(gpu, prompt, q, out, null, AttentionOptions.decoder(), null);
 *     }
 * }
 * }</pre>
 */
public final class KvCache implements AutoCloseable {
    private final Backend backend;
    private final DType dtype;     // of q / k / v (the elements too, for the model dtype)
    private final KvCacheType type;
    private final Tensor[] keys;   // per layer
    private final Tensor[] values; // per layer
    private final Tensor[] keyScales;   // per layer, null for the model dtype
    private final Tensor[] valueScales;
    private final ArrayDeque<Integer> freeBlocks = new ArrayDeque<>();
    private final Map<Integer, Sequence> sequences = new HashMap<>();
    private int nextSequence;

    private static final class Sequence {
        int[] blocks = new int[0]; // exactly the blocks it owns, in order (a new array whenever it grows)
        int length;
    }

    private KvCache(Backend backend, DType dtype, KvCacheType type, Tensor[] keys, Tensor[] values, Tensor[] keyScales, Tensor[] valueScales) {
        this.backend = backend;
        this.dtype = dtype;
        this.type = type;
        this.keys = keys;
        this.values = values;
        this.keyScales = keyScales;
        this.valueScales = valueScales;
        for (int i = 0; i < keys[0].dim(0); i++) freeBlocks.add(i);
    }

    /** A pool of {@code numBlocks} blocks; block_size 1 to 65536 (16 to 256 is the usual range). */
    public static KvCache allocate(Backend backend, DType dtype, int numBlocks, int blockSize, int kvHeads, int headDim) {
        return allocate(backend, dtype, 1, numBlocks, blockSize, kvHeads, headDim);
    }

    /** {@code layers} pools of {@code numBlocks} blocks each, sharing one allocator and one block table per sequence. */
    public static KvCache allocate(Backend backend, DType dtype, int layers, int numBlocks, int blockSize, int kvHeads, int headDim) {
        return allocate(backend, dtype, KvCacheType.MODEL_DTYPE, layers, numBlocks, blockSize, kvHeads, headDim);
    }

    /**
     * As {@link #allocate(Backend, DType, int, int, int, int, int)} with elements of {@code type}
     * for a model of {@code dtype}; an fp8 cache gets the scale 1 for every layer and kv head.
     * A quantized cache takes head_dim 64 or 128.
     */
    public static KvCache allocate(Backend backend, DType dtype, KvCacheType type, int layers, int numBlocks, int blockSize, int kvHeads,
                                   int headDim) {
        if (type == null) throw new IllegalArgumentException("type is null");
        if (type != KvCacheType.FP8_E4M3) return make(backend, dtype, type, layers, numBlocks, blockSize, kvHeads, headDim, null, null);
        float[] ones = new float[Math.max(0, layers) * Math.max(0, kvHeads)];
        Arrays.fill(ones, 1f);
        return make(backend, dtype, type, layers, numBlocks, blockSize, kvHeads, headDim, ones, ones);
    }

    /**
     * fp8 scales are below 2^8 (|x| up to 448 x 256 = 114688 kept): the kernels fold 2^120 into
     * the scale when they decode E4M3 (cuda/kv_quant.cuh), which must stay a finite f32.
     */
    public static final float FP8_SCALE_LIMIT = 256f;

    /**
     * An fp8 E4M3 cache with fixed scales (from calibration, say): {@code keyScales} and
     * {@code valueScales} hold {@code layers x kvHeads} values in (0, {@link #FP8_SCALE_LIMIT}),
     * layer-major; a stored value is e4m3(x / s) s, so |x| up to 448 s is kept and beyond it saturates.
     */
    public static KvCache allocateFp8(Backend backend, DType dtype, int layers, int numBlocks, int blockSize, int kvHeads, int headDim,
                                      float[] keyScales, float[] valueScales) {
        for (var e : new Object[][] {{"keyScales", keyScales}, {"valueScales", valueScales}}) {
            float[] scales = (float[]) e[1];
            if (scales == null) throw new IllegalArgumentException(e[0] + " is null");
            if ((long) scales.length != (long) layers * kvHeads)
                throw new IllegalArgumentException(e[0] + " has " + scales.length + " values, expected layers x kvHeads = " + layers + " x "
                        + kvHeads + " = " + (long) layers * kvHeads);
            for (int i = 0; i < scales.length; i++)
                if (!(scales[i] > 0f) || !(scales[i] < FP8_SCALE_LIMIT))
                    throw new IllegalArgumentException(e[0] + "[" + i + "] = " + scales[i] + " is not a scale in (0, " + FP8_SCALE_LIMIT + ")");
        }
        return make(backend, dtype, KvCacheType.FP8_E4M3, layers, numBlocks, blockSize, kvHeads, headDim, keyScales, valueScales);
    }

    private static KvCache make(Backend backend, DType dtype, KvCacheType type, int layers, int numBlocks, int blockSize, int kvHeads,
                                int headDim, float[] fp8KeyScales, float[] fp8ValueScales) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (layers < 1) throw new IllegalArgumentException("layers must be >= 1, got " + layers);
        if (dtype == null || !KvBatch.DTYPES.contains(dtype)) throw new IllegalArgumentException("dtype " + dtype + " is not f32, f16 or bf16");
        if (numBlocks < 1) throw new IllegalArgumentException("numBlocks must be >= 1, got " + numBlocks);
        if (blockSize < 1 || blockSize > 65536) throw new IllegalArgumentException("blockSize must be in [1, 65536], got " + blockSize);
        if (kvHeads < 1) throw new IllegalArgumentException("kvHeads must be >= 1, got " + kvHeads);
        if (!Attention.HEAD_DIMS.contains(headDim))
            throw new IllegalArgumentException("headDim " + headDim + " is not one of " + Attention.HEAD_DIMS);
        if (type.isQuantized() && !KvBatch.QUANTIZED_HEAD_DIMS.contains(headDim))
            throw new IllegalArgumentException("a " + type.label() + " KV cache takes headDim " + KvBatch.QUANTIZED_HEAD_DIMS + ", not " + headDim);
        DType element = type.isQuantized() ? DType.I8 : dtype;
        Tensor[] k = new Tensor[layers], v = new Tensor[layers];
        Tensor[] ks = type.isQuantized() ? new Tensor[layers] : null, vs = type.isQuantized() ? new Tensor[layers] : null;
        try {
            for (int l = 0; l < layers; l++) {
                k[l] = backend.allocate(element, numBlocks, blockSize, kvHeads, headDim);
                v[l] = backend.allocate(element, numBlocks, blockSize, kvHeads, headDim);
                if (type == KvCacheType.INT8) {
                    ks[l] = backend.allocate(DType.F32, numBlocks, blockSize, kvHeads);
                    vs[l] = backend.allocate(DType.F32, numBlocks, blockSize, kvHeads);
                } else if (type == KvCacheType.FP8_E4M3) {
                    ks[l] = headScales(backend, fp8KeyScales, l, kvHeads);
                    vs[l] = headScales(backend, fp8ValueScales, l, kvHeads);
                }
            }
            return new KvCache(backend, dtype, type, k, v, ks, vs);
        } catch (RuntimeException e) {
            closeAll(k, v);
            if (ks != null) closeAll(ks, vs);
            throw e;
        }
    }

    /** Layer l's kv-head scales of a layer-major array, on the backend's device. */
    private static Tensor headScales(Backend backend, float[] scales, int layer, int kvHeads) {
        try (Tensor host = Tensor.fromFloats(DType.F32, Arrays.copyOfRange(scales, layer * kvHeads, (layer + 1) * kvHeads), kvHeads)) {
            return backend.copyOf(host);
        }
    }

    /** Layer 0's keys (the only layer of a one-layer cache). */
    public Tensor keys() { return keys[0]; }
    public Tensor values() { return values[0]; }
    public Tensor keys(int layer) { return keys[checkLayer(layer)]; }
    public Tensor values(int layer) { return values[checkLayer(layer)]; }
    /** Layer {@code layer}'s K scales (null for the model dtype): see the class comment for the shapes. */
    public Tensor keyScales(int layer) { return keyScales == null ? null : keyScales[checkLayer(layer)]; }
    public Tensor valueScales(int layer) { return valueScales == null ? null : valueScales[checkLayer(layer)]; }
    public KvCacheType type() { return type; }
    /** The dtype of the q / k / v this cache is appended from and attended with. */
    public DType dtype() { return dtype; }
    public int layers() { return keys.length; }
    public int blockSize() { return (int) keys[0].dim(1); }
    public int freeBlockCount() { return freeBlocks.size(); }

    /** The pool blocks holding {@code sequence}'s tokens in order: token t lies in block {@code blocks[t / blockSize()]} (a copy). */
    public int[] blocks(int sequence) {
        return sequence(sequence).blocks.clone();
    }

    /** Starts an empty sequence and returns its id. */
    public int newSequence() {
        int id = nextSequence++;
        sequences.put(id, new Sequence());
        return id;
    }

    /** Tokens stored for {@code sequence}. */
    public int length(int sequence) {
        return sequence(sequence).length;
    }

    /**
     * Empties {@code sequence}: its blocks go back to the pool and its length to 0, and the id
     * stays (a slot that takes a new prompt). A reusable batch over it gets the new tables at
     * its next {@link #extend(KvBatch)}.
     */
    public void clear(int sequence) {
        Sequence s = sequence(sequence);
        for (int block : s.blocks) freeBlocks.add(block);
        s.blocks = new int[0];
        s.length = 0;
    }

    /**
     * Cuts {@code sequence} back to its first {@code length} tokens (speculative decoding's
     * rejected drafts): the blocks past them go back to the pool, the tokens kept are untouched. A
     * reusable batch over it gets the new tables at its next {@link #extend(KvBatch)}.
     */
    public void truncate(int sequence, int length) {
        Sequence s = sequence(sequence);
        if (length < 0 || length > s.length)
            throw new IllegalArgumentException("sequence " + sequence + " has " + s.length + " tokens; cannot cut it back to " + length);
        int keep = (int) blocksFor(length);
        // Freed last block first to the front of the pool, so the next growth takes them back in order.
        for (int b = s.blocks.length - 1; b >= keep; b--) freeBlocks.addFirst(s.blocks[b]);
        s.blocks = Arrays.copyOf(s.blocks, keep);
        s.length = length;
    }

    /** Returns the sequence's blocks to the pool; the id is gone afterwards. */
    public void free(int sequence) {
        for (int block : sequence(sequence).blocks) freeBlocks.add(block);
        sequences.remove(sequence);
    }

    /**
     * Grows each sequence by {@code newTokens[i]} tokens, taking blocks from the pool as needed,
     * and returns the batch (over layer 0) that appends and attends with them; close it after
     * use. Throws, changing nothing, when the pool has too few free blocks.
     */
    public KvBatch extend(int[] sequenceIds, int[] newTokens) {
        return grow(sequenceIds, newTokens, (tables, cached) -> KvBatch.of(backend, dtype, type, keys[0], values[0], keyScales(0), valueScales(0),
                tables, cached, newTokens));
    }

    /**
     * As {@link #extend(int[], int[])}, for a batch that {@link #extend(KvBatch)} grows again in
     * place (the decode step a CUDA graph replays): its block table has room for
     * {@code maxLength} tokens per sequence.
     */
    public KvBatch extendReusable(int[] sequenceIds, int[] newTokens, int maxLength) {
        if (maxLength < 1) throw new IllegalArgumentException("maxLength must be >= 1, got " + maxLength);
        // A sequence never owns more blocks than the pool has, so the table needs no more room than that.
        int width = (int) Math.min(blocksFor(maxLength), keys[0].dim(0));
        return grow(sequenceIds, newTokens,
                (tables, cached) -> KvBatch.reusable(this, sequenceIds, backend, layerCache(0), tables, cached, newTokens, width));
    }

    /**
     * Grows the sequences of {@code batch} (made by {@link #extendReusable} of this cache) by the
     * same token counts again and rewrites its tables in place. Throws, changing nothing, when the
     * pool has too few free blocks or a sequence would outgrow the batch's table.
     */
    public void extend(KvBatch batch) {
        if (batch == null || !batch.isReusableOf(this))
            throw new IllegalArgumentException("the batch was not made by extendReusable of this cache");
        int[] ids = batch.sequenceIds();
        int[] counts = new int[ids.length];
        for (int i = 0; i < ids.length; i++) {
            counts[i] = batch.newTokens(i);
            if ((long) length(ids[i]) + counts[i] > batch.kvCapacity())
                throw new IllegalArgumentException("sequence " + ids[i] + " would reach " + ((long) length(ids[i]) + counts[i])
                        + " tokens, past the batch's room for " + batch.kvCapacity());
        }
        grow(ids, counts, (tables, cached) -> {
            batch.rewrite(tables, cached);
            return batch;
        });
    }

    /** Makes (or rewrites) the batch of planned tables and cached lengths; the cache commits only if it succeeds. */
    private interface BatchMaker {
        KvBatch make(int[][] tables, int[] cachedLens);
    }

    private KvBatch grow(int[] sequenceIds, int[] newTokens, BatchMaker maker) {
        if (sequenceIds == null || newTokens == null || sequenceIds.length != newTokens.length)
            throw new IllegalArgumentException("sequenceIds and newTokens must be non-null and of equal length");
        long needed = 0;
        for (int i = 0; i < sequenceIds.length; i++) {
            if (newTokens[i] < 0) throw new IllegalArgumentException("newTokens[" + i + "] = " + newTokens[i] + " is negative");
            for (int j = 0; j < i; j++)
                if (sequenceIds[j] == sequenceIds[i]) throw new IllegalArgumentException("sequence " + sequenceIds[i] + " appears twice");
            Sequence s = sequence(sequenceIds[i]);
            needed += blocksFor((long) s.length + newTokens[i]) - s.blocks.length;
        }
        if (needed > freeBlocks.size())
            throw new IllegalArgumentException("the cache needs " + needed + " more blocks but has " + freeBlocks.size() + " free");
        // The tables are planned first and the sequences change only once the batch exists, so a
        // failure to make it (a device copy) leaves the cache as it was.
        int[][] tables = new int[sequenceIds.length][];
        int[] cached = new int[sequenceIds.length];
        List<Integer> taken = new ArrayList<>();
        for (int i = 0; i < sequenceIds.length; i++) {
            Sequence s = sequence(sequenceIds[i]);
            cached[i] = s.length;
            tables[i] = Arrays.copyOf(s.blocks, (int) blocksFor((long) s.length + newTokens[i])); // fits: at most the free blocks
            for (int j = s.blocks.length; j < tables[i].length; j++) {
                tables[i][j] = freeBlocks.pollFirst();
                taken.add(tables[i][j]);
            }
        }
        KvBatch batch;
        try {
            batch = maker.make(tables, cached);
        } catch (RuntimeException e) {
            for (int b = taken.size() - 1; b >= 0; b--) freeBlocks.addFirst(taken.get(b));
            throw e;
        }
        for (int i = 0; i < sequenceIds.length; i++) {
            Sequence s = sequence(sequenceIds[i]);
            s.length += newTokens[i];
            s.blocks = tables[i];
        }
        return batch;
    }

    /** {@code batch} (of this cache's layer 0) over layer {@code layer}: the same tables, that layer's pools and scales. */
    public KvBatch layer(KvBatch batch, int layer) {
        if (batch == null) throw new IllegalArgumentException("batch is null");
        return layer == 0 && batch.keys() == keys[0] ? batch : batch.over(layerCache(layer));
    }

    private KvBatch.Cache layerCache(int layer) {
        return new KvBatch.Cache(dtype, type, keys(layer), values(layer), keyScales(layer), valueScales(layer));
    }

    private long blocksFor(long tokens) {
        return (tokens + blockSize() - 1) / blockSize();
    }

    private int checkLayer(int layer) {
        if (layer < 0 || layer >= keys.length) throw new IllegalArgumentException("layer " + layer + " is outside the cache's " + keys.length);
        return layer;
    }

    private static void closeAll(Tensor[]... groups) {
        for (Tensor[] group : groups)
            for (Tensor t : group) if (t != null) t.close();
    }

    private Sequence sequence(int id) {
        Sequence s = sequences.get(id);
        if (s == null) throw new IllegalArgumentException("sequence " + id + " does not exist in this cache");
        return s;
    }

    @Override
    public void close() {
        closeAll(keys, values);
        if (keyScales != null) closeAll(keyScales, valueScales);
    }
}
