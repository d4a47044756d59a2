package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.scan.CausalConv1d;
import dev.isthmus.scan.ScanWeights;
import dev.isthmus.scan.SelectiveScan;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Mamba ops of `isthmus op` (selective-scan, selective-state-update, causal-conv1d,
 * causal-conv1d-update) through the command-line entry point on the CPU backend: outputs read back
 * from the file and compared bit for bit with the scan room's API called directly; conversions;
 * bench rows; errors naming the tensor or option.
 */
class ScanOpsTest extends OpTestSupport {

    /** Inputs of a selective scan of (batch, channels, length) with G groups and N states, all options present. */
    private Map<String, Tensor> scanInputs(DType dtype, long batch, long channels, long length, long groups, long nstate) {
        Map<String, Tensor> in = new HashMap<>();
        in.put("u", random(dtype, batch, channels, length));
        in.put("delta", random(dtype, batch, channels, length));
        in.put("z", random(dtype, batch, channels, length));
        in.put("B", random(dtype, batch, groups, nstate, length));
        in.put("C", random(dtype, batch, groups, nstate, length));
        in.put("A", uniform(DType.F32, -4f, -0.1f, channels, nstate));
        in.put("D", random(DType.F32, channels));
        in.put("delta_bias", uniform(DType.F32, -3f, 0f, channels));
        return in;
    }

    private static ScanWeights weights(Map<String, Tensor> in, boolean softplus) {
        return new ScanWeights(in.get("A"), in.get("D"), in.get("delta_bias"), softplus);
    }

    // ---- selective-scan -------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void selectiveScanMatchesTheReference(DType dtype) throws IOException {
        long batch = 2, channels = 4, length = 37, groups = 2, nstate = 5;
        Map<String, Tensor> in = scanInputs(dtype, batch, channels, length, groups, nstate);
        Tensor h0 = random(DType.F32, batch, channels, nstate);
        in.put("initial_state", h0);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "selective-scan", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu",
                "--set", "softplus=true", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check y: relative error") && r.out.contains("check final_state: relative error"), r.out);
        assertTrue(r.out.contains("(bound 1e-04) ok"), "the f32 state is held to 1e-4: " + r.out);
        Tensor y = expected(dtype, batch, channels, length), last = expected(DType.F32, batch, channels, nstate);
        SelectiveScan.scan(CPU, y, last, in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in, true), h0);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(List.of("final_state", "y"), f.names().stream().sorted().toList());
            assertSame(y, f.tensor("y"));
            assertSame(last, f.tensor("final_state"));
        }
    }

    @Test
    void selectiveScanWithoutOptionalsConvertsTheWeightsToF32() throws IOException {
        long channels = 3, length = 9, nstate = 4;
        Map<String, Tensor> in = new HashMap<>();
        in.put("u", random(DType.BF16, 1, channels, length));
        in.put("delta", uniform(DType.F16, 0.01f, 1f, 1, channels, length)); // no softplus: dt = delta must be positive
        in.put("B", random(DType.BF16, 1, 1, nstate, length));
        in.put("C", random(DType.BF16, 1, 1, nstate, length));
        in.put("A", uniform(DType.BF16, -4f, -0.1f, channels, nstate));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "selective-scan", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'A' from bf16 to f32") && r.err.contains("converting 'delta' from f16 to bf16"), r.err);
        Tensor y = expected(DType.BF16, 1, channels, length), last = expected(DType.F32, 1, channels, nstate);
        Tensor a = keep(in.get("A").to(DType.F32)), delta = keep(in.get("delta").to(DType.BF16));
        SelectiveScan.scan(CPU, y, last, in.get("u"), delta, null, in.get("B"), in.get("C"), new ScanWeights(a, null, null, false), null);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(y, f.tensor("y"));
            assertSame(last, f.tensor("final_state"));
        }
    }

    @Test
    void selectiveScanPackedTakesI64StartsAndWritesOneStatePerSequence() throws IOException {
        long channels = 3, length = 20, nstate = 6;
        Map<String, Tensor> in = scanInputs(DType.F32, 1, channels, length, 1, nstate);
        in.put("seq_starts", keep(Tensor.fromLongs(DType.I64, new long[] {0, 7, 7, 20}, 4)));
        Tensor h0 = random(DType.F32, 3, channels, nstate);
        in.put("initial_state", h0);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "selective-scan", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu",
                "--set", "softplus=true", "--check", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'seq_starts' from i64 to i32"), r.err);
        assertTrue(r.out.contains("selective-scan-packed,B1xD3xL20xN6xS3,f32,"), r.out);
        Tensor y = expected(DType.F32, 1, channels, length), last = expected(DType.F32, 3, channels, nstate);
        try (Tensor starts = in.get("seq_starts").to(DType.I32)) {
            SelectiveScan.scanPacked(CPU, y, last, in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in, true),
                    starts, h0);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(y, f.tensor("y"));
            assertSame(last, f.tensor("final_state"));
        }
    }

    // ---- selective-state-update -----------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void stateUpdateWithSlotsAndPaddingMatchesTheReference(DType dtype) throws IOException {
        long batch = 3, channels = 6, groups = 3, nstate = 7, pool = 5;
        Map<String, Tensor> in = new HashMap<>();
        in.put("u", random(dtype, batch, channels));
        in.put("delta", random(dtype, batch, channels));
        in.put("z", random(dtype, batch, channels));
        in.put("B", random(dtype, batch, groups, nstate));
        in.put("C", random(dtype, batch, groups, nstate));
        in.put("A", uniform(DType.F32, -4f, -0.1f, channels, nstate));
        in.put("D", random(DType.F32, channels));
        in.put("delta_bias", uniform(DType.F32, -3f, 0f, channels));
        in.put("state", random(DType.F32, pool, channels, nstate));
        in.put("slots", keep(Tensor.fromLongs(DType.I32, new long[] {4, -1, 0}, batch)));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "selective-state-update", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu",
                "--set", "softplus=true", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check y:") && r.out.contains("check state:"), r.out);
        Tensor y = expected(dtype, batch, channels), state = keep(in.get("state").to(DType.F32));
        SelectiveScan.step(CPU, y, state, in.get("slots"), in.get("u"), in.get("delta"), in.get("z"), in.get("B"), in.get("C"), weights(in, true));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(y, f.tensor("y"));
            assertSame(state, f.tensor("state"));
            assertEquals(0.0, f.tensor("y").toFloatArray()[(int) channels], "the padding row's y is 0");
        }
    }

    @Test
    void stateUpdateWithoutSlotsAdvancesRowRAndCountsItsBytes() throws IOException {
        long batch = 2, channels = 4, nstate = 3;
        Map<String, Tensor> in = new HashMap<>();
        in.put("u", random(DType.F32, batch, channels));
        in.put("delta", uniform(DType.F32, 0.01f, 1f, batch, channels));
        in.put("B", random(DType.F32, batch, 1, nstate));
        in.put("C", random(DType.F32, batch, 1, nstate));
        in.put("A", uniform(DType.F32, -4f, -0.1f, channels, nstate));
        in.put("state", random(DType.BF16, batch, channels, nstate));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "selective-state-update", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu",
                "--bench", "2", "--warmup", "1");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'state' from bf16 to f32"), r.err);
        // state read and written (2*4*2*4*3), u, delta read and y written (3*2*4*4), B and C (2*2*3*4), A (4*4*3)
        long bytes = 2 * 4 * 2 * 4 * 3 + 3 * 2 * 4 * 4 + 2 * 2 * 3 * 4 + 4 * 4 * 3;
        assertTrue(r.out.contains("selective-state-update,B2xD4xN3,f32,") && r.out.contains("," + bytes + ",0\n"), r.out);
        Tensor y = expected(DType.F32, batch, channels), state = keep(in.get("state").to(DType.F32));
        SelectiveScan.step(CPU, y, state, null, in.get("u"), in.get("delta"), null, in.get("B"), in.get("C"), weights(in, false));
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(y, f.tensor("y"));
            assertSame(state, f.tensor("state"));
        }
    }

    // ---- causal-conv1d, causal-conv1d-update -----------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void causalConv1dWithStatesMatchesTheReference(DType dtype) throws IOException {
        long batch = 2, channels = 5, length = 13, width = 4;
        Tensor x = random(dtype, batch, channels, length), w = random(DType.F32, channels, width), bias = random(dtype, channels);
        Tensor h0 = random(dtype, batch, channels, width - 1);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "causal-conv1d", "--in", write("in", Map.of("x", x, "weight", w, "bias", bias, "initial_state", h0)).toString(),
                "--out", out.toString(), "--backend", "cpu", "--set", "silu=true", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out:") && r.out.contains("check final_state:"), r.out);
        assertEquals(dtype != DType.F32, r.err.contains("converting 'weight' from f32 to " + dtype.label()), r.err);
        Tensor expected = expected(dtype, batch, channels, length), last = expected(dtype, batch, channels, width - 1);
        Tensor wx = keep(w.to(dtype));
        CausalConv1d.apply(CPU, expected, last, x, wx, bias, h0, true);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(last, f.tensor("final_state"));
        }
    }

    @Test
    void causalConv1dOfWidthOneHasNoStateAndCountsItsBytes() throws IOException {
        Tensor x = random(DType.F16, 1, 3, 10), w = random(DType.F16, 3, 1);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "causal-conv1d", "--in", write("in", Map.of("x", x, "weight", w)).toString(), "--out", out.toString(),
                "--backend", "cpu", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        // x read and out written (2*3*10*2 bytes), the weight (3*1*2)
        assertTrue(r.out.contains("causal-conv1d,B1xD3xL10xW1,f16,") && r.out.contains("," + (2 * 3 * 10 * 2 + 3 * 2) + ",0\n"), r.out);
        Tensor expected = expected(DType.F16, 1, 3, 10);
        CausalConv1d.apply(CPU, expected, null, x, w, null, null, false);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(List.of("out"), f.names());
            assertSame(expected, f.tensor("out"));
        }
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void causalConv1dUpdateShiftsTheStateAndMatchesTheReference(DType dtype) throws IOException {
        long batch = 3, channels = 7, width = 3;
        Tensor x = random(dtype, batch, channels), w = random(dtype, channels, width), bias = random(dtype, channels);
        Tensor state = random(dtype, batch, channels, width - 1);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "causal-conv1d-update", "--in", write("in", Map.of("x", x, "conv_state", state, "weight", w, "bias", bias)).toString(),
                "--out", out.toString(), "--backend", "cpu", "--set", "silu=true", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out:") && r.out.contains("check conv_state:"), r.out);
        Tensor expected = expected(dtype, batch, channels), expectedState = keep(state.to(dtype));
        CausalConv1d.update(CPU, expected, expectedState, x, w, bias, true);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(expectedState, f.tensor("conv_state"));
            float[] newest = f.tensor("conv_state").toFloatArray(), token = x.toFloatArray();
            for (int i = 0; i < token.length; i++) assertEquals(token[i], newest[(int) (i * (width - 1) + width - 2)], "x appended last");
        }
    }

    // ---- help and errors ------------------------------------------------------------------------

    @Test
    void helpListsTheTensorNamesOfTheMath() {
        assertHelpShows("selective-scan", "u ", "delta ", "A ", "B ", "C ", "D?", "z?", "delta_bias?", "initial_state?", "seq_starts?",
                "(B, G, N, L)", "softplus", "y ", "final_state");
        assertHelpShows("selective-state-update", "state ", "slots?", "(P, D, N)", "softplus");
        assertHelpShows("causal-conv1d-update", "x ", "conv_state?", "weight ", "bias?", "(D, W)", "silu");
    }

    @Test
    void scanErrorsNameTheTensorOrOption() throws IOException {
        Map<String, Tensor> good = scanInputs(DType.F32, 2, 4, 5, 2, 3);
        assertError(run("selective-scan", without(good, "A")), "missing tensor 'A'");
        assertError(run("selective-scan", with(good, "B", random(DType.F32, 2, 3, 3, 5), "C", random(DType.F32, 2, 3, 3, 5))),
                "B has 3 groups, which must divide the 4 channels of u");
        assertError(run("selective-scan", with(good, "C", random(DType.F32, 2, 2, 3, 6))), "C has shape [2, 2, 3, 6], expected [2, 2, 3, 5]");
        assertError(run("selective-scan", with(good, "z", random(DType.F32, 2, 4, 4))), "z has shape");
        assertError(run("selective-scan", with(good, "delta_bias", random(DType.F32, 5))), "delta_bias has shape [5], expected [4]");
        assertError(run("selective-scan", with(good, "initial_state", random(DType.F32, 2, 4, 4))), "initial_state has shape [2, 4, 4]");
        assertError(run("selective-scan", with(good, "seq_starts", ints(0, 5))), "u has B = 2", "seq_starts");
        assertError(run("selective-scan", with(good, "seq_starts", random(DType.F32, 2))), "tensor 'seq_starts' has dtype f32");
        Map<String, Tensor> packed = scanInputs(DType.F32, 1, 4, 5, 1, 3);
        assertError(run("selective-scan", with(packed, "seq_starts", ints(0, 2, 4))), "seq_starts must run from 0 to L = 5");
        assertError(run("selective-scan", with(packed, "seq_starts", ints(0, 3, 2, 5))), "seq_starts must not decrease");
        assertError(run("selective-scan", with(packed, "seq_starts", ints(0))), "seq_starts needs at least 2 entries");
        assertError(run("selective-scan", good, "--set", "softplus=1"), "option 'softplus' must be true or false");
        assertError(run("selective-scan", good, "--set", "silu=true"), "unknown option 'silu' for selective-scan (options: softplus)");
    }

    @Test
    void stateUpdateErrorsNameTheTensor() throws IOException {
        Map<String, Tensor> good = new HashMap<>();
        good.put("u", random(DType.F32, 2, 4));
        good.put("delta", random(DType.F32, 2, 4));
        good.put("B", random(DType.F32, 2, 1, 3));
        good.put("C", random(DType.F32, 2, 1, 3));
        good.put("A", random(DType.F32, 4, 3));
        good.put("state", random(DType.F32, 3, 4, 3));
        assertError(run("selective-state-update", good), "state has 3 slots but u has 2 rows; give slots");
        assertError(run("selective-state-update", with(good, "slots", ints(0, 3))), "slots[1] = 3 is not below the 3 states");
        assertError(run("selective-state-update", with(good, "slots", ints(2, 2))), "slots[1] = 2 repeats");
        assertError(run("selective-state-update", with(good, "slots", ints(0, 1, 2))), "slots has shape [3], expected [2]");
        assertError(run("selective-state-update", with(good, "slots", ints(-1, 2), "state", random(DType.F32, 3, 4, 2))),
                "state has shape [3, 4, 2], expected [3, 4, 3]");
        assertError(run("selective-state-update", with(good, "slots", ints(-1, 2), "A", random(DType.F32, 3, 4))),
                "A has shape [3, 4], expected [4, 3]");
        assertError(run("selective-state-update", with(good, "slots", ints(-1, 2), "B", random(DType.F32, 2, 1, 3, 1))), "B must have rank 3");
    }

    @Test
    void convErrorsNameTheTensorOrOption() throws IOException {
        Map<String, Tensor> good = Map.of("x", random(DType.F32, 2, 3), "weight", random(DType.F32, 3, 4), "conv_state", random(DType.F32, 2, 3, 3));
        assertError(run("causal-conv1d-update", without(good, "conv_state")), "missing tensor 'conv_state'", "W = 4");
        assertError(run("causal-conv1d-update", with(good, "conv_state", random(DType.F32, 2, 3, 4))), "conv_state has shape [2, 3, 4]");
        assertError(run("causal-conv1d-update", with(good, "weight", random(DType.F32, 4, 4))), "weight has shape [4, 4], expected [3, 4]");
        assertError(run("causal-conv1d-update", with(good, "bias", random(DType.F32, 2))), "bias has shape [2], expected [3]");
        assertError(run("causal-conv1d-update", good, "--set", "softplus=true"), "unknown option 'softplus' for causal-conv1d-update (options: silu)");
        Map<String, Tensor> seq = Map.of("x", random(DType.F32, 2, 3, 6), "weight", random(DType.F32, 3, 9));
        assertError(run("causal-conv1d", seq), "weight has width 9, expected 1..8");
        assertError(run("causal-conv1d", with(seq, "weight", random(DType.F32, 3, 0))), "weight has width W = 0");
        assertError(run("causal-conv1d", with(seq, "weight", random(DType.F32, 3, 2), "initial_state", random(DType.F32, 2, 3, 2))),
                "initial_state has shape [2, 3, 2], expected [2, 3, 1]");
        assertError(run("causal-conv1d", with(seq, "x", random(DType.F32, 2, 3))), "x must have rank 3");
    }
}
