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
     *   <li>expertCounts (experts): pairs routed to each expert, before padding.</li>
     * </ul>
     */
    public record Buffers(Tensor sortedPairs, Tensor tileExperts, Tensor paddedTotal, Tensor expertCounts,
                          int pairs, int experts, int tile) implements AutoCloseable {

        public static Buffers allocate(Backend backend, long tokens, int topK, int experts, int tile) {
            MoeChecks.backend(backend);
            if (tile < 1 || tile > 1024) throw new IllegalArgumentException("tile must be in [1, 1024], got " + tile);
            if (experts < 1 || experts > RouterConfig.MAX_EXPERTS)
                throw new IllegalArgumentException("experts must be in [1, " + RouterConfig.MAX_EXPERTS + "], got " + experts);
            if (topK < 1) throw new IllegalArgumentException("topK must be positive, got " + topK);
            int pairs = MoeChecks.rows("tokens * topK", tokens * topK);
            long capacity = capacity(pairs, experts, tile);
            MoeChecks.rows("the aligned capacity", capacity);
            Tensor sorted = backend.allocate(DType.I32, capacity);
            Tensor tiles = backend.allocate(DType.I32, (capacity + tile - 1) / tile);
            Tensor total = backend.allocate(DType.I32, 1);
            Tensor counts = backend.allocate(DType.I32, experts);
            return new Buffers(sorted, tiles, total, counts, pairs, experts, tile);
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
        }

        void checkOn(Backend backend, String name) {
            for (Tensor t : new Tensor[] {sortedPairs, tileExperts, paddedTotal, expertCounts})
                Checks.usable(name, t, backend.device());
        }
    }

    /** Aligns ids (T, k) i32, which must lie in [0, experts) (see {@link Router#checkRouting}). */
    public static void align(Backend backend, Buffers out, Tensor ids) {
        MoeChecks.backend(backend);
        if (out == null) throw new IllegalArgumentException("out is null");
        out.checkOn(backend, "out");
        Checks.usable("ids", ids, backend.device());
        Checks.contiguous("ids", ids);
        if (ids.dtype() != DType.I32) throw new IllegalArgumentException("ids has dtype " + ids.dtype().label() + ", expected i32");
        if (ids.elementCount() != out.pairs())
            throw new IllegalArgumentException("ids holds " + ids.elementCount() + " pairs but out was sized for " + out.pairs());
        switch (backend) {
            case CpuBackend cpu -> {
                long[] id = ids.toLongArray();
                for (int i = 0; i < id.length; i++)
                    if (id[i] < 0 || id[i] >= out.experts())
                        throw new IllegalArgumentException("ids[" + i + "] = " + id[i] + " is out of range for " + out.experts() + " experts");
                MoeReference.align(out, ids);
            }
            case CudaBackend cuda -> MoeCuda.align(cuda, out, ids);
        }
    }
}
