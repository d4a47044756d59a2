package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.cuda.Cuda;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.Generator;
import dev.isthmus.model.SamplingOptions;
import dev.isthmus.model.TinyModels;
import dev.isthmus.tensor.DType;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `isthmus generate` and `isthmus validate` on the CPU, with a tiny random Llama and a word-level tokenizer. */
class ModelCommandsTest {
    @TempDir
    Path dir;

    private record Run(int status, String out, String err) {}

    private static Run run(String... args) {
        StringWriter out = new StringWriter(), err = new StringWriter();
        int status = Main.run(new PrintWriter(out), new PrintWriter(err), args);
        return new Run(status, out.toString(), err.toString());
    }

    @Test
    void generateStreamsTheGreedyContinuation() throws IOException {
        Path model = TinyModels.llama(dir);
        Run r = run("generate", "--model", model.toString(), "--prompt", "w5 w17 w3", "--max-tokens", "4", "--backend", "cpu");
        assertEquals(0, r.status(), r.err());
        int[] expected;
        try (DecoderModel m = DecoderModel.load(Backend.cpu(), model, DType.F32)) {
            expected = Generator.generate(m, List.of(new int[] {5, 17, 3}), 4, SamplingOptions.greedy(), Set.of(2), null).tokens().getFirst();
        }
        String words = Arrays.stream(expected).mapToObj(t -> "w" + t).collect(Collectors.joining(" "));
        assertTrue(r.out().startsWith("w5 w17 w3" + words) || r.out().startsWith("w5 w17 w3 " + words), r.out());
        assertTrue(r.out().contains("tokens/s") && r.out().contains("eager (CPU backend)]"), r.out());
    }

    @Test
    void generateReportsBadInputInOneLine() throws IOException {
        Run missing = run("generate", "--model", dir.resolve("nothing").toString(), "--prompt", "w1", "--backend", "cpu");
        assertEquals(2, missing.status());
        assertTrue(missing.err().contains("no such file"), missing.err());
        Path model = TinyModels.llama(dir);
        Run badTopP = run("generate", "--model", model.toString(), "--prompt", "w1", "--top-p", "0", "--backend", "cpu");
        assertEquals(2, badTopP.status());
        assertTrue(badTopP.err().contains("topP"), badTopP.err());
    }

    /** A GGUF file as --model (its tokenizer from the file's vocabulary), and --quantize on a checkpoint directory. */
    @Test
    void generateTakesAGgufFileAndQuantizesACheckpointOnLoad() throws IOException {
        Path gguf = dir.resolve("llama.gguf"); // alone in a folder: the vocabulary the file carries is the tokenizer
        try (var in = ModelCommandsTest.class.getClassLoader().getResourceAsStream("gguf/llama.gguf")) {
            java.nio.file.Files.copy(in, gguf);
        }
        Run fromGguf = run("generate", "--model", gguf.toString(), "--prompt", "The scan keeps", "--max-tokens", "3", "--backend", "cpu");
        assertEquals(0, fromGguf.status(), fromGguf.err());
        assertTrue(fromGguf.out().startsWith("The scan keeps") && fromGguf.out().contains("[3 tokens;"), fromGguf.out());

        Path model = TinyModels.llama(dir);
        Run quantized = run("generate", "--model", model.toString(), "--prompt", "w5 w17", "--max-tokens", "2", "--backend", "cpu",
                "--quantize", "q4_0");
        assertEquals(0, quantized.status(), quantized.err());
        Run badType = run("generate", "--model", model.toString(), "--prompt", "w5", "--backend", "cpu", "--quantize", "q6_k");
        assertEquals(2, badType.status());
        assertTrue(badType.err().contains("--quantize must be q8_0, q4_0, q4_1 or q4_k"), badType.err());
        Run ggufQuantized = run("generate", "--model", gguf.toString(), "--prompt", "The", "--backend", "cpu", "--quantize", "q8_0");
        assertEquals(2, ggufQuantized.status());
        assertTrue(ggufQuantized.err().contains("quantized as it was written"), ggufQuantized.err());
    }

    /** --kv-cache int8 and fp8 generate (the CPU reference quantizes the cache); anything else is refused by name. */
    @Test
    void generateTakesAQuantizedKvCache() throws IOException {
        Path model = TinyModels.llama(dir);
        for (String type : new String[] {"int8", "fp8"}) {
            Run r = run("generate", "--model", model.toString(), "--prompt", "w5 w17", "--max-tokens", "3", "--backend", "cpu", "--kv-cache", type);
            assertEquals(0, r.status(), r.err());
            assertTrue(r.err().contains(type + " KV cache") && r.out().contains(" tokens; prefill"), r.err() + r.out());
        }
        Run bad = run("generate", "--model", model.toString(), "--prompt", "w5", "--backend", "cpu", "--kv-cache", "int4");
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("--kv-cache int4 is not model, int8 or fp8"), bad.err());
    }

    @Test
    void validateWithoutCudaSaysWhy() throws IOException {
        if (Cuda.availability().available()) return;
        Run r = run("validate", "--model", TinyModels.llama(dir).toString());
        assertEquals(2, r.status());
        assertTrue(r.err().startsWith("isthmus validate: "), r.err());
    }
}
