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
import dev.isthmus.testing.TestResources;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
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

    /** The golden fixtures of the families read since Mixtral go through the same load path: generate runs them by config.json alone. */
    @org.junit.jupiter.params.ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"qwen3", "qwen3_moe", "phi3"})
    void generateRunsTheNewerFamilies(String family) throws IOException {
        Path model = dev.isthmus.testing.TestResources.folder("golden/" + family,
                List.of("config.json", "model.safetensors", "tokenizer.json"), "run src/test/resources/golden/make_golden.py");
        Run r = run("generate", "--model", model.toString(), "--prompt", "The scan keeps", "--max-tokens", "3", "--backend", "cpu");
        assertEquals(0, r.status(), r.err());
        assertTrue(r.err().contains("[" + family + " on "), r.err());
        assertTrue(r.out().startsWith("The scan keeps"), r.out());
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

    /** `isthmus quantize-report` prints a row per precision and writes the plot; a GGUF file is refused by name. */
    @Test
    void quantizeReportPrintsATableAndPlotsIt() throws IOException {
        Path model = TinyModels.llama(dir);
        Path plot = dir.resolve("plots/report.png");
        Run r = run("quantize-report", "--model", model.toString(), "--prompt", "w5 w17 w3 w9", "--tokens", "3", "--backend", "cpu",
                "--plot", plot.toString());
        assertEquals(0, r.status(), r.err());
        for (String precision : List.of("f32", "bf16", "q8_0", "q4_0", "q4_k"))
            assertTrue(r.out().lines().anyMatch(l -> l.startsWith("| " + precision + " |")), precision + " row in\n" + r.out());
        assertTrue(r.out().contains("| 3/3 |"), "the f32 reference agrees with itself:\n" + r.out());
        BufferedImage image = ImageIO.read(plot.toFile());
        assertEquals(3 * 560, image.getWidth(), "three panels");

        Path gguf = dir.resolve("llama.gguf");
        try (var in = ModelCommandsTest.class.getClassLoader().getResourceAsStream("gguf/llama.gguf")) {
            java.nio.file.Files.copy(in, gguf);
        }
        Run refused = run("quantize-report", "--model", gguf.toString(), "--backend", "cpu", "--plot", plot.toString());
        assertEquals(2, refused.status());
        assertTrue(refused.err().contains("GGUF file"), refused.err());
    }

    /** --speculative with either drafter prints plain greedy's continuation and the acceptance line; bad values are refused by name. */
    @Test
    void generateSpeculativelyWithEitherDrafter() throws IOException {
        Path model = TinyModels.llama(dir);
        String prompt = "w5 w17 w3 w5 w17 w3 w5 w17";
        Run plain = run("generate", "--model", model.toString(), "--prompt", prompt, "--max-tokens", "6", "--backend", "cpu");
        String continuation = plain.out().lines().findFirst().orElseThrow();
        for (String spec : List.of("prompt-lookup,k=3", "draft=" + model + ",k=2", "prompt-lookup")) {
            Run r = run("generate", "--model", model.toString(), "--prompt", prompt, "--max-tokens", "6", "--backend", "cpu", "--speculative", spec);
            assertEquals(0, r.status(), r.err());
            assertEquals(continuation, r.out().lines().findFirst().orElseThrow(), spec + ": greedy output as plain decoding's");
            assertTrue(r.out().contains("acceptance") && r.out().contains("tokens per target forward") && r.out().contains("plain decoding"), r.out());
        }
        assertTrue(run("generate", "--model", model.toString(), "--prompt", prompt, "--max-tokens", "6", "--backend", "cpu", "--speculative",
                "draft=" + model + ",k=2").out().contains("acceptance 1.00"), "the model as its own draft keeps every token");
        Path otherVocabulary = TestResources.folder("golden/llama", List.of("config.json", "model.safetensors", "tokenizer.json"), "");
        for (String[] bad : new String[][] {{"prompt-lookup,k=0", "k must be >= 1"}, {"ngram", "must start with prompt-lookup or draft=DIR"},
                {"prompt-lookup,n=3", "takes k=N"}, {"draft=" + otherVocabulary + ",k=2", "share the target's vocabulary"}}) {
            Run r = run("generate", "--model", model.toString(), "--prompt", prompt, "--backend", "cpu", "--speculative", bad[0]);
            assertEquals(2, r.status(), bad[0]);
            assertTrue(r.err().contains(bad[1]), r.err());
        }
    }

    /** --kv-cache int8, fp8 and fp8-calibrated generate (the CPU reference quantizes the cache); anything else is refused by name. */
    @Test
    void generateTakesAQuantizedKvCache() throws IOException {
        Path model = TinyModels.llama(dir);
        for (String type : new String[] {"int8", "fp8", "fp8-calibrated"}) {
            Run r = run("generate", "--model", model.toString(), "--prompt", "w5 w17", "--max-tokens", "3", "--backend", "cpu", "--kv-cache", type);
            assertEquals(0, r.status(), r.err());
            String label = type.equals("int8") ? "int8" : "fp8";
            assertTrue(r.err().contains(label + " KV cache") && r.out().contains(" tokens; prefill"), r.err() + r.out());
        }
        Run bad = run("generate", "--model", model.toString(), "--prompt", "w5", "--backend", "cpu", "--kv-cache", "int4");
        assertEquals(2, bad.status());
        assertTrue(bad.err().contains("--kv-cache int4 is not model, int8, fp8 or fp8-calibrated"), bad.err());
    }

    @Test
    void validateWithoutCudaSaysWhy() throws IOException {
        if (Cuda.availability().available()) return;
        Run r = run("validate", "--model", TinyModels.llama(dir).toString());
        assertEquals(2, r.status());
        assertTrue(r.err().startsWith("isthmus validate: "), r.err());
    }
}
