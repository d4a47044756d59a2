package dev.isthmus.testing;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Test resources as files on disk, wherever the tests run from: the resources themselves when the
 * classpath is a folder, temporary copies when it is a jar (the GPU machine's bundle runs the tests
 * from one), since fixtures are memory-mapped from files.
 */
public final class TestResources {
    private TestResources() {}

    /** The file of resource {@code name} (e.g. "gguf/types.gguf"); a missing one fails the calling test with {@code hint}. */
    public static Path file(String name, String hint) throws IOException {
        int slash = name.lastIndexOf('/');
        String file = name.substring(slash + 1);
        return folder(slash < 0 ? "" : name.substring(0, slash), List.of(file), hint).resolve(file);
    }

    /**
     * The folder of resources {@code folder} holding {@code files} (all copied side by side when the
     * classpath is a jar); a missing file fails the calling test with {@code hint}.
     */
    public static Path folder(String folder, List<String> files, String hint) throws IOException {
        String prefix = folder.isEmpty() ? "" : folder + "/";
        URL first = TestResources.class.getClassLoader().getResource(prefix + files.getFirst());
        assertNotNull(first, "the test resource " + prefix + files.getFirst() + " is missing: " + hint);
        if (first.getProtocol().equals("file")) {
            try {
                return Path.of(first.toURI()).getParent();
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        Path dir = Files.createTempDirectory("isthmus-resource");
        dir.toFile().deleteOnExit(); // before its files: deleted in the reverse order of registration
        for (String file : files) {
            try (InputStream in = TestResources.class.getClassLoader().getResourceAsStream(prefix + file)) {
                assertNotNull(in, "the test resource " + prefix + file + " is missing: " + hint);
                Files.copy(in, dir.resolve(file));
            }
            dir.resolve(file).toFile().deleteOnExit();
        }
        return dir;
    }
}
