package dev.isthmus.model;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.isthmus.io.GgufFile;
import dev.isthmus.io.HfCheckpoint;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import dev.isthmus.tensor.Checks;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Map;

/**
 * The model's tokenizer.json (or the vocabulary of a GGUF file, written as one), run by the Hugging Face tokenizers library through DJL's
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

    /**
     * The tokenizer of a model: {@code path}/tokenizer.json for a checkpoint directory; for a GGUF
     * file, the tokenizer.json beside it if there is one, else the vocabulary the file carries
     * (see {@link GgufVocabulary} for the kinds read).
     */
    public static Tokenizer load(Path path) throws IOException {
        if (Files.isRegularFile(path)) {
            Path beside = path.resolveSibling("tokenizer.json");
            if (Files.exists(beside)) return loadJson(beside);
            String json;
            try (GgufFile gguf = GgufFile.open(path)) {
                json = GgufVocabulary.tokenizerJson(gguf);
            }
            return create(json, path + " (its vocabulary)");
        }
        Path file = path.resolve("tokenizer.json");
        if (!Files.exists(file)) throw new NoSuchFileException(file.toString());
        return loadJson(file);
    }

    private static Tokenizer loadJson(Path file) throws IOException {
        // Parsed here first, so that a malformed file is refused with its position before the native library sees it.
        Object model = HfCheckpoint.readJsonObject(file, MAX_BYTES).get("model");
        if (!(model instanceof Map<?, ?>)) throw new IllegalArgumentException(file + " has no \"model\" object; it is not a tokenizers file");
        return create(Files.readString(file), file.toString());
    }

    private static Tokenizer create(String json, String what) throws IOException {
        if (System.getProperty(DJL_OFFLINE) == null) System.setProperty(DJL_OFFLINE, "true");
        try {
            return new Tokenizer(HuggingFaceTokenizer.newInstance(new ByteArrayInputStream(json.getBytes(StandardCharsets.UTF_8)),
                    Map.of("addSpecialTokens", "true")));
        } catch (RuntimeException e) { // the native library's refusal of a well-formed JSON it cannot use
            throw new IllegalArgumentException(what + " is not a tokenizer the tokenizers library can load: " + e.getMessage(), e);
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
