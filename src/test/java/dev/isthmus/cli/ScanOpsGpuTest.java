package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.HashMap;
import java.util.Map;

/**
 * The Mamba ops with --backend cuda on awkward shapes (lengths and channel counts off every tile,
 * N = 16 and 17, groups > 1): --check passes, --bench prints its row, and the output file is
 * compared here with the scan room's API on the CPU.
 */
class ScanOpsGpuTest extends OpTestSupport {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};

    @GpuTest
    void selectiveScanOnTheGpuMatchesTheReference() throws Exception {
        for (DType dtype : FLOATS)
            for (long nstate : new long[] {16, 17}) {
                long batch = 2, channels = 6, length = 1037, groups = 3;
                Map<String, Tensor> in = sequenceInputs(dtype, batch, channels, length, groups, nstate);
                in.put("initial_state", random(DType.F32, batch, channels, nstate));
                Map<String, Tensor> out = runOnGpu("selective-scan", in, "selective-scan,B2xD6xL1037xN" + nstate + "xG3," + dtype.label(),
                        "--set", "softplus=true");
                Tensor y = expected(dtype, batch, channels, length), last = expected(DType.F32, batch, channels, nstate);
                SelectiveScan.scan(CPU, y, last, in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in), in.get("initial_state"));
                assertClose(dtype + " y", out.get("y"), y, Compare.boundFor(dtype));
                assertClose(dtype + " final_state", out.get("final_state"), last, ScanOpParts.STATE_BOUND);
            }
    }

    @GpuTest
    void packedSelectiveScanOnTheGpuMatchesTheReference() throws Exception {
        long channels = 5, length = 2051, nstate = 16;
        Map<String, Tensor> in = sequenceInputs(DType.BF16, 1, channels, length, 1, nstate);
        in.put("seq_starts", keep(Tensor.fromLongs(DType.I64, new long[] {0, 1, 700, 700, 2051}, 5)));
        Map<String, Tensor> out = runOnGpu("selective-scan", in, "selective-scan-packed,B1xD5xL2051xN16xS4,bf16", "--set", "softplus=true");
        Tensor y = expected(DType.BF16, 1, channels, length), last = expected(DType.F32, 4, channels, nstate);
        try (Tensor starts = in.get("seq_starts").to(DType.I32)) {
            SelectiveScan.scanPacked(CPU, y, last, in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in), starts, null);
        }
        assertClose("packed y", out.get("y"), y, Compare.boundFor(DType.BF16));
        assertClose("packed final_state", out.get("final_state"), last, ScanOpParts.STATE_BOUND);
    }

    @GpuTest
    void stateUpdateOnTheGpuMatchesTheReference() throws Exception {
        for (DType dtype : FLOATS) {
            long batch = 5, channels = 130, groups = 2, nstate = 17, pool = 9;
            Map<String, Tensor> in = new HashMap<>();
            for (String name : new String[] {"u", "delta", "z"}) in.put(name, random(dtype, batch, channels));
            for (String name : new String[] {"B", "C"}) in.put(name, random(dtype, batch, groups, nstate));
            putWeights(in, channels, nstate);
            in.put("state", random(DType.F32, pool, channels, nstate));
            in.put("slots", keep(Tensor.fromLongs(DType.I32, new long[] {8, -1, 0, 3, 5}, batch)));
            Map<String, Tensor> out = runOnGpu("selective-state-update", in, "selective-state-update,B5xD130xN17xG2," + dtype.label(),
                    "--set", "softplus=true");
            Tensor y = expected(dtype, batch, channels), state = keep(in.get("state").to(DType.F32));
            SelectiveScan.step(CPU, y, state, in.get("slots"), in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in));
            assertClose(dtype + " y", out.get("y"), y, Compare.boundFor(dtype));
            assertClose(dtype + " state", out.get("state"), state, ScanOpParts.STATE_BOUND);
        }
    }

    @GpuTest
    void causalConvOpsOnTheGpuMatchTheReference() throws Exception {
        for (DType dtype : FLOATS) {
            long batch = 3, channels = 67, length = 1029, width = 4;
            Tensor x = random(dtype, batch, channels, length), w = random(dtype, channels, width), bias = random(dtype, channels);
            Tensor h0 = random(dtype, batch, channels, width - 1);
            Map<String, Tensor> out = runOnGpu("causal-conv1d", Map.of("x", x, "weight", w, "bias", bias, "initial_state", h0),
                    "causal-conv1d,B3xD67xL1029xW4," + dtype.label(), "--set", "silu=true");
            Tensor expected = expected(dtype, batch, channels, length), last = expected(dtype, batch, channels, width - 1);
            CausalConv1d.apply(CPU, expected, last, x, w, bias, h0, true);
            assertClose(dtype + " out", out.get("out"), expected, Compare.boundFor(dtype));
            assertEquals(0.0, Compare.relativeError(out.get("final_state"), last), "the final state is a copy of inputs");

            Tensor token = random(dtype, batch, channels);
            out = runOnGpu("causal-conv1d-update", Map.of("x", token, "conv_state", h0, "weight", w, "bias", bias),
                    "causal-conv1d-update,B3xD67xW4," + dtype.label(), "--set", "silu=true");
            Tensor expectedToken = expected(dtype, batch, channels), state = keep(h0.to(dtype));
            CausalConv1d.update(CPU, expectedToken, state, token, w, bias, true);
            assertClose(dtype + " update out", out.get("out"), expectedToken, Compare.boundFor(dtype));
            assertEquals(0.0, Compare.relativeError(out.get("conv_state"), state), "the shifted state is a copy of inputs");
        }
    }

    private Map<String, Tensor> sequenceInputs(DType dtype, long batch, long channels, long length, long groups, long nstate) {
        Map<String, Tensor> in = new HashMap<>();
        for (String name : new String[] {"u", "delta", "z"}) in.put(name, random(dtype, batch, channels, length));
        for (String name : new String[] {"B", "C"}) in.put(name, random(dtype, batch, groups, nstate, length));
        putWeights(in, channels, nstate);
        return in;
    }

    /** A in the range of a trained layer (-exp(A_log) in [-4, -0.1]), D, and delta_bias, all f32. */
    private void putWeights(Map<String, Tensor> in, long channels, long nstate) {
        in.put("A", uniform(DType.F32, -4f, -0.1f, channels, nstate));
        in.put("D", random(DType.F32, channels));
        in.put("delta_bias", uniform(DType.F32, -3f, 0f, channels));
    }

    private static ScanWeights weights(Map<String, Tensor> in) {
        return new ScanWeights(in.get("A"), in.get("D"), in.get("delta_bias"), true);
    }
}
