package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.io.SafetensorsWriter;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;

/**
 * `isthmus op --backend cuda`: every op on awkward shapes, --check passing, and the output file
 * against the CPU reference computed here; --bench producing its line with CUDA-event timing.
 */
class OpCommandGpuTest {
    @TempDir
    Path dir;

    @GpuTest
    void rmsnormOnTheGpuPassesItsCheckAndMatchesTheReference() throws Exception {
        Random random = new Random(3);
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16})
            try (Tensor x = RandomTensors.normal(random, dtype, 1f, 7, 5121);
                 Tensor res = RandomTensors.normal(random, dtype, 1f, 7, 5121);
                 Tensor w = RandomTensors.normal(random, dtype, 1f, 5121);
                 Tensor expected = Tensor.allocateHost(dtype, 7, 5121);
                 Tensor expectedResidual = Tensor.allocateHost(dtype, 7, 5121)) {
                Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
                SafetensorsWriter.write(in, ordered("x", x, "residual", res, "weight", w));
                String[] result = cli("op", "rmsnorm", "--in", in.toString(), "--out", out.toString(), "--backend", "cuda", "--check",
                        "--bench", "5", "--warmup", "2");
                assertEquals("0", result[0], result[2]);
                assertTrue(result[1].contains("check out:") && result[1].contains("check residual_out:"), result[1]);
                assertTrue(result[1].contains("rmsnorm+residual,7x5121," + dtype.label() + ","), result[1]);
                RmsNorm.applyWithResidual(Backend.cpu(), expected, expectedResidual, x, res, w, 1e-6f);
                try (SafetensorsFile f = SafetensorsFile.open(out)) {
                    Compare.Result r = Compare.check("out", f.tensor("out"), expected);
                    assertTrue(r.withinBound(), r.toString());
                    assertEquals(0.0, Compare.relativeError(f.tensor("residual_out"), expectedResidual), "the fused add is exact");
                }
            }
    }

    @GpuTest
    void gemmOnTheGpuPassesItsCheckOrSaysWhyNot() throws Exception {
        Random random = new Random(4);
        try (Tensor a = RandomTensors.normal(random, DType.BF16, 1f, 65, 33);
             Tensor b = RandomTensors.normal(random, DType.BF16, 1f, 17, 65);
             Tensor c = RandomTensors.normal(random, DType.F32, 1f, 33, 17);
             Tensor expected = Tensor.allocateHost(DType.F32, 33, 17)) {
            Path in = dir.resolve("in.safetensors"), out = dir.resolve("out.safetensors");
            SafetensorsWriter.write(in, ordered("a", a, "b", b, "c", c));
            String[] result = cli("op", "gemm", "--in", in.toString(), "--out", out.toString(), "--backend", "cuda", "--check",
                    "--set", "transpose_a=true", "--set", "transpose_b=true", "--set", "alpha=2", "--set", "beta=0.5");
            assertEquals("0", result[0], result[2]);
            Backend.cpu().copy(expected, c);
            Gemm.gemm(Backend.cpu(), expected, a, true, b, true, 2f, 0.5f);
            try (SafetensorsFile f = SafetensorsFile.open(out)) {
                Compare.Result r = Compare.check("c", f.tensor("c"), expected, 1e-4);
                assertTrue(r.withinBound(), r.toString());
            }
        }
    }

    private static Map<String, Tensor> ordered(String n1, Tensor t1, String n2, Tensor t2, String n3, Tensor t3) {
        Map<String, Tensor> m = new LinkedHashMap<>();
        m.put(n1, t1);
        m.put(n2, t2);
        m.put(n3, t3);
        return m;
    }

    /** {exit status, stdout, stderr}. */
    private static String[] cli(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int status = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new String[] {Integer.toString(status), out.toString(), err.toString()};
    }
}
