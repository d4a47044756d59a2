package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.tensor.DType;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/** Each family on the CPU backend against transformers: logits within 1e-4 (fp32), greedy tokens exact, tokenizer ids equal. */
class GoldenModelTest {
    static final java.util.List<String> FAMILIES = GoldenFixtures.FAMILIES;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void cpuMatchesTransformers(String family) throws IOException {
        GoldenFixtures.check(family, Backend.cpu(), DType.F32, 1e-4, true);
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void tokenizerMatchesTransformers(String family) throws IOException {
        Path dir = GoldenFixtures.require(family);
        try (SafetensorsFile reference = SafetensorsFile.open(dir.resolve("reference.safetensors"));
             Tokenizer tokenizer = Tokenizer.load(dir)) {
            int[] expected = GoldenFixtures.ints(reference.tensor("input_ids"));
            String prompt = reference.metadata().get("prompt");
            assertArrayEquals(expected, tokenizer.encode(prompt));
            assertEquals(prompt, tokenizer.decode(expected));
        }
    }
}
