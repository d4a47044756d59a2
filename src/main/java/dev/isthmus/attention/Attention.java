package dev.isthmus.attention;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.Set;

/**
 * Attention over a paged KV cache ({@link KvCache}, {@link KvBatch}): append new keys/values
 * with RoPE, attend (prefill, chunked prefill and decode are one operation: the batch says how
 * many new tokens each sequence has), and merge partial results by their log-sum-exp.
 *
 * <p>Layouts: queries and outputs are packed {@code [totalNewTokens, queryHeads, headDim]}, new
 * keys/values {@code [totalNewTokens, kvHeads, headDim]}, all in the cache's dtype (f32, f16,
 * bf16); the log-sum-exp is f32 {@code [totalNewTokens, queryHeads]} in natural log. Query head
 * {@code h} reads kv head {@code h / (queryHeads / kvHeads)} (GQA; MQA is kvHeads = 1). A row
 * with no visible key gets output 0 and LSE -inf, which merging ignores.
 */
public final class Attention {
    private Attention() {}

    /** The head dimensions the kernels are compiled for. */
    public static final Set<Integer> HEAD_DIMS = Set.of(64, 80, 96, 128, 256);

    /**
     * Writes the batch's new keys and values into their cache slots; with a {@code rope}, rotates
     * the new keys (before they are stored) and q (in place) by their positions first. Positions
     * are each token's index in its sequence unless {@code positions} (int32
     * {@code [totalNewTokens]}) gives them.
     */
    public static void append(Backend backend, KvBatch batch, Tensor q, Tensor k, Tensor v, Rope rope, Tensor positions) {
        checkBatch(backend, batch);
        int qHeads = checkQueries(backend, batch, "q", q);
        long[] kvShape = {batch.totalNewTokens(), batch.kvHeads(), batch.headDim()};
        for (var e : new Object[][] {{"k", k}, {"v", v}}) {
            Tensor t = (Tensor) e[1];
            String name = (String) e[0];
            Checks.usable(name, t, backend.device());
            checkModelDtype(name, t, batch);
            Checks.shape(name, t, kvShape);
            Checks.contiguous(name, t);
        }
        if (positions != null) {
            Checks.usable("positions", positions, backend.device());
            if (positions.dtype() != DType.I32) throw new IllegalArgumentException("positions must be i32, has " + positions.dtype().label());
            Checks.shape("positions", positions, batch.totalNewTokens());
            Checks.contiguous("positions", positions);
        }
        if (rope != null && rope.longRope() != null && rope.longRope().shortFactors().length != batch.headDim() / 2)
            throw new IllegalArgumentException("rope's longrope has " + rope.longRope().shortFactors().length + " factors per set; head_dim "
                    + batch.headDim() + " has " + batch.headDim() / 2 + " pairs");
        if (batch.totalNewTokens() == 0) return; // nothing to append (an empty batch, or sequences adding no tokens)
        switch (backend) {
            case CpuBackend cpu -> AttentionReference.append(batch, q, k, v, rope, positions);
            case CudaBackend cuda -> AttentionCuda.append(cuda, batch, q, k, v, rope, positions, qHeads);
        }
    }

    /**
     * out = softmax(scale * q k^T + mask) v for every new token of the batch against its
     * sequence's keys in the cache (append them first), with the mask of {@code options}.
     *
     * @param lse f32 {@code [totalNewTokens, queryHeads]} to receive the log-sum-exp, or null
     * @param workspace from {@link AttentionWorkspace#allocate} for this batch to split the KV
     *     length over several blocks (CUDA), or null for no split
     */
    public static void attend(Backend backend, KvBatch batch, Tensor q, Tensor out, Tensor lse, AttentionOptions options,
                              AttentionWorkspace workspace) {
        checkBatch(backend, batch);
        int qHeads = checkQueries(backend, batch, "q", q);
        Checks.usable("out", out, backend.device());
        Checks.sameDtype("out", out, "q", q);
        Checks.shape("out", out, q.shape());
        Checks.contiguous("out", out);
        if (lse != null) checkLse("lse", lse, backend, batch.totalNewTokens(), qHeads);
        if (options == null) throw new IllegalArgumentException("options is null");
        if (workspace != null) workspace.checkFits(backend, batch, qHeads);
        if (batch.totalNewTokens() == 0) return; // no query rows
        switch (backend) {
            case CpuBackend cpu -> AttentionReference.attend(batch, q, out, lse, options);
            case CudaBackend cuda -> AttentionCuda.attend(cuda, batch, q, out, lse, options, workspace, qHeads);
        }
    }

    /**
     * Merges P partial attention results by their log-sum-exp (split-KV, cascade and ring
     * attention all reduce to this): with {@code partOuts [P, ..., headDim]} and f32
     * {@code partLses [P, ...]},
     *
     * <pre>
     *   L   = ln(sum_i exp(L_i))
     *   out = sum_i exp(L_i - L) * out_i
     * </pre>
     *
     * out is {@code [..., headDim]} of any float dtype; lse (f32 {@code [...]}) may be null.
     */
    public static void merge(Backend backend, Tensor out, Tensor lse, Tensor partOuts, Tensor partLses) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        Checks.usable("partOuts", partOuts, backend.device());
        Checks.dtypeIn("partOuts", partOuts, KvBatch.DTYPES);
        Checks.rankAtLeast("partOuts", partOuts, 2);
        Checks.contiguous("partOuts", partOuts);
        if (partOuts.dim(0) < 1) throw new IllegalArgumentException("partOuts holds no parts");
        long[] shape = partOuts.shape();
        long[] lseShape = Arrays.copyOf(shape, shape.length - 1);
        Checks.usable("partLses", partLses, backend.device());
        if (partLses.dtype() != DType.F32) throw new IllegalArgumentException("partLses must be f32, has " + partLses.dtype().label());
        Checks.shape("partLses", partLses, lseShape);
        Checks.contiguous("partLses", partLses);
        Checks.usable("out", out, backend.device());
        Checks.dtypeIn("out", out, KvBatch.DTYPES);
        Checks.shape("out", out, Arrays.copyOfRange(shape, 1, shape.length));
        Checks.contiguous("out", out);
        if (lse != null) {
            Checks.usable("lse", lse, backend.device());
            if (lse.dtype() != DType.F32) throw new IllegalArgumentException("lse must be f32, has " + lse.dtype().label());
            Checks.shape("lse", lse, Arrays.copyOfRange(lseShape, 1, lseShape.length));
            Checks.contiguous("lse", lse);
        }
        if (out.elementCount() / shape[shape.length - 1] > Integer.MAX_VALUE)
            throw new IllegalArgumentException("out has more than " + Integer.MAX_VALUE + " rows");
        if (out.elementCount() == 0) return; // no rows (a zero-size device tensor has no address to launch on)
        switch (backend) {
            case CpuBackend cpu -> AttentionReference.merge(out, lse, partOuts, partLses);
            case CudaBackend cuda -> AttentionCuda.merge(cuda, out, lse, partOuts, partLses);
        }
    }

    /**
     * How many pieces the CUDA kernel splits each sequence's KV length into: 1 when the batch
     * alone fills the GPU ({@code blocksPerSm} resident blocks on every multiprocessor: the
     * kernel's occupancy, which the cache's type and head size set through its shared memory and
     * registers), else the count that fills whole waves of blocks best: the fewest waves (up to
     * 4) that come to 90% full, since a last wave half full costs as much as a full one. Pieces
     * stay at least 256 keys long, at most 128 of them. Each block of the kernel covers
     * {@link AttentionWorkspace#ROWS_PER_BLOCK} query rows of one kv head.
     */
    public static int splitCount(int multiprocessors, int blocksPerSm, int batchSize, int kvHeads, int queryHeads, int maxNewTokens,
                                 int maxKvLength) {
        if (multiprocessors < 1) throw new IllegalArgumentException("multiprocessors must be >= 1, got " + multiprocessors);
        if (blocksPerSm < 1) throw new IllegalArgumentException("blocksPerSm must be >= 1, got " + blocksPerSm);
        if (batchSize < 0 || maxNewTokens < 0 || maxKvLength < 0)
            throw new IllegalArgumentException("batchSize, maxNewTokens and maxKvLength must be >= 0, got " + batchSize + ", " + maxNewTokens
                    + ", " + maxKvLength);
        if (kvHeads < 1 || queryHeads < 1 || queryHeads % kvHeads != 0)
            throw new IllegalArgumentException("queryHeads " + queryHeads + " must be a positive multiple of kvHeads " + kvHeads);
        long rowsPerKvHead = (long) maxNewTokens * (queryHeads / kvHeads);
        long units = (long) batchSize * kvHeads * Math.max(1, ceilDiv(rowsPerKvHead, AttentionWorkspace.ROWS_PER_BLOCK));
        long slots = (long) multiprocessors * blocksPerSm;
        if (units == 0 || units >= slots || maxKvLength <= 256) return 1; // units is 0 for an empty batch
        long cap = Math.min(128, ceilDiv(maxKvLength, 256));
        long best = 1;
        double bestFill = 0;
        for (int waves = 1; waves <= 4; waves++) {
            long splits = Math.min(cap, Math.max(1, waves * slots / units));
            long blocks = splits * units;
            double fill = (double) blocks / (ceilDiv(blocks, slots) * slots);
            if (fill > bestFill) {
                best = splits;
                bestFill = fill;
            }
            if (fill >= 0.9) break;
        }
        return (int) best;
    }

    static long ceilDiv(long a, long b) {
        return (a + b - 1) / b;
    }

    private static void checkBatch(Backend backend, KvBatch batch) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (batch == null) throw new IllegalArgumentException("batch is null");
        KvBatch.checkCache(backend, batch.cache());
        Checks.usable("batch.blockTable", batch.blockTable(), backend.device());
    }

    /** Checks q ([totalNewTokens, queryHeads, headDim], the cache's dtype) and returns queryHeads. */
    private static int checkQueries(Backend backend, KvBatch batch, String name, Tensor q) {
        Checks.usable(name, q, backend.device());
        checkModelDtype(name, q, batch);
        Checks.rank(name, q, 3);
        Checks.contiguous(name, q);
        long qHeads = q.dim(1);
        if (qHeads < 1 || qHeads % batch.kvHeads() != 0)
            throw new IllegalArgumentException(name + " has " + qHeads + " query heads, which is not a positive multiple of the cache's "
                    + batch.kvHeads() + " kv heads");
        Checks.shape(name, q, batch.totalNewTokens(), qHeads, batch.headDim());
        return (int) qHeads;
    }

    /** t must be in the batch's model dtype (the cache's own dtype, unless the cache is quantized). */
    private static void checkModelDtype(String name, Tensor t, KvBatch batch) {
        if (t.dtype() != batch.dtype())
            throw new IllegalArgumentException(name + " has dtype " + t.dtype().label() + " but the cache is for " + batch.dtype().label()
                    + (batch.cacheType().isQuantized() ? " (its elements are " + batch.cacheType().label() + ")" : "") + "; they must match");
    }

    static void checkLse(String name, Tensor lse, Backend backend, long rows, long heads) {
        Checks.usable(name, lse, backend.device());
        if (lse.dtype() != DType.F32) throw new IllegalArgumentException(name + " must be f32, has " + lse.dtype().label());
        Checks.shape(name, lse, rows, heads);
        Checks.contiguous(name, lse);
    }
}
