package dev.isthmus.cli;

import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op selective-state-update`: {@link SelectiveScan#step}, one decode token per row, the state advanced in place. */
final class SelectiveStateUpdateOp implements Op {
    @Override
    public String name() {
        return "selective-state-update";
    }

    @Override
    public String description() {
        return "one Mamba decode step: state = exp(dt*A) * state + dt * B * u; y = C . state + D * u, y *= silu(z)";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = new ArrayList<>(List.of(
                new TensorSpec("state", "(P, D, N)", FLOATS, false, "the pool of states, advanced in place; converted to f32")));
        specs.addAll(ScanOpParts.activationsAndWeights("(B, D)", "(B, G, N)", "one token per row"));
        specs.addAll(List.of(
                new TensorSpec("slots", "(B)", ScanOpParts.INDICES, true,
                        "row r advances state[slots[r]] (distinct, < P; negative: padding row, y = 0); else row r, P = B; i32")));
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(ScanOpParts.SOFTPLUS);
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("y", "(B, D)", Set.of(), false, "u's dtype"),
                new TensorSpec("state", "(P, D, N)", Set.of(), false, "f32: the pool after the step (padding rows' slots unchanged)"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return ScanOpParts.kernelDtypes(given, "state", "slots");
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor u = in.get("u"), state = in.get("state"), slots = in.get("slots");
        Checks.rank("u", u, 2);
        long batch = u.dim(0), channels = u.dim(1);
        long[] groupsAndStates = ScanOpParts.checkActivationsAndWeights(in);
        long groups = groupsAndStates[0], nstate = groupsAndStates[1];
        Checks.rank("state", state, 3);
        long pool = state.dim(0);
        Checks.shape("state", state, pool, channels, nstate);
        if (slots == null) {
            if (pool != batch) throw new IllegalArgumentException("state has " + pool + " slots but u has " + batch + " rows; give slots");
        } else {
            Checks.shape("slots", slots, batch);
            checkSlots(slots.toLongArray(), pool);
        }
        boolean softplus = options.getBoolean("softplus");

        DType dtype = u.dtype();
        List<Output> outputs = List.of(new Output("y", dtype, u.shape(), null),
                new Output("state", DType.F32, state.shape(), "state", ScanOpParts.STATE_BOUND));
        Kernel kernel = (bk, i, o) -> SelectiveScan.step(bk, o.get("y"), o.get("state"), i.get("slots"), i.get("u"), i.get("delta"),
                i.get("z"), i.get("B"), i.get("C"), ScanOpParts.weights(i, softplus));
        // As ScanBench counts: each row's fp32 state read and written back; u, delta (and z) read and
        // y written; B and C; the fp32 weights and the slots read once.
        double bytes = 2.0 * 4 * batch * channels * nstate + (in.get("z") != null ? 4.0 : 3.0) * batch * channels * dtype.byteSize()
                + 2.0 * batch * groups * nstate * dtype.byteSize() + ScanOpParts.weightBytes(in, channels, nstate)
                + (slots != null ? 4.0 * batch : 0);
        String shape = "B" + batch + "xD" + channels + "xN" + nstate + (groups > 1 ? "xG" + groups : "");
        return new Call(outputs, kernel, "selective-state-update", shape, dtype, bytes, 0);
    }

    /**
     * Checked here because on the GPU the slots are read on the device only, where a bad slot gives
     * a NaN row (out of range) or a race (repeated) instead of an error.
     */
    private static void checkSlots(long[] slots, long pool) {
        Set<Long> seen = new HashSet<>();
        for (int r = 0; r < slots.length; r++) {
            if (slots[r] >= pool) throw new IllegalArgumentException("slots[" + r + "] = " + slots[r] + " is not below the " + pool + " states");
            if (slots[r] >= 0 && !seen.add(slots[r])) throw new IllegalArgumentException("slots[" + r + "] = " + slots[r] + " repeats an earlier row's slot");
        }
    }
}
