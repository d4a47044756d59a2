package dev.isthmus.cli;

import dev.isthmus.moe.Router;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** `isthmus op moe-route`: {@link Router#topK}, a router's logits to each token's k experts and weights. */
final class MoeRouteOp implements Op {
    @Override
    public String name() {
        return "moe-route";
    }

    @Override
    public String description() {
        return "top-k routing: (weights, ids) = top-k of softmax(logits) or sigmoid(logits) (+ bias for the choice only)";
    }

    @Override
    public List<TensorSpec> inputs() {
        return List.of(
                new TensorSpec("logits", "(T, E)", FLOATS, false, "the router's scores, usually x W_g^T; taken in their dtype"),
                new TensorSpec("bias", "(E)", FLOATS, true, "added to the scores to choose experts, left out of the weights; f32"));
    }

    @Override
    public List<OptionSpec> options() {
        return MoeOpParts.ROUTER;
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("weights", "(T, k)", Set.of(), false, "f32, slot 0 the best"),
                new TensorSpec("ids", "(T, k)", Set.of(), false, "i32 expert ids; ties go to the lower expert"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return given.containsKey("bias") ? Map.of("logits", given.get("logits"), "bias", DType.F32) : given;
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor logits = in.get("logits");
        Checks.rank("logits", logits, 2);
        long tokens = logits.dim(0), experts = logits.dim(1);
        if (in.get("bias") != null) Checks.shape("bias", in.get("bias"), experts);
        RouterConfig config = MoeOpParts.config(options, experts);

        long[] shape = {tokens, config.topK()};
        List<Output> outputs = List.of(new Output("weights", DType.F32, shape, null), new Output("ids", DType.I32, shape, null));
        Kernel kernel = (bk, i, o) -> Router.topK(bk, o.get("weights"), o.get("ids"), i.get("logits"), i.get("bias"), config);
        // The logits (and bias) read once, the weights and ids written.
        double bytes = (double) tokens * experts * logits.dtype().byteSize() + (in.get("bias") != null ? 4.0 * experts : 0) + 8.0 * tokens * config.topK();
        String benchShape = "T=" + tokens + ";E=" + experts + ";k=" + config.topK() + (config.groups() > 1 ? ";G=" + config.groups() + ";TG=" + config.topGroups() : "");
        return new Call(outputs, kernel, "moe-route", benchShape, logits.dtype(), bytes, 0);
    }
}
