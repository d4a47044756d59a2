package dev.isthmus.cli;

import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op rmsnorm`: {@link RmsNorm}, with the residual add fused when a residual is given. */
final class RmsNormOp implements Op {
    @Override
    public String name() {
        return "rmsnorm";
    }

    @Override
    public String description() {
        return "h = x + residual; out = h / sqrt(mean(h^2) + eps) * weight over the last dimension";
    }

    @Override
    public List<TensorSpec> inputs() {
        return List.of(
                new TensorSpec("x", "(..., cols)", FLOATS, false, "the rows to normalize; its dtype is the op's"),
                new TensorSpec("weight", "(cols)", FLOATS, false, "the scale, converted to x's dtype"),
                new TensorSpec("residual", "(..., cols)", FLOATS, true, "added to x first (fused), converted to x's dtype"));
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(new OptionSpec("eps", OptionType.FLOAT, "1e-6", "added to the mean square under the root"));
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("out", "(..., cols)", Set.of(), false, "x's dtype"),
                new TensorSpec("residual_out", "(..., cols)", Set.of(), true, "h = x + residual in x's dtype; only with residual"));
    }

    /** The kernel computes in one dtype, x's. */
    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return Op.allLike(given, "x");
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor x = in.get("x"), weight = in.get("weight"), residual = in.get("residual");
        Checks.rankAtLeast("x", x, 1);
        long cols = x.dim(-1);
        Checks.shape("weight", weight, cols);
        if (residual != null) Checks.shape("residual", residual, x.shape());
        float eps = options.getFloat("eps");
        if (eps < 0) throw new IllegalArgumentException("option 'eps' must be >= 0, got " + eps);

        DType dtype = x.dtype();
        List<Output> outputs = new ArrayList<>(List.of(new Output("out", dtype, x.shape(), null)));
        if (residual != null) outputs.add(new Output("residual_out", dtype, x.shape(), null));
        Kernel kernel = residual == null
                ? (b, i, o) -> RmsNorm.apply(b, o.get("out"), i.get("x"), i.get("weight"), eps)
                : (b, i, o) -> RmsNorm.applyWithResidual(b, o.get("out"), o.get("residual_out"), i.get("x"), i.get("residual"),
                        i.get("weight"), eps);
        long rows = cols == 0 ? 0 : x.elementCount() / cols;
        // Bytes that must move, as the GPU benchmark counts them: x read and out written (with the
        // residual also residual read and h written), plus the weight read once.
        double bytes = (double) x.elementCount() * dtype.byteSize() * (residual == null ? 2 : 4) + (double) cols * dtype.byteSize();
        return new Call(outputs, kernel, residual == null ? "rmsnorm" : "rmsnorm+residual", rows + "x" + cols, dtype, bytes, 0);
    }
}
