package dev.isthmus.cli;

import dev.isthmus.scan.ScanWeights;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the two selective-scan ops share: the fp32 weights A, D, delta_bias and the softplus
 * option ({@link ScanWeights}), the dtypes the kernels need, and the checks of the group count.
 */
final class ScanOpParts {
    private ScanOpParts() {}

    /** The --check bound of an fp32 state: the GPU's exponentials are approximate, and a scan chains thousands. */
    static final double STATE_BOUND = 1e-4;

    /** Index tensors (slots, sequence starts) come as i32 or i64 and are converted to i32. */
    static final Set<DType> INDICES = Set.of(DType.I32, DType.I64);

    private static final List<Op.TensorSpec> WEIGHTS = List.of(
            new Op.TensorSpec("A", "(D, N)", Op.FLOATS, false, "the state matrix, Mamba's -exp(A_log); converted to f32"),
            new Op.TensorSpec("D", "(D)", Op.FLOATS, true, "skip weight; converted to f32"),
            new Op.TensorSpec("delta_bias", "(D)", Op.FLOATS, true, "added to delta before the softplus; converted to f32"));

    /** u, delta, B, C of tokens shaped {@code tokens} (B and C shaped {@code projections}), then the fp32 weights. */
    static List<Op.TensorSpec> activationsAndWeights(String tokens, String projections, String aboutU) {
        List<Op.TensorSpec> specs = new ArrayList<>(List.of(
                new Op.TensorSpec("u", tokens, Op.FLOATS, false, aboutU + "; its dtype is the op's"),
                new Op.TensorSpec("delta", tokens, Op.FLOATS, false, "dt before bias and softplus; converted to u's dtype"),
                new Op.TensorSpec("B", projections, Op.FLOATS, false, "input projection; G groups divide D; N 1..256; u's dtype"),
                new Op.TensorSpec("C", projections, Op.FLOATS, false, "output projection; converted to u's dtype")));
        specs.addAll(WEIGHTS);
        specs.add(new Op.TensorSpec("z", tokens, Op.FLOATS, true, "gate: y *= silu(z); converted to u's dtype"));
        return specs;
    }

    static final Op.OptionSpec SOFTPLUS =
            new Op.OptionSpec("softplus", Op.OptionType.BOOLEAN, "false", "dt = softplus(delta + delta_bias) (true in a Mamba block)");

    /**
     * The activations in u's dtype; A, D, delta_bias and the named fp32 tensors (states) in f32;
     * the named index tensors in i32.
     */
    static Map<String, DType> kernelDtypes(Map<String, DType> given, String f32State, String indices) {
        Map<String, DType> needed = Op.allLike(given, "u");
        for (String name : List.of("A", "D", "delta_bias", f32State)) if (given.containsKey(name)) needed.put(name, DType.F32);
        if (given.containsKey(indices)) needed.put(indices, DType.I32);
        return needed;
    }

    /**
     * Checks delta and z against u (B, D[, L]), B and C (B, G, N[, L]), G dividing D, and A, D,
     * delta_bias against (D, N); returns {G, N}.
     */
    static long[] checkActivationsAndWeights(Map<String, Tensor> in) {
        Tensor u = in.get("u"), b = in.get("B");
        for (String name : List.of("delta", "z")) if (in.get(name) != null) Checks.shape(name, in.get(name), u.shape());
        Checks.rank("B", b, u.rank() + 1);
        long groups = b.dim(1), nstate = b.dim(2);
        long[] projections = u.rank() == 3 ? new long[] {u.dim(0), groups, nstate, u.dim(2)} : new long[] {u.dim(0), groups, nstate};
        Checks.shape("B", b, projections);
        Checks.shape("C", in.get("C"), projections);
        long channels = u.dim(1);
        if (groups < 1 || channels % groups != 0)
            throw new IllegalArgumentException("B has " + groups + " groups, which must divide the " + channels + " channels of u");
        Checks.shape("A", in.get("A"), channels, nstate);
        if (in.get("D") != null) Checks.shape("D", in.get("D"), channels);
        if (in.get("delta_bias") != null) Checks.shape("delta_bias", in.get("delta_bias"), channels);
        return new long[] {groups, nstate};
    }

    static ScanWeights weights(Map<String, Tensor> in, boolean softplus) {
        return new ScanWeights(in.get("A"), in.get("D"), in.get("delta_bias"), softplus);
    }

    /** Bytes of the fp32 weights read once: A, and D and delta_bias when given (as ScanBench counts them). */
    static double weightBytes(Map<String, Tensor> in, long channels, long nstate) {
        return 4.0 * channels * (nstate + (in.get("D") != null ? 1 : 0) + (in.get("delta_bias") != null ? 1 : 0));
    }
}
