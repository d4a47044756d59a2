package dev.isthmus.bench;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.AttentionWorkspace;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.KvCache;
import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * Attention benchmarks at the Llama-3-8B head shape (32 query heads, 8 KV heads, head_dim 128,
 * bf16) over a paged cache of 16-token blocks handed out in shuffled order:
 * <ul>
 *   <li>decode: one new token per sequence, batch 1 and 8, contexts 1K to 128K, the split count
 *       planned by {@link AttentionWorkspace}; bytes = the K and V cache read once plus q and out;
 *       FLOPs = 4 * batch * queryHeads * context * headDim (q.k and p.v);</li>
 *   <li>decode over an int8 and an fp8 cache (attention-decode-int8, -fp8): the same shapes, the
 *       cache filled by appends of random k and v; bytes = the codes (1 a element), int8's f32
 *       scale per token and kv head of K and V, q and out;</li>
 *   <li>prefill: 8K new tokens of one sequence, causal; FLOPs = 4 * queryHeads * headDim *
 *       n(n+1)/2 (only the visible pairs); bytes = q, k, v read and out written once.</li>
 * </ul>
 * 30 runs per decode row and 10 for prefill; {@code tiny} (the host emulation) uses contexts of 64
 * and 200 and a prefill of 48 tokens. Only the attention launch is timed (the append is not).
 * Shapes are written so that
 * bench/peers/attention_peer.py can time PyTorch's scaled_dot_product_attention on them.
 */
final class AttentionBench {
    private AttentionBench() {}

    private static final int Q_HEADS = 32, KV_HEADS = 8, HEAD_DIM = 128, BLOCK = 16;
    private static final int WARMUP = 5, RUNS = 30;

    static void run(Bench b) {
        Random random = new Random(23);
        int[] contexts = b.tiny ? new int[] {64, 200} : new int[] {1024, 4096, 16384, 32768, 65536, 131072};
        for (int batch : new int[] {1, 8})
            for (int context : contexts) decode(b, random, batch, context);
        for (KvCacheType type : new KvCacheType[] {KvCacheType.INT8, KvCacheType.FP8_E4M3})
            for (int batch : new int[] {1, 8})
                for (int context : contexts) decodeQuantized(b, type, batch, context);
        prefill(b, random, b.tiny ? 48 : 8192);
    }

    private static void decode(Bench b, Random random, int batch, int context) {
        CudaBackend gpu = b.gpu;
        DType dtype = DType.BF16;
        int blocksPerSequence = (context + BLOCK - 1) / BLOCK;
        int numBlocks = batch * blocksPerSequence;
        int[] cached = new int[batch], fresh = new int[batch];
        java.util.Arrays.fill(cached, context - 1);
        java.util.Arrays.fill(fresh, 1);
        try (Tensor keys = pool(b, dtype, numBlocks); Tensor values = pool(b, dtype, numBlocks);
             KvBatch kv = KvBatch.of(gpu, keys, values, shuffledTables(random, batch, blocksPerSequence), cached, fresh);
             Tensor q = b.normal(dtype, 1f, batch, Q_HEADS, HEAD_DIM); Tensor out = gpu.allocate(dtype, batch, Q_HEADS, HEAD_DIM);
             AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, kv, Q_HEADS)) {
            AttentionOptions options = AttentionOptions.decoder();
            Runnable op = () -> Attention.attend(gpu, kv, q, out, null, options, workspace);
            Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
            double bytes = 2.0 * batch * context * KV_HEADS * HEAD_DIM * dtype.byteSize() + 2.0 * batch * Q_HEADS * HEAD_DIM * dtype.byteSize();
            double flops = 4.0 * batch * Q_HEADS * context * HEAD_DIM;
            String shape = "b" + batch + "-ctx" + context;
            System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s  (%d splits)%n", "attention-decode " + shape, t,
                    bytes / t.medianMicros() / 1e3, workspace.splits());
            b.record("attention-decode", shape, dtype, t, bytes, flops, batch, op);
        }
    }

    /** Tokens appended at a time when a quantized cache is filled. */
    private static final int FILL_CHUNK = 4096;

    private static void decodeQuantized(Bench b, KvCacheType type, int batch, int context) {
        CudaBackend gpu = b.gpu;
        DType dtype = DType.BF16;
        int numBlocks = batch * ((context + BLOCK - 1) / BLOCK);
        int chunk = Math.min(FILL_CHUNK, context - 1);
        try (KvCache cache = KvCache.allocate(gpu, dtype, type, 1, numBlocks, BLOCK, KV_HEADS, HEAD_DIM);
             Tensor k = b.normal(dtype, 1f, chunk, KV_HEADS, HEAD_DIM); Tensor v = b.normal(dtype, 1f, chunk, KV_HEADS, HEAD_DIM);
             Tensor fillQ = gpu.allocate(dtype, chunk, Q_HEADS, HEAD_DIM);
             Tensor q = b.normal(dtype, 1f, batch, Q_HEADS, HEAD_DIM); Tensor out = gpu.allocate(dtype, batch, Q_HEADS, HEAD_DIM)) {
            int[] ids = new int[batch], ones = new int[batch];
            java.util.Arrays.fill(ones, 1);
            for (int i = 0; i < batch; i++) ids[i] = cache.newSequence();
            // The sequences grow in turns of `chunk` tokens, so their blocks interleave in the pool.
            for (int filled = 0; filled < context - 1; filled += chunk)
                for (int id : ids) {
                    int n = Math.min(chunk, context - 1 - filled);
                    try (KvBatch fill = cache.extend(new int[] {id}, new int[] {n})) {
                        Attention.append(gpu, fill, fillQ.slice(0, 0, n), k.slice(0, 0, n), v.slice(0, 0, n), null, null);
                    }
                }
            try (KvBatch kv = cache.extend(ids, ones); AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, kv, Q_HEADS)) {
                Attention.append(gpu, kv, q, k.slice(0, 0, batch), v.slice(0, 0, batch), null, null);
                AttentionOptions options = AttentionOptions.decoder();
                Runnable op = () -> Attention.attend(gpu, kv, q, out, null, options, workspace);
                Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
                int scaleBytes = type == KvCacheType.INT8 ? 4 : 0;
                double bytes = 2.0 * batch * context * KV_HEADS * (HEAD_DIM + scaleBytes) + 2.0 * batch * Q_HEADS * HEAD_DIM * dtype.byteSize();
                double flops = 4.0 * batch * Q_HEADS * context * HEAD_DIM;
                String name = "attention-decode-" + type.label(), shape = "b" + batch + "-ctx" + context;
                System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s  (%d splits)%n", name + " " + shape, t, bytes / t.medianMicros() / 1e3,
                        workspace.splits());
                b.record(name, shape, dtype, t, bytes, flops, batch, op);
            }
        }
    }

    private static void prefill(Bench b, Random random, int tokens) {
        CudaBackend gpu = b.gpu;
        DType dtype = DType.BF16;
        int blocks = (tokens + BLOCK - 1) / BLOCK;
        try (Tensor keys = pool(b, dtype, blocks); Tensor values = pool(b, dtype, blocks);
             KvBatch kv = KvBatch.of(gpu, keys, values, shuffledTables(random, 1, blocks), new int[] {0}, new int[] {tokens});
             Tensor q = b.normal(dtype, 1f, tokens, Q_HEADS, HEAD_DIM); Tensor out = gpu.allocate(dtype, tokens, Q_HEADS, HEAD_DIM)) {
            AttentionOptions options = AttentionOptions.decoder();
            Runnable op = () -> Attention.attend(gpu, kv, q, out, null, options, null);
            Timing.Stats t = b.time(2, b.tiny ? 2 : 10, op);
            double pairs = (double) tokens * (tokens + 1) / 2;
            double flops = 4.0 * Q_HEADS * HEAD_DIM * pairs;
            double bytes = (2.0 * tokens * Q_HEADS + 2.0 * tokens * KV_HEADS) * HEAD_DIM * dtype.byteSize();
            String shape = "b1-tokens" + tokens;
            System.out.printf(Locale.ROOT, "%-44s %s  %.1f TFLOP/s%n", "attention-prefill " + shape, t, flops / t.medianMicros() / 1e6);
            b.record("attention-prefill", shape, dtype, t, bytes, flops, tokens, op);
        }
    }

    /** A [numBlocks, BLOCK, KV_HEADS, HEAD_DIM] pool of random values. */
    private static Tensor pool(Bench b, DType dtype, int numBlocks) {
        return b.normal(dtype, 1f, numBlocks, BLOCK, KV_HEADS, HEAD_DIM);
    }

    /** Sequence b gets blocks [b * perSequence, (b + 1) * perSequence) of the pool, shuffled. */
    private static int[][] shuffledTables(Random random, int batch, int perSequence) {
        List<Integer> ids = new ArrayList<>(IntStream.range(0, batch * perSequence).boxed().toList());
        Collections.shuffle(ids, random);
        int[][] tables = new int[batch][perSequence];
        for (int b = 0; b < batch; b++)
            for (int j = 0; j < perSequence; j++) tables[b][j] = ids.get(b * perSequence + j);
        return tables;
    }
}
