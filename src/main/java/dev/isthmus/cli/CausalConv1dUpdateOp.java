package dev.isthmus.cli;

import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op causal-conv1d-update`: {@link CausalConv1d#update}, one token, the conv state shifted in place. */
final class CausalConv1dUpdateOp implements Op {
    @Override
    public String name() {
        return "causal-conv1d-update";
    }

    @Override
    public String description() {
        return "one token of the causal conv: out = conv of (conv_state, x), then conv_state drops its oldest input and appends x";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = new ArrayList<>(List.of(
                new TensorSpec("x", "(B, D)", FLOATS, false, "one token per row; its dtype is the op's"),
                new TensorSpec("conv_state", "(B, D, W-1)", FLOATS, true, "the last W-1 inputs, oldest first; needed when W > 1; x's dtype")));
        specs.addAll(ConvOpParts.WEIGHT_AND_BIAS);
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(ConvOpParts.SILU);
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("out", "(B, D)", Set.of(), false, "x's dtype"),
                new TensorSpec("conv_state", "(B, D, W-1)", Set.of(), true, "the state after the token; when conv_state is given"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return Op.allLike(given, "x");
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor x = in.get("x"), convState = in.get("conv_state");
        Checks.rank("x", x, 2);
        long batch = x.dim(0), channels = x.dim(1);
        long width = ConvOpParts.checkWeights(in, channels);
        if (convState != null) Checks.shape("conv_state", convState, batch, channels, width - 1);
        else if (width > 1) throw new IllegalArgumentException("missing tensor 'conv_state' (B, D, W-1), needed for width W = " + width);
        boolean silu = options.getBoolean("silu");

        DType dtype = x.dtype();
        List<Output> outputs = new ArrayList<>(List.of(new Output("out", dtype, x.shape(), null)));
        if (convState != null) outputs.add(new Output("conv_state", dtype, convState.shape(), "conv_state"));
        Kernel kernel = (bk, i, o) -> CausalConv1d.update(bk, o.get("out"), o.get("conv_state"), i.get("x"), i.get("weight"), i.get("bias"), silu);
        // x read and out written; the conv state read and written back; the weight and bias read once.
        double bytes = 2.0 * batch * channels * width * dtype.byteSize() + ConvOpParts.weightBytes(in, channels, width, dtype);
        return new Call(outputs, kernel, "causal-conv1d-update", "B" + batch + "xD" + channels + "xW" + width, dtype, bytes, 0);
    }
}
