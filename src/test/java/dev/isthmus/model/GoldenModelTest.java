package dev.isthmus.model;


import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import java.io.IOException;
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
        GoldenFixtures.checkTokenizer(family, GoldenFixtures.require(family));
    }
}
