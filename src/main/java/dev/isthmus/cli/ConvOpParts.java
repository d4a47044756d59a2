package dev.isthmus.cli;

import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.List;
import java.util.Map;

/** What the two causal-conv1d ops share: the weight and bias, their checks and bytes, and the silu option. */
final class ConvOpParts {
    private ConvOpParts() {}

    static final List<Op.TensorSpec> WEIGHT_AND_BIAS = List.of(
            new Op.TensorSpec("weight", "(D, W)", Op.FLOATS, false, "W 1..8; converted to x's dtype"),
            new Op.TensorSpec("bias", "(D)", Op.FLOATS, true, "converted to x's dtype"));

    static final Op.OptionSpec SILU = new Op.OptionSpec("silu", Op.OptionType.BOOLEAN, "false", "out = silu(out) (true in a Mamba block)");

    /** Checks weight (D, W) with W >= 1 (the kernel's upper limit is checked by the API) and bias (D); returns W. */
    static long checkWeights(Map<String, Tensor> in, long channels) {
        Tensor weight = in.get("weight");
        Checks.rank("weight", weight, 2);
        Checks.shape("weight", weight, channels, weight.dim(1));
        if (weight.dim(1) < 1) throw new IllegalArgumentException("weight has width W = 0; the conv needs W >= 1");
        if (in.get("bias") != null) Checks.shape("bias", in.get("bias"), channels);
        return weight.dim(1);
    }

    /** Bytes of the weight and bias, read once. */
    static double weightBytes(Map<String, Tensor> in, long channels, long width, DType dtype) {
        return (double) channels * (width + (in.get("bias") != null ? 1 : 0)) * dtype.byteSize();
    }
}
