package dev.isthmus.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The checkpoint's tokenizer.json, run by the Hugging Face tokenizers library through DJL's
 * binding (its jar carries the native library, so nothing is downloaded). Special tokens are
 * added as the tokenizer's post-processor says, as transformers does by default.
 *
 * <p>DJL otherwise pings an AWS telemetry endpoint (through the EC2 metadata address) when a
 * tokenizer is created; loading one here puts DJL in its offline mode first ({@code ai.djl.offline}),
 * which turns that off and forbids downloads, unless the caller set the property already.
 */
public final class Tokenizer implements AutoCloseable {
    private static final String DJL_OFFLINE = "ai.djl.offline";

    private final HuggingFaceTokenizer tokenizer;

    private Tokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** Loads {@code directory}/tokenizer.json. */
    public static Tokenizer load(Path directory) throws IOException {
        Path file = directory.resolve("tokenizer.json");
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString());
        if (System.getProperty(DJL_OFFLINE) == null) System.setProperty(DJL_OFFLINE, "true");
        return new Tokenizer(HuggingFaceTokenizer.newInstance(file, Map.of("addSpecialTokens", "true")));
    }

    public int[] encode(String text) {
        Encoding encoding = tokenizer.encode(text);
        long[] ids = encoding.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return out;
    }

    /** The text of {@code ids}, special tokens left out. */
    public String decode(int[] ids) {
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) wide[i] = ids[i];
        return tokenizer.decode(wide, true);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
