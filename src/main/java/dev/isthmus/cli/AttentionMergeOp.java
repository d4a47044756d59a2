package dev.isthmus.cli;

import dev.isthmus.attention.Attention;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op attention-merge`: {@link Attention#merge}, P partial attention results combined by their log-sum-exp. */
final class AttentionMergeOp implements Op {
    /** The merged f32 lse: a log of a sum of a few fp32 exponentials, as the attention tests hold it. */
    private static final double LSE_BOUND = 1e-5;

    @Override
    public String name() {
        return "attention-merge";
    }

    @Override
    public String description() {
        return "L = ln(sum_i exp(L_i)); out = sum_i exp(L_i - L) * out_i over P partial results";
    }

    @Override
    public List<TensorSpec> inputs() {
        return List.of(
                new TensorSpec("part_outs", "(P, ..., d)", FLOATS, false, "the partial outputs out_i; their dtype is the op's"),
                new TensorSpec("part_lses", "(P, ...)", FLOATS, false, "their log-sum-exps L_i (natural log, -inf: empty); converted to f32"));
    }

    @Override
    public List<OptionSpec> options() {
        return List.of();
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(new TensorSpec("out", "(..., d)", Set.of(), false, "part_outs' dtype"),
                new TensorSpec("lse", "(...)", Set.of(), false, "f32: L"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        Map<String, DType> needed = Op.allLike(given, "part_outs");
        needed.put("part_lses", DType.F32);
        return needed;
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor parts = in.get("part_outs"), lses = in.get("part_lses");
        Checks.rankAtLeast("part_outs", parts, 2);
        long[] shape = parts.shape();
        if (shape[0] < 1) throw new IllegalArgumentException("part_outs holds no parts (P = 0)");
        long[] lseShape = Arrays.copyOf(shape, shape.length - 1);
        Checks.shape("part_lses", lses, lseShape);

        DType dtype = parts.dtype();
        long[] outShape = Arrays.copyOfRange(shape, 1, shape.length), rowShape = Arrays.copyOfRange(lseShape, 1, lseShape.length);
        List<Output> outputs = List.of(new Output("out", dtype, outShape, null), new Output("lse", DType.F32, rowShape, null, LSE_BOUND));
        Kernel kernel = (bk, i, o) -> Attention.merge(bk, o.get("out"), o.get("lse"), i.get("part_outs"), i.get("part_lses"));
        long partsCount = shape[0], headDim = shape[shape.length - 1], rows = lses.elementCount() / partsCount;
        // Every part's out and lse read once, the merged out and lse written.
        double bytes = (partsCount + 1) * (double) rows * (headDim * dtype.byteSize() + 4);
        return new Call(outputs, kernel, "attention-merge", "p" + partsCount + "-rows" + rows + "-d" + headDim, dtype, bytes, 0);
    }
}
