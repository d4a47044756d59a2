package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The tokenizer binding on a small tokenizer.json written here (no download): encode, decode, missing file. */
class TokenizerTest {
    @TempDir
    Path dir;

    @Test
    void encodesAndDecodesAWordLevelVocabulary() throws IOException {
        Files.writeString(dir.resolve("tokenizer.json"), """
                {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [], "normalizer": null,
                 "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null, "decoder": null,
                 "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "the": 1, "scan": 2, "keeps": 3, "state": 4, "a": 5},
                           "unk_token": "<unk>"}}
                """);
        try (Tokenizer tokenizer = Tokenizer.load(dir)) {
            assertArrayEquals(new int[] {1, 2, 3, 5, 4}, tokenizer.encode("the scan keeps a state"));
            assertArrayEquals(new int[] {1, 0}, tokenizer.encode("the attention"));
            assertEquals("the scan keeps a state", tokenizer.decode(new int[] {1, 2, 3, 5, 4}));
        }
    }

    @Test
    void aMissingTokenizerIsNamed() {
        NoSuchFileException e = assertThrows(NoSuchFileException.class, () -> Tokenizer.load(dir));
        org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("tokenizer.json"));
    }
}
