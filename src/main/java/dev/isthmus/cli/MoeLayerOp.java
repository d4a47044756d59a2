package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * `isthmus op moe-layer`: {@link MoeLayer#forward}, a whole MoE feed-forward layer, or
 * {@link MoeLayer#forwardRouted} when the routing is given (route_weights, route_ids), so that a
 * check against another framework can pin the experts.
 */
final class MoeLayerOp implements Op {
    @Override
    public String name() {
        return "moe-layer";
    }

    @Override
    public String description() {
        return "out = sum over the top-k experts e of w_e * W2_e(silu(W1_e x) * W3_e x) (+ shared) (+ residual), routed by x W_g^T";
    }

    @Override
    public List<TensorSpec> inputs() {
        return List.of(
                new TensorSpec("x", "(T, H)", FLOATS, false, "the tokens; its dtype is the op's"),
                new TensorSpec("router", "(E, H)", FLOATS, false, "W_g; converted to x's dtype"),
                new TensorSpec("router_bias", "(E)", FLOATS, true, "choice-only bias of the router; f32"),
                new TensorSpec("gate_up", "(E, 2I, H)", FLOATS, false, "W1 (gate) rows, then W3 (up) rows, per expert; x's dtype"),
                new TensorSpec("down", "(E, H, I)", FLOATS, false, "W2 per expert; x's dtype"),
                new TensorSpec("shared", "(T, H)", FLOATS, true, "a shared expert's output, added; x's dtype"),
                new TensorSpec("residual", "(T, H)", FLOATS, true, "added last; x's dtype"),
                new TensorSpec("route_weights", "(T, k)", FLOATS, true, "given routing weights (with route_ids: no router); f32"),
                new TensorSpec("route_ids", "(T, k)", Set.of(DType.I32, DType.I64), true, "given expert ids in [0, E); i32"));
    }

    @Override
    public List<OptionSpec> options() {
        List<OptionSpec> specs = new java.util.ArrayList<>(MoeOpParts.ROUTER);
        specs.add(new OptionSpec("capacity_factor", OptionType.FLOAT, "0", "0: dropless; else experts serve ceil(f * T * k / E) pairs"));
        return specs;
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(new TensorSpec("out", "(T, H)", Set.of(), false, "x's dtype"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        Map<String, DType> needed = Op.allLike(given, "x");
        for (String name : List.of("router_bias", "route_weights")) if (given.containsKey(name)) needed.put(name, DType.F32);
        if (given.containsKey("route_ids")) needed.put("route_ids", DType.I32);
        return needed;
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        Tensor x = in.get("x"), gateUp = in.get("gate_up"), routeWeights = in.get("route_weights"), routeIds = in.get("route_ids");
        Checks.rank("x", x, 2);
        long tokens = x.dim(0), hidden = x.dim(1);
        Checks.rank("gate_up", gateUp, 3);
        long experts = gateUp.dim(0), intermediate = gateUp.dim(1) / 2;
        Checks.shape("gate_up", gateUp, experts, 2 * intermediate, hidden);
        Checks.shape("router", in.get("router"), experts, hidden);
        Checks.shape("down", in.get("down"), experts, hidden, intermediate);
        if (in.get("router_bias") != null) Checks.shape("router_bias", in.get("router_bias"), experts);
        for (String name : List.of("shared", "residual")) if (in.get(name) != null) Checks.shape(name, in.get(name), x.shape());
        RouterConfig config = MoeOpParts.config(options, experts);
        if ((routeWeights == null) != (routeIds == null))
            throw new IllegalArgumentException("route_weights and route_ids come together (given routing), got only " + (routeIds == null ? "route_weights" : "route_ids"));
        if (routeIds != null) {
            Checks.shape("route_ids", routeIds, tokens, config.topK());
            Checks.shape("route_weights", routeWeights, tokens, config.topK());
        }
        float capacityFactor = options.getFloat("capacity_factor");
        if (capacityFactor < 0) throw new IllegalArgumentException("option 'capacity_factor' must be >= 0, got " + capacityFactor);

        DType dtype = x.dtype();
        List<Output> outputs = List.of(new Output("out", dtype, x.shape(), null));
        Kernel kernel = new Layer(config, capacityFactor, tokens, hidden, intermediate, dtype, new IdentityHashMap<>());
        // As MoeBench counts: the weights touched (the router's unless the routing is given, and
        // 3 H I per expert that serves a token: every expert here, the ones that did after the
        // run, see Layer.bytesMoved) and the activations read and written once; FLOPs 2 T E H for
        // the router (unless given) and 2 T k 3 H I for the experts.
        long activations = 2 + (in.get("shared") != null ? 1 : 0) + (in.get("residual") != null ? 1 : 0);
        double bytes = dtype.byteSize() * ((routeIds != null ? 0 : experts * hidden) + experts * 3.0 * hidden * intermediate
                + (double) activations * tokens * hidden);
        double flops = (routeIds != null ? 0 : 2.0 * tokens * experts * hidden) + 2.0 * tokens * config.topK() * 3.0 * hidden * intermediate;
        return new Call(outputs, kernel, "moe-layer", MoeOpParts.shape(tokens, hidden, intermediate, config), dtype, bytes, flops);
    }

    /** The layer with each backend's workspace, allocated on first use and kept for the timed runs. */
    private record Layer(RouterConfig config, double capacityFactor, long tokens, long hidden, long intermediate, DType dtype,
                         Map<Backend, MoeLayer.Workspace> workspaces) implements Kernel {
        @Override
        public void run(Backend backend, Map<String, Tensor> i, Map<String, Tensor> o) {
            MoeLayer.Workspace ws = workspaces.computeIfAbsent(backend,
                    b -> MoeLayer.Workspace.allocate(b, tokens, hidden, intermediate, dtype, config, capacityFactor));
            MoeLayer.Weights w = new MoeLayer.Weights(i.get("router"), i.get("router_bias"), i.get("gate_up"), i.get("down"));
            if (i.get("route_ids") == null) MoeLayer.forward(backend, o.get("out"), i.get("x"), w, config, i.get("shared"), i.get("residual"), ws);
            else MoeLayer.forwardRouted(backend, o.get("out"), i.get("x"), w, i.get("route_weights"), i.get("route_ids"), i.get("shared"),
                    i.get("residual"), ws);
        }

        /** The planned bytes less the weights of the experts that served no token in the last run on {@code backend}. */
        @Override
        public double bytesMoved(Backend backend, double planned) {
            MoeLayer.Workspace ws = workspaces.get(backend);
            if (ws == null) return planned;
            long idle = Arrays.stream(ws.routing().expertCounts(backend)).filter(n -> n == 0).count();
            return planned - idle * 3.0 * hidden * intermediate * dtype.byteSize();
        }

        @Override
        public void close() {
            workspaces.values().forEach(MoeLayer.Workspace::close);
        }
    }
}
