package dev.isthmus.cli;

import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Map;

/** What the two causal-conv1d ops share: the silu option and the weight and bias. */
final class ConvOpParts {
    private ConvOpParts() {}

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
