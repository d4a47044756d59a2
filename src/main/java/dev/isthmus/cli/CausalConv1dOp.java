package dev.isthmus.cli;

import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op causal-conv1d`: {@link CausalConv1d#apply} over whole sequences, writing the conv state after them. */
final class CausalConv1dOp implements Op {
    @Override
    public String name() {
        return "causal-conv1d";
    }

    @Override
    public String description() {
        return "causal depthwise conv: out[b,d,t] = bias[d] + sum_k weight[d,k] * x[b,d,t-W+1+k], then silu if asked";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = new ArrayList<>(List.of(new TensorSpec("x", "(B, D, L)", FLOATS, false, "the input; its dtype is the op's")));
        specs.addAll(ConvOpParts.WEIGHT_AND_BIAS);
        specs.add(new TensorSpec("initial_state", "(B, D, W-1)", FLOATS, true, "the inputs before t = 0, oldest first (else 0); x's dtype"));
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(ConvOpParts.SILU);
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("out", "(B, D, L)", Set.of(), false, "x's dtype"),
                new TensorSpec("final_state", "(B, D, W-1)", Set.of(), true, "the last W-1 inputs, oldest first; only when W > 1"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return Op.allLike(given, "x");
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor x = in.get("x"), initialState = in.get("initial_state");
        Checks.rank("x", x, 3);
        long batch = x.dim(0), channels = x.dim(1), length = x.dim(2);
        long width = ConvOpParts.checkWeights(in, channels);
        if (initialState != null) Checks.shape("initial_state", initialState, batch, channels, width - 1);
        boolean silu = options.getBoolean("silu");

        DType dtype = x.dtype();
        List<Output> outputs = new ArrayList<>(List.of(new Output("out", dtype, x.shape(), null)));
        if (width > 1) outputs.add(new Output("final_state", dtype, new long[] {batch, channels, width - 1}, null));
        Kernel kernel = (bk, i, o) -> CausalConv1d.apply(bk, o.get("out"), o.get("final_state"), i.get("x"), i.get("weight"), i.get("bias"),
                i.get("initial_state"), silu);
        // As ScanBench counts: x read and out written once, the weight and bias read once; here also
        // the final state written and the initial one read.
        double state = (double) batch * channels * (width - 1) * dtype.byteSize();
        double bytes = 2.0 * batch * channels * length * dtype.byteSize() + ConvOpParts.weightBytes(in, channels, width, dtype)
                + state * (initialState != null ? 2 : 1);
        return new Call(outputs, kernel, "causal-conv1d", "B" + batch + "xD" + channels + "xL" + length + "xW" + width, dtype, bytes, 0);
    }
}
