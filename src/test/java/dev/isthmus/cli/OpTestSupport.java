package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.io.SafetensorsWriter;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the CPU tests of `isthmus op` share: running the command in-process through
 * {@link Main#run}, writing input files, host tensors closed after each test, and the assertions
 * on outputs and one-line errors.
 */
abstract class OpTestSupport {
    static final Backend CPU = Backend.cpu();

    @TempDir
    Path dir;

    private final List<Tensor> tensors = new ArrayList<>();
    final Random random = new Random(5);

    @AfterEach
    void closeTensors() {
        tensors.forEach(Tensor::close);
    }

    /** What a run of the command gave: its exit status and what it printed (fields, as the tests read them often). */
    static final class Run {
        final int status;
        final String out, err;

        Run(int status, String out, String err) {
            this.status = status;
            this.out = out;
            this.err = err;
        }
    }

    static Run cli(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int status = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Run(status, out.toString(), err.toString());
    }

    static void assertError(Run r, String... fragments) {
        assertEquals(2, r.status, r.err);
        String line = r.err.strip();
        assertFalse(line.contains("\n"), "more than one line on stderr:\n" + r.err);
        assertTrue(line.startsWith("isthmus op"), line);
        for (String f : fragments) assertTrue(line.contains(f), "'" + f + "' not in: " + line);
    }

    /** Bit-for-bit equal: the command ran the same reference on the same inputs. */
    static void assertSame(Tensor expected, Tensor actual) {
        assertEquals(expected.dtype(), actual.dtype());
        assertArrayEquals(expected.shape(), actual.shape());
        assertEquals(0.0, Compare.relativeError(actual, expected));
        assertArrayEquals(expected.toFloatArray(), actual.toFloatArray());
    }

    Tensor random(DType dtype, long... shape) {
        return keep(RandomTensors.normal(random, dtype, 1f, shape));
    }

    Tensor uniform(DType dtype, float low, float high, long... shape) {
        return keep(RandomTensors.uniform(random, dtype, low, high, shape));
    }

    /** A host tensor closed after the test. */
    Tensor keep(Tensor t) {
        tensors.add(t);
        return t;
    }

    /** An output tensor for the expected values: poisoned, so an element the API leaves unwritten shows. */
    Tensor expected(DType dtype, long... shape) {
        Tensor t = keep(Tensor.allocateHost(dtype, shape));
        CPU.poison(t);
        return t;
    }

    Path write(String name, Map<String, Tensor> inputs) throws IOException {
        Path file = dir.resolve(name + ".safetensors");
        SafetensorsWriter.write(file, new LinkedHashMap<>(inputs));
        return file;
    }

    /** Runs `isthmus op OP` on the CPU backend over a file of {@code inputs}, with further arguments. */
    Run run(String op, Map<String, Tensor> inputs, String... more) throws IOException {
        List<String> args = new ArrayList<>(List.of("op", op, "--in", write("in", inputs).toString(), "--backend", "cpu"));
        args.addAll(List.of(more));
        return cli(args.toArray(String[]::new));
    }

    /** {@code base} with the given (name, tensor) pairs added or replaced. */
    static Map<String, Tensor> with(Map<String, Tensor> base, Object... nameTensorPairs) {
        Map<String, Tensor> m = new HashMap<>(base);
        for (int i = 0; i < nameTensorPairs.length; i += 2) m.put((String) nameTensorPairs[i], (Tensor) nameTensorPairs[i + 1]);
        return m;
    }

    static Map<String, Tensor> without(Map<String, Tensor> base, String name) {
        Map<String, Tensor> m = new HashMap<>(base);
        assertFalse(m.remove(name) == null, name);
        return m;
    }

    /** A 1-d i32 tensor of {@code values}. */
    Tensor ints(long... values) {
        return keep(Tensor.fromLongs(DType.I32, values, values.length));
    }

    /**
     * Runs the op on the GPU with --check and a short --bench, asserts that both passed and that the
     * bench row starts with {@code benchRow}, and returns the output file's tensors as host copies.
     */
    Map<String, Tensor> runOnGpu(String op, Map<String, Tensor> inputs, String benchRow, String... settings) throws IOException {
        Path out = dir.resolve("out.safetensors");
        List<String> args = new ArrayList<>(List.of("op", op, "--in", write("in", inputs).toString(), "--out", out.toString(),
                "--backend", "cuda", "--check", "--bench", "3", "--warmup", "1"));
        args.addAll(List.of(settings));
        Run r = cli(args.toArray(String[]::new));
        assertEquals(0, r.status, r.out + r.err);
        assertTrue(r.out.contains("\n" + benchRow + ","), r.out);
        Map<String, Tensor> results = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            for (String name : f.names()) results.put(name, keep(f.tensor(name).to(f.tensor(name).dtype())));
        }
        return results;
    }

    static void assertClose(String what, Tensor actual, Tensor expected, double bound) {
        Compare.Result r = Compare.check(what, actual, expected, bound);
        assertTrue(r.withinBound(), r.toString());
    }

    /** `isthmus op OP --help` succeeds and prints every one of {@code fragments}. */
    static void assertHelpShows(String op, String... fragments) {
        Run r = cli("op", op, "--help");
        assertEquals(0, r.status, r.err);
        for (String f : fragments) assertTrue(r.out.contains(f), "'" + f + "' not in:\n" + r.out);
    }
}
