package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * Dispatch ("align"): groups the T * k (token, slot) pairs by expert, each expert's segment
 * padded to the GEMM tile height, into buffers sized for the worst case, so that no step waits on
 * the host and the layer can be captured in a CUDA graph. A pair is numbered token * k + slot.
 *
 * <p>Optionally with an expert capacity (Switch/GShard token dropping, off by default): each
 * expert keeps its first C pairs in pair order, i.e. earlier tokens first, and the others are
 * dropped and flagged; a token whose slots are all dropped passes through the residual.
 */
public final class Dispatch {
    private Dispatch() {}

    /**
     * The aligned routing, all i32:
     * <ul>
     *   <li>sortedPairs (capacity): pair indices by expert, ascending within a segment; padding
     *       and the unused tail hold the sentinel {@code pairs};</li>
     *   <li>tileExperts (capacity / tile, rounded up): each tile's expert, -1 past the padded total;</li>
     *   <li>paddedTotal (1): the used length of sortedPairs;</li>
     *   <li>expertCounts (experts): pairs routed to each expert, before capacity and padding;</li>
     *   <li>dropped (pairs): 1 for a pair the expert capacity left out, else 0.</li>
     * </ul>
     */
    public record Buffers(Tensor sortedPairs, Tensor tileExperts, Tensor paddedTotal, Tensor expertCounts, Tensor dropped,
                          int pairs, int experts, int tile) implements AutoCloseable {

        /** The kernels write every buffer to its worst-case size: each must have exactly that size. */
        public Buffers {
            if (tile < 1 || tile > 1024) throw new IllegalArgumentException("tile must be in [1, 1024], got " + tile);
            if (experts < 1 || experts > RouterConfig.MAX_EXPERTS)
                throw new IllegalArgumentException("experts must be in [1, " + RouterConfig.MAX_EXPERTS + "], got " + experts);
            if (pairs < 0) throw new IllegalArgumentException("pairs must be >= 0, got " + pairs);
            long capacity = capacity(pairs, experts, tile);
            sized("sortedPairs", sortedPairs, capacity);
            sized("tileExperts", tileExperts, (capacity + tile - 1) / tile);
            sized("paddedTotal", paddedTotal, 1);
            sized("expertCounts", expertCounts, experts);
            sized("dropped", dropped, pairs);
        }

        private static void sized(String name, Tensor t, long elements) {
            if (t == null) throw new IllegalArgumentException(name + " is null");
            if (t.dtype() != DType.I32 || t.elementCount() != elements || !t.isContiguous())
                throw new IllegalArgumentException(name + " must be a contiguous i32 tensor of " + elements + " elements, got " + t);
        }

        public static Buffers allocate(Backend backend, long tokens, int topK, int experts, int tile) {
            MoeChecks.backend(backend);
            if (tile < 1 || tile > 1024) throw new IllegalArgumentException("tile must be in [1, 1024], got " + tile);
            if (experts < 1 || experts > RouterConfig.MAX_EXPERTS)
                throw new IllegalArgumentException("experts must be in [1, " + RouterConfig.MAX_EXPERTS + "], got " + experts);
            if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
            if (topK < 1) throw new IllegalArgumentException("topK must be positive, got " + topK);
            int pairs = MoeChecks.rows("tokens * topK", tokens * topK);
            long capacity = capacity(pairs, experts, tile);
            MoeChecks.rows("the aligned capacity", capacity);
            Tensor sorted = backend.allocate(DType.I32, capacity);
            Tensor tiles = backend.allocate(DType.I32, (capacity + tile - 1) / tile);
            Tensor total = backend.allocate(DType.I32, 1);
            Tensor counts = backend.allocate(DType.I32, experts);
            Tensor dropped = backend.allocate(DType.I32, pairs);
            return new Buffers(sorted, tiles, total, counts, dropped, pairs, experts, tile);
        }

        /** The worst case: every non-empty expert (at most min(E, pairs)) pads at most tile - 1. */
        public static long capacity(long pairs, int experts, int tile) {
            return pairs + Math.min(experts, pairs) * (long) (tile - 1);
        }

        @Override
        public void close() {
            sortedPairs.close();
            tileExperts.close();
            paddedTotal.close();
            expertCounts.close();
            dropped.close();
        }

        void checkOn(Backend backend, String name) {
            for (Tensor t : new Tensor[] {sortedPairs, tileExperts, paddedTotal, expertCounts, dropped})
                Checks.usable(name, t, backend.device());
        }
    }

    /** Aligns ids (T, k) i32, which must lie in [0, experts) (see {@link Router#checkRouting}), keeping every pair. */
    public static void align(Backend backend, Buffers out, Tensor ids) {
        align(backend, out, ids, 0);
    }

    /** Aligns ids, each expert keeping at most {@code expertCapacity} pairs (0: no limit). */
    public static void align(Backend backend, Buffers out, Tensor ids, int expertCapacity) {
        MoeChecks.backend(backend);
        if (out == null) throw new IllegalArgumentException("out is null");
        out.checkOn(backend, "out");
        Checks.usable("ids", ids, backend.device());
        Checks.contiguous("ids", ids);
        if (ids.dtype() != DType.I32) throw new IllegalArgumentException("ids has dtype " + ids.dtype().label() + ", expected i32");
        if (expertCapacity < 0) throw new IllegalArgumentException("expertCapacity must be >= 0 (0: no limit), got " + expertCapacity);
        if (ids.elementCount() != out.pairs())
            throw new IllegalArgumentException("ids holds " + ids.elementCount() + " pairs but out was sized for " + out.pairs());
        switch (backend) {
            case CpuBackend cpu -> {
                long[] id = ids.toLongArray();
                for (int i = 0; i < id.length; i++)
                    if (id[i] < 0 || id[i] >= out.experts())
                        throw new IllegalArgumentException("ids[" + i + "] = " + id[i] + " is out of range for " + out.experts() + " experts");
                MoeReference.align(out, ids, expertCapacity);
            }
            case CudaBackend cuda -> MoeCuda.align(cuda, out, ids, expertCapacity);
        }
    }

    /**
     * The Switch/GShard expert capacity C = ceil(capacityFactor * T * k / E), at least 1: with
     * capacityFactor 1 a perfectly balanced router drops nothing.
     */
    public static int expertCapacity(double capacityFactor, long tokens, int topK, int experts) {
        if (!(capacityFactor > 0) || Double.isInfinite(capacityFactor))
            throw new IllegalArgumentException("capacityFactor must be positive and finite, got " + capacityFactor);
        if (tokens < 0 || topK < 1 || experts < 1) throw new IllegalArgumentException("tokens, topK and experts must be positive");
        double c = Math.ceil(capacityFactor * tokens * topK / experts);
        return (int) Math.max(1, Math.min(c, Integer.MAX_VALUE));
    }
}
