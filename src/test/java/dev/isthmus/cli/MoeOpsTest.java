package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.Router;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The MoE ops of `isthmus op` (moe-route, moe-layer) through the command-line entry point on the
 * CPU backend, outputs read back and compared bit for bit with the MoE room's API on the CPU;
 * bench rows; errors naming the tensor or option.
 */
class MoeOpsTest extends OpTestSupport {
    private static final long TOKENS = 5, HIDDEN = 16, INTER = 12, EXPERTS = 4;

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void moeRouteMatchesTheReference(DType dtype) throws IOException {
        Tensor logits = random(dtype, 7, 8), bias = random(DType.F32, 8);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "moe-route", "--in", write("in", Map.of("logits", logits, "bias", bias)).toString(), "--out", out.toString(),
                "--backend", "cpu", "--check", "--set", "top_k=3", "--set", "sigmoid=true", "--set", "groups=4", "--set", "top_groups=2",
                "--set", "renormalize=true", "--set", "routed_scaling=2.5");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check weights:") && r.out.contains("check ids:"), r.out);
        Tensor weights = expected(DType.F32, 7, 3), ids = keep(Tensor.allocateHost(DType.I32, 7, 3));
        Router.topK(CPU, weights, ids, logits, bias, RouterConfig.sigmoidGrouped(8, 3, 4, 2, 2.5f));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(weights, f.tensor("weights"));
            assertSame(ids, f.tensor("ids"));
        }
    }

    private Map<String, Tensor> layerInputs(DType dtype) {
        Map<String, Tensor> in = new HashMap<>();
        in.put("x", random(dtype, TOKENS, HIDDEN));
        in.put("router", random(dtype, EXPERTS, HIDDEN));
        in.put("gate_up", random(dtype, EXPERTS, 2 * INTER, HIDDEN));
        in.put("down", random(dtype, EXPERTS, HIDDEN, INTER));
        return in;
    }

    private static MoeLayer.Weights weights(Map<String, Tensor> in) {
        return new MoeLayer.Weights(in.get("router"), in.get("router_bias"), in.get("gate_up"), in.get("down"));
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void moeLayerMatchesTheReference(DType dtype) throws IOException {
        Map<String, Tensor> in = layerInputs(dtype);
        in.put("shared", random(dtype, TOKENS, HIDDEN));
        in.put("residual", random(dtype, TOKENS, HIDDEN));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "moe-layer", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "top_k=2", "--set", "renormalize=true");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out:"), r.out);
        RouterConfig config = RouterConfig.softmax((int) EXPERTS, 2, true);
        Tensor expected = expected(dtype, TOKENS, HIDDEN);
        try (MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, TOKENS, HIDDEN, INTER, dtype, config)) {
            MoeLayer.forward(CPU, expected, in.get("x"), weights(in), config, in.get("shared"), in.get("residual"), ws);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
        }
    }

    @Test
    void moeLayerWithGivenRoutingUsesItAndCountsItsBench() throws IOException {
        Map<String, Tensor> in = layerInputs(DType.F32);
        Tensor routeWeights = uniform(DType.F32, 0f, 1f, TOKENS, 2);
        Tensor routeIds = keep(Tensor.fromLongs(DType.I64, new long[] {0, 3, 3, 0, 0, 3, 3, 0, 0, 3}, TOKENS, 2));
        in.put("route_weights", routeWeights);
        in.put("route_ids", routeIds);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "moe-layer", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "top_k=2", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'route_ids' from i64 to i32"), r.err);
        // 2 experts touched (3 H I f32 each), no router; x read and out written; 2 T k 3 H I FLOPs
        long bytes = 4 * (2 * 3 * HIDDEN * INTER + 2 * TOKENS * HIDDEN), flops = 2 * TOKENS * 2 * 3 * HIDDEN * INTER;
        assertTrue(r.out.contains("moe-layer,T=5;H=16;I=12;E=4;k=2,f32,") && r.out.contains("," + bytes + "," + flops + "\n"), r.out);
        Tensor expected = expected(DType.F32, TOKENS, HIDDEN);
        RouterConfig config = RouterConfig.softmax((int) EXPERTS, 2, false);
        try (MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, TOKENS, HIDDEN, INTER, DType.F32, config);
             Tensor ids = routeIds.to(DType.I32)) {
            MoeLayer.forwardRouted(CPU, expected, in.get("x"), weights(in), routeWeights, ids, null, null, ws);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
        }
    }

    @Test
    void moeLayerBenchChargesOnlyTheExpertsThatServedATokenInTheRun() throws IOException {
        Map<String, Tensor> in = layerInputs(DType.F32);
        in.put("x", uniform(DType.F32, 0.5f, 1f, TOKENS, HIDDEN));
        // Positive x and router rows +1, +0.5, -3, -4: every token picks experts 0 and 1.
        float[] router = new float[(int) (EXPERTS * HIDDEN)];
        for (int i = 0; i < router.length; i++) router[i] = new float[] {1f, 0.5f, -3f, -4f}[i / (int) HIDDEN];
        in.put("router", keep(Tensor.fromFloats(DType.F32, router, EXPERTS, HIDDEN)));
        Run r = run("moe-layer", in, "--set", "top_k=2", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        // the router (E H), experts 0 and 1 (3 H I each), x read and out written; 2 T E H + 2 T k 3 H I FLOPs
        long bytes = 4 * (EXPERTS * HIDDEN + 2 * 3 * HIDDEN * INTER + 2 * TOKENS * HIDDEN);
        long flops = 2 * TOKENS * EXPERTS * HIDDEN + 2 * TOKENS * 2 * 3 * HIDDEN * INTER;
        assertTrue(r.out.contains("moe-layer,T=5;H=16;I=12;E=4;k=2,f32,") && r.out.contains("," + bytes + "," + flops + "\n"), r.out);
    }

    @Test
    void helpListsTheTensorsAndOptions() {
        assertHelpShows("moe-layer", "x ", "router ", "router_bias?", "gate_up ", "(E, 2I, H)", "down ", "shared?", "residual?", "route_weights?",
                "route_ids?", "top_k", "sigmoid", "renormalize", "groups", "top_groups", "routed_scaling", "capacity_factor", "out ");
        assertHelpShows("moe-route", "logits ", "bias?", "weights ", "ids ", "(T, k)");
    }

    @Test
    void errorsNameTheTensorOrOption() throws IOException {
        Map<String, Tensor> route = Map.of("logits", random(DType.F32, 3, 8));
        assertError(run("moe-route", route), "option 'top_k' is required");
        assertError(run("moe-route", route, "--set", "top_k=9"), "top_k 9 exceeds experts 8");
        assertError(run("moe-route", route, "--set", "top_k=2", "--set", "groups=3"), "groups 3 must divide experts 8");
        assertError(run("moe-route", with(route, "bias", random(DType.F32, 7)), "--set", "top_k=2"), "bias has shape [7], expected [8]");
        Map<String, Tensor> layer = layerInputs(DType.F32);
        assertError(run("moe-layer", with(layer, "down", random(DType.F32, EXPERTS, HIDDEN, INTER + 1)), "--set", "top_k=2"),
                "down has shape [4, 16, 13], expected [4, 16, 12]");
        assertError(run("moe-layer", with(layer, "router", random(DType.F32, EXPERTS + 1, HIDDEN)), "--set", "top_k=2"), "router has shape [5, 16]");
        assertError(run("moe-layer", with(layer, "residual", random(DType.F32, TOKENS, 3)), "--set", "top_k=2"), "residual has shape [5, 3]");
        assertError(run("moe-layer", with(layer, "route_ids", ints2(0, 1, 1, 0, 0, 1, 1, 0, 0, 1)), "--set", "top_k=2"),
                "route_weights and route_ids come together");
        assertError(run("moe-layer", with(layer, "route_ids", ints2(0, 1, 1, 0, 0, 1, 1, 0, 0, 7), "route_weights", random(DType.F32, TOKENS, 2)),
                "--set", "top_k=2"), "= 7 is out of range for 4 experts");
        assertError(run("moe-layer", layer, "--set", "top_k=2", "--set", "capacity_factor=-1"), "option 'capacity_factor' must be >= 0");
    }

    private Tensor ints2(long... values) {
        return keep(Tensor.fromLongs(DType.I32, values, TOKENS, values.length / TOKENS));
    }
}
