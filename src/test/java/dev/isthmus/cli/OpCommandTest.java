package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.blas.Gemm;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * `isthmus op` through the command-line entry point, in-process, on the CPU backend: inputs
 * written from Java, every op run with --check, the output file read back and compared with the
 * op's API called directly on the CPU reference; the help; the bench lines; every error.
 */
class OpCommandTest extends OpTestSupport {
    // ---- rmsnorm --------------------------------------------------------------------------------

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void rmsnormMatchesTheReference(DType dtype) throws IOException {
        Tensor x = random(dtype, 3, 4, 33), w = random(dtype, 33);
        Path in = write("in", Map.of("x", x, "weight", w));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "rmsnorm", "--in", in.toString(), "--out", out.toString(), "--backend", "cpu", "--set", "eps=0.5", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out: relative error") && r.out.contains(" ok"), r.out);
        Tensor expected = keep(Tensor.allocateHost(dtype, 3, 4, 33));
        RmsNorm.apply(CPU, expected, x, w, 0.5f);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(List.of("out"), f.names());
            assertEquals("rmsnorm", f.metadata().get("isthmus_op"));
            assertSame(expected, f.tensor("out"));
        }
    }

    @Test
    void rmsnormWithResidualWritesBothOutputs() throws IOException {
        Tensor x = random(DType.BF16, 5, 17), res = random(DType.BF16, 5, 17), w = random(DType.BF16, 17);
        Path in = write("in", Map.of("x", x, "residual", res, "weight", w));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "rmsnorm", "--in", in.toString(), "--out", out.toString(), "--backend", "cpu", "--check");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out:") && r.out.contains("check residual_out:"), r.out);
        Tensor expected = keep(Tensor.allocateHost(DType.BF16, 5, 17)), expectedResidual = keep(Tensor.allocateHost(DType.BF16, 5, 17));
        RmsNorm.applyWithResidual(CPU, expected, expectedResidual, x, res, w, 1e-6f);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(expectedResidual, f.tensor("residual_out"));
        }
    }

    @Test
    void convertsAWeightOfAnotherDtypeAndSaysSo() throws IOException {
        Tensor x = random(DType.BF16, 2, 9), w = random(DType.F32, 9), extra = random(DType.F32, 1);
        Path in = write("in", Map.of("x", x, "weight", w, "bias", extra));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "rmsnorm", "--in", in.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'weight' from f32 to bf16"), r.err);
        assertTrue(r.err.contains("tensor 'bias' is not an input of rmsnorm; ignored"), r.err);
        assertEquals("", r.out, "without --check or --bench nothing goes to stdout");
        Tensor expected = keep(Tensor.allocateHost(DType.BF16, 2, 9));
        try (Tensor wb = w.to(DType.BF16)) {
            RmsNorm.apply(CPU, expected, x, wb, 1e-6f);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(DType.BF16, f.tensor("out").dtype());
            assertSame(expected, f.tensor("out"));
        }
    }

    // ---- gemm -----------------------------------------------------------------------------------

    @ParameterizedTest
    @CsvSource({"F32,false,false", "F32,true,false", "BF16,false,true", "F16,true,true"})
    void gemmMatchesTheReference(DType dtype, boolean transposeA, boolean transposeB) throws IOException {
        int m = 7, n = 5, k = 11;
        Tensor a = random(dtype, transposeA ? k : m, transposeA ? m : k);
        Tensor b = random(dtype, transposeB ? n : k, transposeB ? k : n);
        Tensor c = random(dtype, m, n);
        Path in = write("in", Map.of("a", a, "b", b, "c", c));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "gemm", "--in", in.toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "alpha=0.5", "--set", "beta=-2", "--set", "transpose_a=" + transposeA, "--set", "transpose_b=" + transposeB);
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check c: relative error"), r.out);
        Tensor expected = keep(Tensor.allocateHost(dtype, m, n));
        CPU.copy(expected, c);
        Gemm.gemm(CPU, expected, a, transposeA, b, transposeB, 0.5f, -2f);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("c"));
        }
    }

    @Test
    void gemmWithoutCWritesTheProductInAsDtypeAndAnF32CStaysF32() throws IOException {
        Tensor a = random(DType.BF16, 3, 4), b = random(DType.F16, 4, 6);
        Path in = write("in", Map.of("a", a, "b", b));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "gemm", "--in", in.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(0, r.status, r.err);
        assertTrue(r.err.contains("converting 'b' from f16 to bf16"), r.err);
        Tensor expected = keep(Tensor.allocateHost(DType.BF16, 3, 6));
        try (Tensor bb = b.to(DType.BF16)) {
            Gemm.matmul(CPU, expected, a, bb, 1f, 0f);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("c"));
        }

        Tensor c = random(DType.F32, 3, 6);
        Path in2 = write("in2", Map.of("a", a, "b", keep(b.to(DType.BF16)), "c", c));
        r = cli("op", "gemm", "--in", in2.toString(), "--out", out.toString(), "--backend", "cpu");
        assertEquals(0, r.status, r.err);
        assertFalse(r.err.contains("converting"), r.err);
        Tensor expected2 = keep(Tensor.allocateHost(DType.F32, 3, 6));
        CPU.copy(expected2, c);
        try (Tensor bb = b.to(DType.BF16)) {
            Gemm.matmul(CPU, expected2, a, bb, 1f, 1f); // beta defaults to 1 when c is given
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertEquals(DType.F32, f.tensor("c").dtype());
            assertSame(expected2, f.tensor("c"));
        }
    }

    @Test
    void checkFailsAnOutputOutsideItsBoundAndPrintsOneLinePerOutput() {
        Tensor y = keep(Tensor.fromFloats(DType.F32, new float[] {1, 2}, 2)), yRef = keep(Tensor.fromFloats(DType.F32, new float[] {1, 2.001f}, 2));
        Tensor z = keep(Tensor.fromFloats(DType.BF16, new float[] {3}, 1)), zRef = keep(Tensor.fromFloats(DType.BF16, new float[] {3}, 1));
        List<Op.Output> outputs = List.of(new Op.Output("y", DType.F32, new long[] {2}, null), new Op.Output("z", DType.BF16, new long[] {1}, null));
        StringWriter text = new StringWriter();
        boolean ok = OpCommand.compare(outputs, Map.of("y", y, "z", z), Map.of("y", yRef, "z", zRef), new PrintWriter(text, true));
        assertFalse(ok);
        assertEquals(List.of("check y: relative error 4.470e-04 (bound 1e-05) FAILED", "check z: relative error 0.000e+00 (bound 1e-02) ok"),
                text.toString().lines().toList());
        Tensor poisoned = keep(Tensor.allocateHost(DType.F32, 2));
        CPU.poison(poisoned);
        assertFalse(OpCommand.compare(outputs.subList(0, 1), Map.of("y", poisoned), Map.of("y", yRef), new PrintWriter(new StringWriter())),
                "an unwritten (NaN) output fails");
    }

    // ---- bench and help -------------------------------------------------------------------------

    @Test
    void benchPrintsTheMedianSpreadRateAndTheRawCsvRow() throws IOException {
        Path in = write("in", Map.of("x", random(DType.F32, 4, 33), "weight", random(DType.F32, 33)));
        Run r = cli("op", "rmsnorm", "--in", in.toString(), "--backend", "cpu", "--bench", "3", "--warmup", "1");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.matches("(?s).*rmsnorm 4x33 f32 .* us \\(min .*, max .*, 3 runs\\) .* GB/s.*"), r.out);
        assertTrue(r.out.contains("kernel,shape,dtype,time_us,bytes,flops\nrmsnorm,4x33,f32,"), r.out);
        // bytes: x read and out written (4 * 33 * 4 bytes each) plus the weight (33 * 4)
        assertTrue(r.out.contains("," + (2 * 4 * 33 * 4 + 33 * 4) + ",0\n"), r.out);

        Path g = write("g", Map.of("a", random(DType.F32, 3, 4), "b", random(DType.F32, 4, 5)));
        r = cli("op", "gemm", "--in", g.toString(), "--backend", "cpu", "--bench", "2", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("TFLOP/s"), r.out);
        // (3*4 + 4*5) * 4 bytes read, 3*5*4 written; 2*3*5*4 FLOPs
        assertTrue(r.out.contains("gemm,3x5x4,f32,") && r.out.contains("," + ((3 * 4 + 4 * 5) * 4 + 3 * 5 * 4) + ",120\n"), r.out);

        // With c (beta = 1 by default) c is also read: 3*5*4 bytes more; the output file still holds one run's result.
        Tensor a = random(DType.F32, 3, 4), b = random(DType.F32, 4, 5), c = random(DType.F32, 3, 5);
        Path gc = write("gc", Map.of("a", a, "b", b, "c", c));
        Path out = dir.resolve("bench-out.safetensors");
        r = cli("op", "gemm", "--in", gc.toString(), "--out", out.toString(), "--backend", "cpu", "--bench", "4", "--warmup", "2");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("," + ((3 * 4 + 4 * 5) * 4 + 2 * 3 * 5 * 4) + ",120\n"), r.out);
        Tensor expected = keep(Tensor.allocateHost(DType.F32, 3, 5));
        CPU.copy(expected, c);
        Gemm.matmul(CPU, expected, a, b, 1f, 1f);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("c"));
        }
    }

    @Test
    void helpListsTheOpsAndEachOpsTensorsShapesAndOptions() {
        Run all = cli("op", "--help");
        assertEquals(0, all.status);
        for (Op op : Ops.ALL) assertTrue(all.out.contains(op.name()), all.out);
        Run one = cli("op", "rmsnorm", "--help");
        assertEquals(0, one.status);
        for (String s : new String[] {"x ", "(..., cols)", "weight", "residual?", "eps", "1e-6", "out ", "residual_out?", "bf16"})
            assertTrue(one.out.contains(s), "'" + s + "' not in:\n" + one.out);
        Run gemm = cli("op", "gemm", "-h");
        for (String s : new String[] {"transpose_a", "transpose_b", "alpha", "beta", "(M, K)", "c?"})
            assertTrue(gemm.out.contains(s), "'" + s + "' not in:\n" + gemm.out);
        Run none = cli("op");
        assertEquals(2, none.status);
        assertTrue(none.err.contains("rmsnorm"), none.err);
    }

    @Test
    void everyOpsHelpListsEachOfItsTensorsAndOptionsOnce() {
        assertEquals(Ops.ALL.size(), Ops.ALL.stream().map(Op::name).distinct().count(), "op names are unique");
        for (Op op : Ops.ALL) {
            Run r = cli("op", op.name(), "--help");
            assertEquals(0, r.status, r.err);
            List<String> names = new java.util.ArrayList<>();
            op.inputs().forEach(t -> names.add(t.name()));
            op.options().forEach(o -> names.add(o.name()));
            assertEquals(names.size(), names.stream().distinct().count(), op.name() + ": an input and an option share a name: " + names);
            for (String name : names) assertTrue(r.out.lines().anyMatch(l -> l.startsWith("  " + name + " ") || l.startsWith("  " + name + "? ")),
                    op.name() + ": '" + name + "' not listed in:\n" + r.out);
        }
    }

    // ---- errors: one line naming the tensor or option, exit status 2 -----------------------------

    @Test
    void errorsAreOneLineNamingTheCulpritWithStatus2() throws IOException {
        Path good = write("good", Map.of("x", random(DType.F32, 2, 8), "weight", random(DType.F32, 8)));
        String g = good.toString();
        assertError(cli("op", "rmsnorm", "--in", write("nw", Map.of("x", random(DType.F32, 2, 8))).toString()), "missing tensor 'weight'");
        assertError(cli("op", "rmsnorm", "--in", write("ws", Map.of("x", random(DType.F32, 2, 8), "weight", random(DType.F32, 9))).toString()),
                "weight has shape [9], expected [8]");
        assertError(cli("op", "rmsnorm", "--in", write("rs", Map.of("x", random(DType.F32, 2, 8), "weight", random(DType.F32, 8),
                "residual", random(DType.F32, 3, 8))).toString()), "residual has shape [3, 8]");
        Tensor ints = keep(Tensor.fromLongs(DType.I32, new long[16], 2, 8));
        assertError(cli("op", "rmsnorm", "--in", write("xi", Map.of("x", ints, "weight", random(DType.F32, 8))).toString()),
                "tensor 'x' has dtype i32");
        assertError(cli("op", "rmsnorm", "--in", g, "--set", "epsilon=1"), "unknown option 'epsilon' for rmsnorm (options: eps)");
        assertError(cli("op", "rmsnorm", "--in", g, "--set", "eps=abc"), "option 'eps' must be a finite number, got 'abc'");
        assertError(cli("op", "rmsnorm", "--in", g, "--set", "eps=-1"), "option 'eps' must be >= 0");
        assertError(cli("op", "rmsnorm", "--in", g, "--set", "eps=1", "--set", "eps=2"), "option 'eps' is set twice");
        assertError(cli("op", "rmsnorm", "--in", g, "--set", "eps"), "--set needs name=value");
        assertError(cli("op", "rmsnorm", "--in", dir.resolve("nope.safetensors").toString()), "cannot read", "no such file");
        Path junk = dir.resolve("junk.safetensors");
        Files.writeString(junk, "not safetensors at all");
        assertError(cli("op", "rmsnorm", "--in", junk.toString()), "junk.safetensors", "header length");
        assertError(cli("op", "softmax", "--in", g), "unknown op 'softmax' (ops: rmsnorm, gemm, selective-scan, ");
        assertError(cli("op", "rmsnorm"), "--in INPUT.safetensors is required");
        assertError(cli("op", "rmsnorm", "--in", g, "--out", g), "--out is the input file");
        assertError(cli("op", "rmsnorm", "--in", g, "--backend", "tpu"), "--backend must be cpu, cuda or best");
        assertError(cli("op", "rmsnorm", "--in", g, "--out", dir.resolve("no/such/dir/out.safetensors").toString(), "--backend", "cpu"),
                "cannot write");
        Path ab = write("ab", Map.of("a", random(DType.F32, 3, 4), "b", random(DType.F32, 5, 6)));
        assertError(cli("op", "gemm", "--in", ab.toString(), "--backend", "cpu"), "b has shape [5, 6]", "K = 4");
        Path ab2 = write("ab2", Map.of("a", random(DType.F32, 3, 4), "b", random(DType.F32, 4, 6)));
        assertError(cli("op", "gemm", "--in", ab2.toString(), "--backend", "cpu", "--set", "beta=1"), "option 'beta'", "no input c");
        assertError(cli("op", "gemm", "--in", ab2.toString(), "--backend", "cpu", "--set", "transpose_a=yes"),
                "option 'transpose_a' must be true or false");
    }

    @Test
    void verboseAddsTheStackTrace() throws IOException {
        Path in = write("in", Map.of("x", random(DType.F32, 2, 8)));
        Run r = cli("op", "rmsnorm", "--in", in.toString(), "--verbose");
        assertEquals(2, r.status);
        assertTrue(r.err.contains("missing tensor 'weight'") && r.err.contains("\tat "), r.err);
    }
}
