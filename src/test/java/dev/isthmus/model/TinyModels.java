package dev.isthmus.model;

import java.io.IOException;
import java.nio.file.Path;

/** Tiny random checkpoints for tests outside this package. */
public final class TinyModels {
    private TinyModels() {}

    /** A two-layer random Llama with a word-level tokenizer ("w0" .. "w60") in {@code dir}. */
    public static Path llama(Path dir) throws IOException {
        return TinyCheckpoints.write(dir.resolve("llama"), TinyCheckpoints.Kind.LLAMA, 17);
    }
}
