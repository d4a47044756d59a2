package dev.isthmus.cli;

import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * `isthmus op selective-scan`: {@link SelectiveScan#scan}, or {@link SelectiveScan#scanPacked}
 * when seq_starts is given, always writing the final state.
 */
final class SelectiveScanOp implements Op {
    @Override
    public String name() {
        return "selective-scan";
    }

    @Override
    public String description() {
        return "Mamba selective scan: h = exp(dt*A) * h + dt * B * u; y = C . h + D * u, y *= silu(z)";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = ScanOpParts.activationsAndWeights("(B, D, L)", "(B, G, N, L)", "the input");
        specs.addAll(List.of(
                new TensorSpec("initial_state", "(B, D, N); (S, D, N) packed", FLOATS, true, "state before step 0 (else 0); f32"),
                new TensorSpec("seq_starts", "(S + 1)", ScanOpParts.INDICES, true,
                        "packed input (B = 1): sequence i is [seq_starts[i], seq_starts[i+1]), from 0 to L; i32")));
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(ScanOpParts.SOFTPLUS);
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("y", "(B, D, L)", Set.of(), false, "u's dtype"),
                new TensorSpec("final_state", "(B, D, N); (S, D, N) packed", Set.of(), false, "f32: the state after each sequence's last step"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return ScanOpParts.kernelDtypes(given, "initial_state", "seq_starts");
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor u = in.get("u"), seqStarts = in.get("seq_starts"), initialState = in.get("initial_state");
        Checks.rank("u", u, 3);
        long batch = u.dim(0), channels = u.dim(1), length = u.dim(2);
        long[] groupsAndStates = ScanOpParts.checkActivationsAndWeights(in);
        long groups = groupsAndStates[0], nstate = groupsAndStates[1];
        long rows = batch;
        if (seqStarts != null) {
            if (batch != 1) throw new IllegalArgumentException("u has B = " + batch + "; packed input (seq_starts) is one row, B = 1");
            Checks.rank("seq_starts", seqStarts, 1);
            rows = seqStarts.dim(0) - 1;
            checkStarts(seqStarts.toLongArray(), length);
        }
        if (initialState != null) Checks.shape("initial_state", initialState, rows, channels, nstate);
        boolean softplus = options.getBoolean("softplus");

        DType dtype = u.dtype();
        List<Output> outputs = List.of(new Output("y", dtype, u.shape(), null),
                new Output("final_state", DType.F32, new long[] {rows, channels, nstate}, null, ScanOpParts.STATE_BOUND));
        Kernel kernel = seqStarts == null
                ? (bk, i, o) -> SelectiveScan.scan(bk, o.get("y"), o.get("final_state"), i.get("u"), i.get("delta"), i.get("z"),
                        i.get("B"), i.get("C"), ScanOpParts.weights(i, softplus), i.get("initial_state"))
                : (bk, i, o) -> SelectiveScan.scanPacked(bk, o.get("y"), o.get("final_state"), i.get("u"), i.get("delta"), i.get("z"),
                        i.get("B"), i.get("C"), ScanOpParts.weights(i, softplus), i.get("seq_starts"), i.get("initial_state"));
        // As ScanBench counts: u, delta (and z) read and y written once; B and C read once; the
        // final state written (and the initial one read); the fp32 weights and the starts read once.
        double tokens = (double) batch * channels * length, state = 4.0 * rows * channels * nstate;
        double bytes = (in.get("z") != null ? 4 : 3) * tokens * dtype.byteSize() + 2.0 * batch * groups * nstate * length * dtype.byteSize()
                + state * (initialState != null ? 2 : 1) + ScanOpParts.weightBytes(in, channels, nstate)
                + (seqStarts != null ? 4.0 * (rows + 1) : 0);
        String shape = "B" + batch + "xD" + channels + "xL" + length + "xN" + nstate + (groups > 1 ? "xG" + groups : "")
                + (seqStarts != null ? "xS" + rows : "");
        return new Call(outputs, kernel, seqStarts == null ? "selective-scan" : "selective-scan-packed", shape, dtype, bytes, 0);
    }

    /**
     * Checked here because on the GPU the starts are read on the device only: a start outside
     * 0..L would address memory outside the tensors.
     */
    private static void checkStarts(long[] starts, long length) {
        if (starts.length < 2) throw new IllegalArgumentException("seq_starts needs at least 2 entries (one sequence), has " + starts.length);
        if (starts[0] != 0 || starts[starts.length - 1] != length)
            throw new IllegalArgumentException("seq_starts must run from 0 to L = " + length + ", runs from " + starts[0] + " to "
                    + starts[starts.length - 1]);
        for (int i = 1; i < starts.length; i++)
            if (starts[i] < starts[i - 1])
                throw new IllegalArgumentException("seq_starts must not decrease: seq_starts[" + i + "] = " + starts[i] + " < " + starts[i - 1]);
    }
}
