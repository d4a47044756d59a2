package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.TestResources;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * The golden fixtures under src/test/resources/golden (made by make_golden.py with transformers):
 * a checkpoint, its tokenizer, and transformers' logits and greedy tokens for a prompt.
 */
final class GoldenFixtures {
    private GoldenFixtures() {}

    static final List<String> FAMILIES = List.of("llama", "llama3", "qwen2", "qwen3", "qwen3_moe", "phi3", "phi3_long", "mistral", "mixtral",
            "mamba", "mamba2", "jamba", "granitemoehybrid", "granitemoehybrid_dense");

    /** The files of a fixture. */
    private static final List<String> FILES = List.of("config.json", "model.safetensors", "tokenizer.json", "reference.safetensors");

    /**
     * The fixture's directory; a missing fixture fails the calling test. Where the fixtures sit
     * inside a jar (the GPU machine's bundle runs the tests from one), they are copied to a
     * temporary directory first, since a checkpoint is memory-mapped from files.
     */
    static Path require(String family) throws IOException {
        return TestResources.folder("golden/" + family, FILES, "run src/test/resources/golden/make_golden.py where torch and "
                + "transformers are installed and commit what it writes");
    }

    /**
     * Loads the fixture on {@code backend} in {@code dtype} and checks transformers' logits of every
     * prompt position (relative error under {@code bound}) and, when {@code exactGreedy}, its greedy tokens.
     */
    static void check(String family, Backend backend, DType dtype, double bound, boolean exactGreedy) throws IOException {
        Path dir = require(family);
        check(family, dir, dir.resolve("reference.safetensors"), backend, dtype, bound, exactGreedy);
    }

    /** As above for the model at {@code modelPath} (a checkpoint directory or a GGUF file) and the reference file given. */
    static void check(String family, Path modelPath, Path referencePath, Backend backend, DType dtype, double bound, boolean exactGreedy)
            throws IOException {
        try (SafetensorsFile reference = SafetensorsFile.open(referencePath);
             DecoderModel model = DecoderModel.load(backend, modelPath, dtype);
             Session session = model.newSession(1, 256)) {
            int[] prompt = ints(reference.tensor("input_ids"));
            try (Tensor logits = model.forward(session, new int[] {0}, new int[][] {prompt}, true)) {
                Compare.Result result = Compare.check(family + " logits", logits, reference.tensor("logits"), bound);
                assertTrue(result.withinBound(), result.toString());
            }
            int[] greedy = ints(reference.tensor("greedy"));
            int[] ours = Generator.generate(model, List.of(prompt), greedy.length, SamplingOptions.greedy(), Set.of(), null).tokens().getFirst();
            if (exactGreedy) assertArrayEquals(greedy, ours, family + " greedy tokens");
        }
    }

    /**
     * The fixture's prompt and then {@code decodeSteps} greedy decode steps, once with a KV cache
     * in the model's dtype and once with one of {@code type}: the logits of every prompt position
     * and of every decode step, the quantized run's against the other's, within {@code bound}.
     * The decode steps feed both runs the same tokens (the unquantized run's greedy choices).
     */
    static double checkQuantizedCache(String family, Backend backend, DType dtype, KvCacheType type, int decodeSteps, double bound)
            throws IOException {
        return checkQuantizedCache(family, backend, dtype, type, false, decodeSteps, bound);
    }

    /** As above; calibrate: an fp8 cache's scales calibrated on the prompt (Fp8Calibration), else the scale 1. */
    static double checkQuantizedCache(String family, Backend backend, DType dtype, KvCacheType type, boolean calibrate, int decodeSteps,
                                      double bound) throws IOException {
        Path dir = require(family);
        int[] prompt;
        try (SafetensorsFile reference = SafetensorsFile.open(dir.resolve("reference.safetensors"))) {
            prompt = ints(reference.tensor("input_ids"));
        }
        try (DecoderModel model = DecoderModel.load(backend, dir, dtype);
             Session exact = model.newSession(1, 256);
             Session quantized = model.newSession(1, 256, type, calibrate ? java.util.List.of(prompt) : null)) {
            double worst = 0;
            int[][] tokens = {prompt};
            for (int step = 0; step <= decodeSteps; step++) {
                try (Tensor want = model.forward(exact, new int[] {0}, tokens, step == 0);
                     Tensor got = model.forward(quantized, new int[] {0}, tokens, step == 0)) {
                    Compare.Result result = Compare.check(family + " " + type.label() + " cache logits, step " + step, got, want, bound);
                    assertTrue(result.withinBound(), result.toString());
                    worst = Math.max(worst, Compare.relativeError(got, want));
                    tokens = new int[][] {{argmax(want.toFloatArray(), (int) want.dim(want.rank() - 1))}};
                }
            }
            return worst;
        }
    }

    /** The index of the largest of the last row of {@code values} (rows of {@code width}). */
    private static int argmax(float[] values, int width) {
        int start = values.length - width, best = 0;
        for (int i = 1; i < width; i++) if (values[start + i] > values[start + best]) best = i;
        return best;
    }

    /** The tokenizer of {@code model} (a checkpoint directory or a GGUF file) gives transformers' ids of the golden prompt of {@code family}, and back. */
    static void checkTokenizer(String family, Path model) throws IOException {
        try (SafetensorsFile reference = SafetensorsFile.open(require(family).resolve("reference.safetensors"));
             Tokenizer tokenizer = Tokenizer.load(model)) {
            int[] expected = ints(reference.tensor("input_ids"));
            String prompt = reference.metadata().get("prompt");
            assertArrayEquals(expected, tokenizer.encode(prompt), family + " ids");
            org.junit.jupiter.api.Assertions.assertEquals(prompt, tokenizer.decode(expected), family + " decoded");
        }
    }

    static int[] ints(Tensor t) {
        long[] values = t.toLongArray();
        int[] out = new int[values.length];
        for (int i = 0; i < values.length; i++) out[i] = Math.toIntExact(values[i]);
        return out;
    }
}
