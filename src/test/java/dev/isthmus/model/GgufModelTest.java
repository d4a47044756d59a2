package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.GgufFile;
import dev.isthmus.tensor.DType;
import dev.isthmus.testing.TestResources;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Models from GGUF files written by the `gguf` package with quantized matrices
 * (src/test/resources/gguf/make_gguf_models.py) against transformers run on gguf's dequantization
 * of the same weights: logits within the fp32 bound, greedy tokens exact, and the tokenizer built
 * from the file's vocabulary giving transformers' ids.
 */
class GgufModelTest {
    static final List<String> FAMILIES = List.of("llama", "qwen2", "mixtral", "mamba");

    /** A GGUF fixture file, e.g. "llama.gguf". */
    static Path fixture(String file) throws IOException {
        return TestResources.file("gguf/" + file, "run src/test/resources/gguf/make_gguf_models.py and commit what it writes");
    }

    @TempDir
    Path tmp;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void cpuMatchesTransformersOnTheDequantizedWeights(String family) throws IOException {
        GoldenFixtures.check(family, fixture(family + ".gguf"), fixture(family + ".reference.safetensors"), Backend.cpu(), DType.F32,
                1e-4, true);
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void tokenizerFromTheFilesVocabularyMatchesTransformers(String family) throws IOException {
        Path copy = tmp.resolve(family + ".gguf"); // alone in a folder: no tokenizer.json beside it
        Files.copy(fixture(family + ".gguf"), copy);
        GoldenFixtures.checkTokenizer(family, copy);
    }

    /** Byte-level BPE vocabularies (llama.cpp's gpt2 tokenizer model) with the gpt2 and llama-bpe pre-tokenizers. */
    @ParameterizedTest
    @ValueSource(strings = {"gpt2", "llama-bpe"})
    void byteLevelVocabulariesMatchTheTokenizersLibrary(String pre) throws IOException {
        Path file = fixture("bpe-" + pre + ".gguf");
        String text;
        int[] expected;
        try (GgufFile f = GgufFile.open(file)) {
            text = f.string("fixture.text");
            expected = f.array("fixture.ids").stream().mapToInt(id -> Math.toIntExact((Long) id)).toArray();
        }
        try (Tokenizer tokenizer = Tokenizer.load(file)) {
            assertArrayEquals(expected, tokenizer.encode(text), pre);
            assertEquals(text, tokenizer.decode(expected));
        }
    }

    @Test
    void theFixturesAreQuantized() throws IOException {
        try (GgufFile f = GgufFile.open(fixture("llama.gguf"))) {
            assertTrue(f.info("blk.0.attn_q.weight").type().quantized());
            assertTrue(f.info("blk.0.ffn_up.weight").type().quantized());
            assertTrue(f.info("output.weight").type().quantized());
        }
    }

    @Test
    void unpermutingUndoesTheConvertersRowOrder() {
        // two heads of width 4, one column: GGUF rows (h, pair, half) hold HF rows (h, half, pair)
        float[] gguf = {0, 2, 1, 3, 4, 6, 5, 7};
        assertArrayEquals(new float[] {0, 1, 2, 3, 4, 5, 6, 7}, GgufWeights.unpermuteRope(gguf, 4, 1));
    }

    @Test
    void refusesWhatItDoesNotImplementByName() throws IOException {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> DecoderModel.load(Backend.cpu(), fixture("types.gguf"), DType.F32));
        assertTrue(e.getMessage().contains("architecture 'fixture' is not supported"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Tokenizer.load(fixture("types.gguf")));
        assertTrue(e.getMessage().contains("no metadata 'tokenizer.ggml.model'"), e.getMessage());
    }
}
