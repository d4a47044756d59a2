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
     *
     * <p>The expert GEMMs index weights and rows with what these hold, so only the library writes
     * them: buffers are made by {@link #allocate} alone, filled by {@link #align} alone, and refused
     * by the GEMMs until an align has filled them; the device tensors never leave the package.
     * What a caller may read comes back as host copies ({@link #expertCounts(Backend)},
     * {@link #dropped(Backend)}).
     */
    public static final class Buffers implements AutoCloseable {
        private final Tensor sortedPairs, tileExperts, paddedTotal, expertCounts, dropped;
        private final int pairs, experts, tile;
        private boolean aligned;

        private Buffers(Tensor sortedPairs, Tensor tileExperts, Tensor paddedTotal, Tensor expertCounts, Tensor dropped,
                        int pairs, int experts, int tile) {
            this.sortedPairs = sortedPairs;
            this.tileExperts = tileExperts;
            this.paddedTotal = paddedTotal;
            this.expertCounts = expertCounts;
            this.dropped = dropped;
            this.pairs = pairs;
            this.experts = experts;
            this.tile = tile;
        }

        public static Buffers allocate(Backend backend, long tokens, int topK, int experts, int tile) {
            MoeChecks.backend(backend);
            if (tile < 1 || tile > 1024) throw new IllegalArgumentException("tile must be in [1, 1024], got " + tile);
            if (experts < 1 || experts > RouterConfig.MAX_EXPERTS)
                throw new IllegalArgumentException("experts must be in [1, " + RouterConfig.MAX_EXPERTS + "], got " + experts);
            if (tokens < 0) throw new IllegalArgumentException("tokens must be >= 0, got " + tokens);
            if (topK < 1 || topK > RouterConfig.MAX_TOP_K)
                throw new IllegalArgumentException("topK must be in [1, " + RouterConfig.MAX_TOP_K + "], got " + topK);
            int pairs = MoeChecks.pairs(tokens, topK);
            long capacity = capacity(pairs, experts, tile);
            MoeChecks.rows("the aligned capacity", capacity);
            Tensor[] made = new Tensor[5];
            try {
                made[0] = backend.allocate(DType.I32, capacity);
                made[1] = backend.allocate(DType.I32, (capacity + tile - 1) / tile);
                made[2] = backend.allocate(DType.I32, 1);
                made[3] = backend.allocate(DType.I32, experts);
                made[4] = backend.allocate(DType.I32, pairs);
            } catch (RuntimeException e) {
                for (Tensor t : made) if (t != null) t.close();
                throw e;
            }
            return new Buffers(made[0], made[1], made[2], made[3], made[4], pairs, experts, tile);
        }

        /** The worst case: every non-empty expert (at most min(E, pairs)) pads at most tile - 1. */
        public static long capacity(long pairs, int experts, int tile) {
            return pairs + Math.min(experts, pairs) * (long) (tile - 1);
        }

        public int pairs() { return pairs; }
        public int experts() { return experts; }
        public int tile() { return tile; }

        /** Pairs routed to each expert by the last align, before capacity and padding (waits for it). */
        public long[] expertCounts(Backend backend) {
            return hostCopy(backend, "expertCounts", expertCounts);
        }

        /** 1 for each pair the last align's expert capacity left out, else 0 (waits for it). */
        public long[] dropped(Backend backend) {
            return hostCopy(backend, "dropped", dropped);
        }

        private long[] hostCopy(Backend backend, String name, Tensor t) {
            MoeChecks.backend(backend);
            checkOn(backend, "routing");
            requireAligned();
            if (t.isHost()) return t.toLongArray();
            try (Tensor host = backend.toHost(t)) {
                return host.toLongArray();
            }
        }

        Tensor sortedPairs() { return sortedPairs; }
        Tensor tileExperts() { return tileExperts; }
        Tensor paddedTotal() { return paddedTotal; }
        Tensor expertCounts() { return expertCounts; }
        Tensor dropped() { return dropped; }

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

        /** Until an align filled them the buffers hold whatever the allocation left (on a GPU, anything). */
        void requireAligned() {
            if (!aligned) throw new IllegalArgumentException("routing has not been aligned yet (Dispatch.align fills it)");
        }

        void markAligned() {
            aligned = true;
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
        out.markAligned();
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
