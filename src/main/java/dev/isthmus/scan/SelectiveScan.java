package dev.isthmus.scan;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Set;

/**
 * The selective scan of Mamba-1 (Gu &amp; Dao 2023, Algorithm 2 and section 3.3). Per batch b,
 * channel d, state n and time t, with group g = d / (D / G):
 *
 * <pre>
 *   dt       = delta[b,d,t] (+ deltaBias[d], then softplus if asked)
 *   h[n]     = exp(dt * A[d,n]) * h[n] + dt * B[b,g,n,t] * u[b,d,t]
 *   y[b,d,t] = sum_n C[b,g,n,t] * h[n] + D[d] * u[b,d,t];  then y *= silu(z[b,d,t]) if z is given
 * </pre>
 *
 * Shapes, all contiguous: u, delta, z, y (B, D, L) and B, C (B, G, N, L) share one dtype (f32, f16,
 * bf16); the {@link ScanWeights} and every state are f32; states are (B, D, N). N is 1..256.
 *
 * <ul>
 *   <li>{@link #scan} runs whole sequences, from an optional initial state, and returns the state
 *       after the last step so that decoding can continue from it.</li>
 *   <li>{@link #scanPacked} runs several sequences concatenated along L in a batch of one row, as
 *       training data is packed: the state restarts at every start offset and each sequence gets
 *       its own final state.</li>
 *   <li>{@link #step} advances one token per batch row, the state updated in place in a pool of
 *       slots, as inference servers keep states.</li>
 * </ul>
 */
public final class SelectiveScan {
    private SelectiveScan() {}

    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);
    static final int MAX_STATE = 256;

    /**
     * y = scan(u, delta, B, C; weights) over (B, D, L), from initialState (or 0).
     *
     * @param finalState   (B, D, N) f32 receiving the state after step L-1, or null; may be initialState
     * @param z            (B, D, L) gate, or null
     * @param initialState (B, D, N) f32, or null for zeros
     */
    public static void scan(Backend backend, Tensor y, Tensor finalState, Tensor u, Tensor delta, Tensor z, Tensor b,
                            Tensor c, ScanWeights weights, Tensor initialState) {
        Shape s = checkSequence(backend, y, u, delta, z, b, c, weights);
        checkState("initialState", initialState, backend, s.batch, s.channels, s.nstate);
        checkState("finalState", finalState, backend, s.batch, s.channels, s.nstate);
        if (u.elementCount() == 0) { // no steps, or nothing to step: the state passes through
            ScanStates.carry(backend, finalState, initialState);
            return;
        }
        run(backend, y, finalState, u, delta, z, b, c, weights, initialState, null);
    }

    /**
     * The scan of a packed batch: B = 1 and seqStarts (nseq + 1, i32) splits L into sequences
     * [seqStarts[i], seqStarts[i+1]), from 0 to L, non-decreasing (empty sequences allowed). Each
     * sequence starts from initialStates[i] (or 0) and ends in finalStates[i]; states (nseq, D, N).
     * It costs the same as one sequence of length L.
     */
    public static void scanPacked(Backend backend, Tensor y, Tensor finalStates, Tensor u, Tensor delta, Tensor z,
                                  Tensor b, Tensor c, ScanWeights weights, Tensor seqStarts, Tensor initialStates) {
        Shape s = checkSequence(backend, y, u, delta, z, b, c, weights);
        if (s.batch != 1) throw new IllegalArgumentException("u: a packed batch has one row (B = 1), got B = " + s.batch);
        Checks.usable("seqStarts", seqStarts, backend.device());
        Checks.dtypeIn("seqStarts", seqStarts, Set.of(DType.I32));
        Checks.rank("seqStarts", seqStarts, 1);
        Checks.contiguous("seqStarts", seqStarts);
        long sequences = seqStarts.dim(0) - 1;
        if (sequences < 1) throw new IllegalArgumentException("seqStarts needs at least 2 entries (one sequence), has " + seqStarts.dim(0));
        if (seqStarts.isHost()) SequenceChecks.starts(seqStarts.toLongArray(), s.length);
        checkState("initialStates", initialStates, backend, sequences, s.channels, s.nstate);
        checkState("finalStates", finalStates, backend, sequences, s.channels, s.nstate);
        if (u.elementCount() == 0) { // every sequence is empty, or there are no channels
            ScanStates.carry(backend, finalStates, initialStates);
            return;
        }
        run(backend, y, finalStates, u, delta, z, b, c, weights, initialStates, seqStarts);
    }

    /**
     * One decode step: u, delta, z, y (B, D); B, C (B, G, N). Row r advances state slot
     * slots[r] of the pool (P, D, N) f32 in place, or slot r when slots is null (then P = B).
     * A negative slot marks a padding row: its state is left alone and its y is 0. Slots must be
     * below P and no slot may appear twice; the slots are checked here when they are on the host
     * (on a GPU the kernel never touches a slot out of range, nor one that an earlier row names: it
     * gives such a row a NaN y instead).
     */
    public static void step(Backend backend, Tensor y, Tensor state, Tensor slots, Tensor u, Tensor delta, Tensor z,
                            Tensor b, Tensor c, ScanWeights weights) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkActivation("u", u, backend);
        Checks.rank("u", u, 2);
        long batch = u.dim(0), channels = u.dim(1);
        checkLike("delta", delta, u, backend, batch, channels);
        checkLike("y", y, u, backend, batch, channels);
        if (z != null) checkLike("z", z, u, backend, batch, channels);
        checkActivation("b", b, backend);
        Checks.rank("b", b, 3);
        if (b.dim(0) != batch) throw new IllegalArgumentException("b has shape (" + b.dim(0) + ", ...) but u has batch " + batch);
        long groups = b.dim(1), nstate = b.dim(2);
        checkLike("b", b, u, backend, batch, groups, nstate);
        checkGroupsAndState(channels, groups, nstate);
        checkLike("c", c, u, backend, batch, groups, nstate);
        checkWeights(weights, backend, channels, nstate);
        Checks.usable("state", state, backend.device());
        Checks.dtypeIn("state", state, Set.of(DType.F32));
        Checks.rank("state", state, 3);
        long pool = state.dim(0);
        Checks.shape("state", state, pool, channels, nstate);
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
        if (y.elementCount() == 0) return; // no rows or no channels: no state changes
        switch (backend) {
            case CpuBackend cpu -> SelectiveScanReference.step(y, state, slots, u, delta, z, b, c, weights);
            case CudaBackend cuda -> SelectiveScanCuda.step(cuda, y, state, slots, u, delta, z, b, c, weights);
        }
    }

    private record Shape(long batch, long channels, long length, long groups, long nstate) {}

    private static void run(Backend backend, Tensor y, Tensor finalState, Tensor u, Tensor delta, Tensor z, Tensor b,
                            Tensor c, ScanWeights weights, Tensor initialState, Tensor seqStarts) {
        switch (backend) {
            case CpuBackend cpu -> SelectiveScanReference.scan(y, finalState, u, delta, z, b, c, weights, initialState, seqStarts);
            case CudaBackend cuda -> SelectiveScanCuda.scan(cuda, y, finalState, u, delta, z, b, c, weights, initialState, seqStarts);
        }
    }

    private static Shape checkSequence(Backend backend, Tensor y, Tensor u, Tensor delta, Tensor z, Tensor b, Tensor c,
                                       ScanWeights weights) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checkActivation("u", u, backend);
        Checks.rank("u", u, 3);
        long batch = u.dim(0), channels = u.dim(1), length = u.dim(2);
        checkLike("delta", delta, u, backend, u.shape());
        checkLike("y", y, u, backend, u.shape());
        if (z != null) checkLike("z", z, u, backend, u.shape());
        checkActivation("b", b, backend);
        Checks.rank("b", b, 4);
        long groups = b.dim(1), nstate = b.dim(2);
        checkLike("b", b, u, backend, batch, groups, nstate, length);
        checkGroupsAndState(channels, groups, nstate);
        checkLike("c", c, u, backend, batch, groups, nstate, length);
        checkWeights(weights, backend, channels, nstate);
        Checks.disjoint("y", y, "u", u);
        Checks.disjoint("y", y, "delta", delta);
        if (z != null) Checks.disjoint("y", y, "z", z);
        return new Shape(batch, channels, length, groups, nstate);
    }

    private static void checkActivation(String name, Tensor t, Backend backend) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, DTYPES);
        Checks.contiguous(name, t);
    }

    private static void checkLike(String name, Tensor t, Tensor u, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.sameDtype(name, t, "u", u);
        Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }

    private static void checkGroupsAndState(long channels, long groups, long nstate) {
        if (groups < 1 || channels % groups != 0)
            throw new IllegalArgumentException("b has " + groups + " groups, which must divide the " + channels + " channels of u");
        if (nstate < 1 || nstate > MAX_STATE)
            throw new IllegalArgumentException("b has state size N = " + nstate + ", expected 1.." + MAX_STATE);
    }

    private static void checkWeights(ScanWeights weights, Backend backend, long channels, long nstate) {
        if (weights == null) throw new IllegalArgumentException("weights is null");
        checkParameter("a", weights.a(), backend, channels, nstate);
        if (weights.d() != null) checkParameter("d", weights.d(), backend, channels);
        if (weights.deltaBias() != null) checkParameter("deltaBias", weights.deltaBias(), backend, channels);
    }

    private static void checkParameter(String name, Tensor t, Backend backend, long... shape) {
        Checks.usable(name, t, backend.device());
        Checks.dtypeIn(name, t, Set.of(DType.F32));
        Checks.shape(name, t, shape);
        Checks.contiguous(name, t);
    }

    private static void checkState(String name, Tensor t, Backend backend, long rows, long channels, long nstate) {
        if (t != null) checkParameter(name, t, backend, rows, channels, nstate);
    }
}
