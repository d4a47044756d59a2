package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.Router;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The MoE ops with --backend cuda on awkward shapes (token counts off the expert GEMM's tile, H and
 * I not multiples of 8): --check passes, --bench prints its row, and the output file matches the
 * MoE API on the CPU. Routing is made tie-free (logits a permutation of well-separated values, or
 * top_k = E, or the routing given), since a near-tie may pick a different expert in fp32 than in
 * the reference's double.
 */
class MoeOpsGpuTest extends OpTestSupport {

    @GpuTest
    void moeRouteOnTheGpuMatchesTheReference() throws Exception {
        int tokens = 37, experts = 64, k = 6;
        float[] z = new float[tokens * experts];
        for (int t = 0; t < tokens; t++) {
            List<Integer> order = new ArrayList<>();
            for (int e = 0; e < experts; e++) order.add(e);
            Collections.shuffle(order, random);
            for (int e = 0; e < experts; e++) z[t * experts + e] = 0.05f * order.get(e) - 1.5f;
        }
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Tensor logits = keep(Tensor.fromFloats(dtype, z, tokens, experts));
            Map<String, Tensor> out = runOnGpu("moe-route", Map.of("logits", logits), "moe-route,T=37;E=64;k=6," + dtype.label(),
                    "--set", "top_k=6", "--set", "renormalize=true");
            Tensor weights = expected(DType.F32, tokens, k), ids = keep(Tensor.allocateHost(DType.I32, tokens, k));
            Router.topK(CPU, weights, ids, logits, null, RouterConfig.softmax(experts, k, true));
            assertEquals(0.0, Compare.relativeError(out.get("ids"), ids), dtype + " ids");
            assertClose(dtype + " weights", out.get("weights"), weights, Compare.boundFor(DType.F32));
        }
    }

    @GpuTest
    void moeLayerOnTheGpuMatchesTheReference() throws Exception {
        long tokens = 67, hidden = 72, inter = 40, experts = 6;
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            Map<String, Tensor> in = new HashMap<>();
            in.put("x", random(dtype, tokens, hidden));
            in.put("router", random(dtype, experts, hidden));
            in.put("gate_up", uniform(dtype, -0.2f, 0.2f, experts, 2 * inter, hidden));
            in.put("down", uniform(dtype, -0.2f, 0.2f, experts, hidden, inter));
            in.put("residual", random(dtype, tokens, hidden));
            long[] ids = new long[(int) tokens * 2];
            for (int i = 0; i < ids.length; i++) ids[i] = (i / 2 * 5 + i % 2 * 3) % experts;
            Map<String, Tensor> routed = with(in, "route_weights", uniform(DType.F32, 0f, 1f, tokens, 2),
                    "route_ids", keep(Tensor.fromLongs(DType.I32, ids, tokens, 2)));
            Map<String, Tensor> out = runOnGpu("moe-layer", routed, "moe-layer,T=67;H=72;I=40;E=6;k=2," + dtype.label(), "--set", "top_k=2");
            Tensor expected = expected(dtype, tokens, hidden);
            RouterConfig two = RouterConfig.softmax((int) experts, 2, false);
            try (MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, dtype, two)) {
                MoeLayer.forwardRouted(CPU, expected, in.get("x"), weights(in), routed.get("route_weights"), routed.get("route_ids"), null,
                        in.get("residual"), ws);
            }
            assertClose(dtype + " routed out", out.get("out"), expected, Compare.boundFor(dtype));

            // Every expert chosen (top_k = E): the router runs, and no tie can change which experts serve.
            out = runOnGpu("moe-layer", in, "moe-layer,T=67;H=72;I=40;E=6;k=6," + dtype.label(), "--set", "top_k=6", "--set", "renormalize=true");
            RouterConfig all = RouterConfig.softmax((int) experts, 6, true);
            try (MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(CPU, tokens, hidden, inter, dtype, all)) {
                MoeLayer.forward(CPU, expected, in.get("x"), weights(in), all, null, in.get("residual"), ws);
            }
            assertClose(dtype + " out", out.get("out"), expected, Compare.boundFor(dtype));
        }
    }

    private static MoeLayer.Weights weights(Map<String, Tensor> in) {
        return new MoeLayer.Weights(in.get("router"), null, in.get("gate_up"), in.get("down"));
    }
}
