package dev.isthmus.ssd;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.scan.ScanStates;
import dev.isthmus.scan.SequenceChecks;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * The state-space-dual (SSD) scan of Mamba-2 (Dao &amp; Gu 2024, "Transformers are SSMs", section
 * 7). Per batch row, head h (with scalar decay A_h), time t, head channel p and state n, with group
 * g = h / (H / G):
 *
 * <pre>
 *   dt'      = clamp(softplus(dt[t,h] + dtBias[h]), dtMin, dtMax)   (softplus if asked)
 *   S[p,n]   = exp(dt' A_h) S[p,n] + dt' x[t,h,p] B[t,g,n]
 *   y[t,h,p] = sum_n C[t,g,n] S[p,n] + D[h] x[t,h,p]
 * </pre>
 *
 * The gate z of Mamba-2 is not part of the scan: it enters through {@link #gatedRmsNorm}.
 *
 * <p>Shapes, all contiguous: x, y (B, L, H, P); dt (B, L, H); B, C (B, L, G, N), G dividing H; one
 * dtype for all of them (f32, f16, bf16). {@link SsdWeights} and every state are f32; states are
 * (rows, H, P, N). P is 1..{@value #MAX_HEAD_DIM}, N is 1..{@value #MAX_STATE}.
 *
 * <ul>
 *   <li>{@link #scan} runs whole sequences from an optional initial state and returns the state
 *       after the last step.</li>
 *   <li>{@link #scanPacked} runs several sequences concatenated along L in one row (B = 1), split
 *       anywhere: the state restarts at every start offset, and each sequence has its own initial
 *       and final state.</li>
 *   <li>{@link #step} advances one token per row, the state updated in place in a pool of slots.</li>
 * </ul>
 */
public final class Ssd {
    private Ssd() {}

    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);
    public static final int MAX_STATE = 256;
    public static final int MAX_HEAD_DIM = 256;
    /** The chunk lengths the CUDA kernel supports (0 lets it choose). */
    static final Set<Integer> CHUNKS = Set.of(0, 16, 32, 64);

    /**
     * y = ssd(x, dt, B, C; weights) over (B, L, H, P), from initialStates (or 0).
     *
     * @param finalStates   (B, H, P, N) f32 receiving the state after step L-1, or null
     * @param initialStates (B, H, P, N) f32, or null for zeros
     */
    public static void scan(Backend backend, Tensor y, Tensor finalStates, Tensor x, Tensor dt, Tensor b, Tensor c,
                            SsdWeights weights, Tensor initialStates) {
        scan(backend, y, finalStates, x, dt, b, c, weights, initialStates, null, 0);
    }

    /**
     * The scan of a packed batch: B = 1 and seqStarts (nseq + 1, i32) splits L into sequences
     * [seqStarts[i], seqStarts[i+1]), from 0 to L, non-decreasing (empty sequences allowed), with
     * no regard to any chunk grid. States are (nseq, H, P, N).
     */
    public static void scanPacked(Backend backend, Tensor y, Tensor finalStates, Tensor x, Tensor dt, Tensor b, Tensor c,
                                  SsdWeights weights, Tensor seqStarts, Tensor initialStates) {
        if (seqStarts == null) throw new IllegalArgumentException("seqStarts is null (use scan for unpacked rows)");
        scan(backend, y, finalStates, x, dt, b, c, weights, initialStates, seqStarts, 0);
    }

    /** Both scans; chunk picks the CUDA kernel's chunk length (0: its own choice), for tests. */
    static void scan(Backend backend, Tensor y, Tensor finalStates, Tensor x, Tensor dt, Tensor b, Tensor c,
                     SsdWeights weights, Tensor initialStates, Tensor seqStarts, int chunk) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (!CHUNKS.contains(chunk)) throw new IllegalArgumentException("chunk " + chunk + " is not one of " + CHUNKS);
        checkActivation("x", x, backend);
        Checks.rank("x", x, 4);
        long batch = x.dim(0), length = x.dim(1), heads = x.dim(2), headDim = x.dim(3);
        checkLike("y", y, x, backend, x.shape());
        checkLike("dt", dt, x, backend, batch, length, heads);
        checkActivation("b", b, backend);
        Checks.rank("b", b, 4);
        long groups = b.dim(2), nstate = b.dim(3);
        checkLike("b", b, x, backend, batch, length, groups, nstate);
        checkLike("c", c, x, backend, batch, length, groups, nstate);
        checkSizes(heads, headDim, groups, nstate);
        checkWeights(weights, backend, heads);
        Checks.disjoint("y", y, "x", x);
        Checks.disjoint("y", y, "dt", dt);
        Checks.disjoint("y", y, "b", b);
        Checks.disjoint("y", y, "c", c);
        long rows = batch;
        if (seqStarts != null) {
            if (batch != 1) throw new IllegalArgumentException("x: a packed batch has one row (B = 1), got B = " + batch);
            Checks.usable("seqStarts", seqStarts, backend.device());
            Checks.dtypeIn("seqStarts", seqStarts, Set.of(DType.I32));
            Checks.rank("seqStarts", seqStarts, 1);
            Checks.contiguous("seqStarts", seqStarts);
            rows = seqStarts.dim(0) - 1;
            if (rows < 1) throw new IllegalArgumentException("seqStarts needs at least 2 entries (one sequence), has " + seqStarts.dim(0));
            if (seqStarts.isHost()) SequenceChecks.starts(seqStarts.toLongArray(), length);
        }
        checkState("initialStates", initialStates, backend, rows, heads, headDim, nstate);
        checkState("finalStates", finalStates, backend, rows, heads, headDim, nstate);
        if (finalStates != null && initialStates != null && finalStates != initialStates)
            Checks.disjoint("finalStates", finalStates, "initialStates", initialStates);
        if (x.elementCount() == 0) { // no steps: the states pass through
            ScanStates.carry(backend, finalStates, initialStates);
            return;
        }
        switch (backend) {
            case CpuBackend cpu -> SsdReference.scan(y, finalStates, x, dt, b, c, weights, initialStates, seqStarts);
            case CudaBackend cuda -> SsdCuda.scan(cuda, y, finalStates, x, dt, b, c, weights, initialStates, seqStarts, chunk);
        }
    }

    /**
     * One decode step: x, y (B, H, P); dt (B, H); B, C (B, G, N). Row r advances slot slots[r] of
     * the pool (S, H, P, N) f32 in place, or slot r when slots is null (then S = B). A negative slot
     * marks a padding row: its state is left alone and its y is 0. Slots must be below S and
     * distinct; they are checked here when they are on the host (on a GPU the kernel touches no slot
     * out of range nor one an earlier row names, and gives such a row a NaN y instead).
     */
    public static void step(Backend backend, Tensor y, Tensor state, Tensor slots, Tensor x, Tensor dt, Tensor b,
                            Tensor c, SsdWeights weights) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkActivation("x", x, backend);
        Checks.rank("x", x, 3);
        long batch = x.dim(0), heads = x.dim(1), headDim = x.dim(2);
        checkLike("y", y, x, backend, x.shape());
        checkLike("dt", dt, x, backend, batch, heads);
        checkActivation("b", b, backend);
        Checks.rank("b", b, 3);
        long groups = b.dim(1), nstate = b.dim(2);
        checkLike("b", b, x, backend, batch, groups, nstate);
        checkLike("c", c, x, backend, batch, groups, nstate);
        checkSizes(heads, headDim, groups, nstate);
        checkWeights(weights, backend, heads);
        Checks.disjoint("y", y, "x", x);
        Checks.usable("state", state, backend.device());
        Checks.dtypeIn("state", state, Set.of(DType.F32));
        Checks.rank("state", state, 4);
        long pool = state.dim(0);
        Checks.shape("state", state, pool, heads, headDim, nstate);
        Checks.contiguous("state", state);
        if (slots == null) {
            if (pool != batch) throw new IllegalArgumentException("state has " + pool + " slots but the batch has " + batch + " rows; pass slots");
        } else {
            Checks.usable("slots", slots, backend.device());
            Checks.dtypeIn("slots", slots, Set.of(DType.I32));
            Checks.shape("slots", slots, batch);
            Checks.contiguous("slots", slots);
            if (slots.isHost()) SequenceChecks.slots(slots.toLongArray(), pool);
        }
        if (y.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> SsdReference.step(y, state, slots, x, dt, b, c, weights);
            case CudaBackend cuda -> SsdCuda.step(cuda, y, state, slots, x, dt, b, c, weights);
        }
    }

    /**
     * The gated RMSNorm of Mamba-2 (norm_before_gate = False): v = y * silu(z), then each group of
     * groupSize consecutive channels of the last dimension is normalised on its own,
     * out = v / sqrt(mean_group(v^2) + eps) * weight. y, z, out (..., D) and weight (D) share one
     * dtype; z may be null (no gate); out may be y.
     */
    public static void gatedRmsNorm(Backend backend, Tensor out, Tensor y, Tensor z, Tensor weight, long groupSize, float eps) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkActivation("y", y, backend);
        Checks.rankAtLeast("y", y, 1);
        long width = y.dim(-1);
        checkLike("out", out, y, backend, y.shape());
        if (z != null) {
            checkLike("z", z, y, backend, y.shape());
            Checks.disjoint("out", out, "z", z);
        }
        checkLike("weight", weight, y, backend, width);
        if (groupSize < 1 || width % groupSize != 0)
            throw new IllegalArgumentException("groupSize " + groupSize + " must divide the last dimension " + width + " of y");
        if (!(eps >= 0) || Float.isInfinite(eps)) throw new IllegalArgumentException("eps must be finite and >= 0, got " + eps);
        if (y.elementCount() == 0) return;
        switch (backend) {
            case CpuBackend cpu -> SsdReference.gatedRmsNorm(out, y, z, weight, groupSize, eps);
            case CudaBackend cuda -> SsdCuda.gatedRmsNorm(cuda, out, y, z, weight, groupSize, eps);
        }
    }

    private static void checkActivation(String name, Tensor t, Backend backend) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, DTYPES);
        Checks.contiguous(name, t);
    }

    private static void checkLike(String name, Tensor t, Tensor x, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.sameDtype(name, t, "x", x);
        Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }

    private static void checkSizes(long heads, long headDim, long groups, long nstate) {
        if (heads < 1) throw new IllegalArgumentException("x has no heads");
        if (groups < 1 || heads % groups != 0)
            throw new IllegalArgumentException("b has " + groups + " groups, which must divide the " + heads + " heads of x");
        if (headDim < 1 || headDim > MAX_HEAD_DIM)
            throw new IllegalArgumentException("x has head dimension P = " + headDim + ", expected 1.." + MAX_HEAD_DIM);
        if (nstate < 1 || nstate > MAX_STATE)
            throw new IllegalArgumentException("b has state size N = " + nstate + ", expected 1.." + MAX_STATE);
    }

    private static void checkWeights(SsdWeights w, Backend backend, long heads) {
        if (w == null) throw new IllegalArgumentException("weights is null");
        checkParameter("a", w.a(), backend, heads);
        if (w.d() != null) checkParameter("d", w.d(), backend, heads);
        if (w.dtBias() != null) checkParameter("dtBias", w.dtBias(), backend, heads);
        if (Float.isNaN(w.dtMin()) || Float.isNaN(w.dtMax()) || w.dtMin() > w.dtMax())
            throw new IllegalArgumentException("the time-step limits [" + w.dtMin() + ", " + w.dtMax() + "] are not an interval");
    }

    private static void checkParameter(String name, Tensor t, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, Set.of(DType.F32));
        Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }

    private static void checkState(String name, Tensor t, Backend backend, long... shape) {
        if (t != null) checkParameter(name, t, backend, shape);
    }
}
