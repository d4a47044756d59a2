package dev.isthmus.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.isthmus.io.HfCheckpoint;
import dev.isthmus.tensor.Checks;
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
    /** The largest tokenizer.json read: large vocabularies take tens of megabytes. */
    static final long MAX_BYTES = 512L << 20;

    private final HuggingFaceTokenizer tokenizer;

    private Tokenizer(HuggingFaceTokenizer tokenizer) {
        this.tokenizer = tokenizer;
    }

    /** Loads {@code directory}/tokenizer.json. */
    public static Tokenizer load(Path directory) throws IOException {
        Path file = directory.resolve("tokenizer.json");
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString());
        // Parsed here first, so that a malformed file is refused with its position before the native library sees it.
        Object model = HfCheckpoint.readJsonObject(file, MAX_BYTES).get("model");
        if (!(model instanceof Map<?, ?>)) throw new IllegalArgumentException(file + " has no \"model\" object; it is not a tokenizers file");
        if (System.getProperty(DJL_OFFLINE) == null) System.setProperty(DJL_OFFLINE, "true");
        try {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(file, Map.of("addSpecialTokens", "true")));
        } catch (RuntimeException e) { // the native library's refusal of a well-formed JSON it cannot use
            throw new IllegalArgumentException(file + " is not a tokenizer the tokenizers library can load: " + e.getMessage(), e);
        }
    }

    public int[] encode(String text) {
        Checks.notNull("text", text);
        Encoding encoding = tokenizer.encode(text);
        long[] ids = encoding.getIds();
        int[] out = new int[ids.length];
        for (int i = 0; i < ids.length; i++) out[i] = Math.toIntExact(ids[i]);
        return out;
    }

    /** The text of {@code ids}, special tokens left out. */
    public String decode(int[] ids) {
        Checks.notNull("ids", ids);
        long[] wide = new long[ids.length];
        for (int i = 0; i < ids.length; i++) wide[i] = ids[i];
        return tokenizer.decode(wide, true);
    }

    @Override
    public void close() {
        tokenizer.close();
    }
}
