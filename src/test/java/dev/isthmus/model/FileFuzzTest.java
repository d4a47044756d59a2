package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.isthmus.cli.Main;
import dev.isthmus.io.HfCheckpoint;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.testing.Tries;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * The file readers under malformed input: a tiny checkpoint with one of config.json,
 * tokenizer.json or model.safetensors corrupted, read by the library (only an
 * IllegalArgumentException, or success where the corruption left the file valid) and, every
 * {@value #CLI_EVERY}th try, by `isthmus op`, `generate` and `validate` (exit status 2 with one
 * line on stderr, never a stack trace). {@value #TRIES} tries from seed 1303 (a few ms a try: a
 * tokenizer load), or {@code -Disthmus.fuzz.files.tries=N}; see {@link Tries}.
 */
class FileFuzzTest {
    static final int CLI_EVERY = 25;
    static final int TRIES = 2_500;
    private static final AtomicLong REFUSED = new AtomicLong(), READ = new AtomicLong(), CLI = new AtomicLong();
    private static final String[] FILES = {"config.json", "tokenizer.json", "model.safetensors"};
    private static Path valid;

    enum Corruption { TRUNCATE, DEEP_NESTING, VALUE, BYTE_FLIP, HEADER_LENGTH }

    @Test
    void malformedFilesAreRefusedInOneLine() {
        Tries.run("files", 1303, "isthmus.fuzz.files.tries", TRIES, draw -> malformedFile(draw.intIn("file", 0, FILES.length - 1),
                draw.oneOf("corruption", Corruption.class), draw.anyLong("seed"), draw.intIn("cli", 0, CLI_EVERY - 1)));
    }

    private static void malformedFile(int file, Corruption corruption, long seed, int cli) throws IOException {
        Path dir = Files.createTempDirectory("isthmus-fuzz");
        try {
            for (String f : FILES) Files.copy(checkpoint().resolve(f), dir.resolve(f));
            Path target = dir.resolve(FILES[file]);
            boolean mustRefuse = corrupt(target, corruption, new Random(seed));
            Throwable thrown = read(dir, target);
            if (thrown != null && !(thrown instanceof IllegalArgumentException) && !(thrown instanceof IOException))
                fail(corruption + " of " + target.getFileName() + " threw " + thrown, thrown);
            if (mustRefuse && thrown == null) fail(corruption + " of " + target.getFileName() + " was accepted");
            (thrown != null ? REFUSED : READ).incrementAndGet();
            if (cli == 0) throughTheCommandLine(dir);
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) Files.delete(p);
            }
            Files.delete(dir);
        }
    }

    /** The readers a model load runs, in order; what the first one threw, or null. */
    private static Throwable read(Path dir, Path target) {
        try {
            if (target.getFileName().toString().endsWith(".safetensors")) {
                SafetensorsFile.open(target).close();
            } else if (target.getFileName().toString().equals("tokenizer.json")) {
                Tokenizer.load(dir).close();
            } else {
                try (HfCheckpoint checkpoint = HfCheckpoint.open(dir)) {
                    ModelConfig.fromJson(checkpoint.config());
                }
            }
            return null;
        } catch (Throwable t) {
            return t;
        }
    }

    private static void throughTheCommandLine(Path dir) {
        String[][] commands = {
                {"op", "rmsnorm", "--in", dir.resolve("model.safetensors").toString(), "--backend", "cpu"},
                {"generate", "--model", dir.toString(), "--prompt", "w1 w2", "--max-tokens", "1", "--backend", "cpu"},
                {"validate", "--model", dir.toString(), "--tokens", "1"}};
        for (String[] command : commands) {
            StringWriter out = new StringWriter(), err = new StringWriter();
            int status = Main.run(new PrintWriter(out), new PrintWriter(err), command);
            String stderr = err.toString();
            assertFalse(stderr.contains("\tat ") || stderr.contains("Exception in"), "a stack trace from " + command[0] + ": " + stderr);
            if (status == 2) {
                assertEquals(1, stderr.lines().filter(l -> l.startsWith("isthmus ")).count(), command[0] + " stderr: " + stderr);
                assertTrue(stderr.strip().lines().count() <= 2, command[0] + " says more than its error: " + stderr);
            }
            assertTrue(status == 0 || status == 1 || status == 2, command[0] + " exited " + status);
            CLI.incrementAndGet();
        }
    }

    /** Corrupts {@code file} in place; whether the result can no longer be a valid file of its kind. */
    private static boolean corrupt(Path file, Corruption corruption, Random random) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        boolean safetensors = file.toString().endsWith(".safetensors");
        int headerEnd = safetensors ? 8 + (int) littleEndianLong(bytes) : bytes.length;
        switch (corruption) {
            case TRUNCATE -> {
                Files.write(file, java.util.Arrays.copyOf(bytes, random.nextInt(headerEnd)));
                return true;
            }
            case DEEP_NESTING -> {
                int depth = 300 + random.nextInt(100_000);
                String deep = "[".repeat(depth) + "]".repeat(random.nextBoolean() ? depth : depth / 2);
                writeJson(file, bytes, safetensors, "{\"a\": " + deep + "}");
                return true;
            }
            case VALUE -> {
                String text = new String(bytes, safetensors ? 8 : 0, headerEnd - (safetensors ? 8 : 0), StandardCharsets.UTF_8);
                writeJson(file, bytes, safetensors, replaceAValue(text, random));
                return false;
            }
            case BYTE_FLIP -> {
                int at = random.nextInt(headerEnd);
                bytes[at] = (byte) random.nextInt(256);
                Files.write(file, bytes);
                return false;
            }
            case HEADER_LENGTH -> {
                if (!safetensors) {
                    Files.write(file, new byte[random.nextInt(16)]);
                    return true;
                }
                long length = new long[] {-1, Long.MAX_VALUE, 0, 1, headerEnd - 7L, bytes.length}[random.nextInt(6)];
                for (int i = 0; i < 8; i++) bytes[i] = (byte) (length >>> (8 * i));
                Files.write(file, bytes);
                return true;
            }
        }
        throw new IllegalStateException(corruption.name());
    }

    /** The text with the value after one random ':' replaced by one that is wrong in type or range. */
    private static String replaceAValue(String text, Random random) {
        int colons = (int) text.chars().filter(c -> c == ':').count();
        if (colons == 0) return text;
        int n = random.nextInt(colons), at = -1;
        for (int i = 0; i <= n; i++) at = text.indexOf(':', at + 1);
        int end = at + 1;
        while (end < text.length() && ",}]".indexOf(text.charAt(end)) < 0 && text.charAt(end) != '{' && text.charAt(end) != '[') end++;
        String[] values = {"0", "-1", "2147483648", "9223372036854775807", "1e400", "-5", "0.5", "\"gelu\"", "null", "true", "[]", "{}",
                "[-1, 3]", "\"x\"", "[[[]]]"};
        return text.substring(0, at + 1) + " " + values[random.nextInt(values.length)] + text.substring(end);
    }

    private static void writeJson(Path file, byte[] original, boolean safetensors, String json) throws IOException {
        byte[] text = json.getBytes(StandardCharsets.UTF_8);
        if (!safetensors) {
            Files.write(file, text);
            return;
        }
        int dataStart = 8 + (int) littleEndianLong(original);
        byte[] out = new byte[8 + text.length + original.length - dataStart];
        for (int i = 0; i < 8; i++) out[i] = (byte) ((long) text.length >>> (8 * i));
        System.arraycopy(text, 0, out, 8, text.length);
        System.arraycopy(original, dataStart, out, 8 + text.length, original.length - dataStart);
        Files.write(file, out);
    }

    private static long littleEndianLong(byte[] b) {
        long v = 0;
        for (int i = 7; i >= 0; i--) v = (v << 8) | (b[i] & 0xff);
        return v;
    }

    private static synchronized Path checkpoint() {
        if (valid == null) {
            try {
                valid = TinyCheckpoints.write(Files.createTempDirectory("isthmus-fuzz-valid"), TinyCheckpoints.Kind.LLAMA, 5);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return valid;
    }

    @AfterAll
    static void figures() {
        System.out.printf("[fuzz] files: %d malformed files refused with IllegalArgumentException, %d still valid and read; %d command runs, "
                + "none with a stack trace%n", REFUSED.get(), READ.get(), CLI.get());
    }
}
