package dev.isthmus.testing;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A test resource as a file on disk, wherever the tests run from: the resource itself when the
 * classpath is a folder, a temporary copy when it is a jar (the GPU machine's bundle runs the tests
 * from one), since fixtures are memory-mapped from files.
 */
public final class TestResources {
    private TestResources() {}

    /** The file of resource {@code name} (e.g. "gguf/types.gguf"); a missing one fails the calling test with {@code hint}. */
    public static Path file(String name, String hint) throws IOException {
        URL url = TestResources.class.getClassLoader().getResource(name);
        assertNotNull(url, "the test resource " + name + " is missing: " + hint);
        if (url.getProtocol().equals("file")) {
            try {
                return Path.of(url.toURI());
            } catch (URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        Path dir = Files.createTempDirectory("isthmus-resource");
        dir.toFile().deleteOnExit(); // before its file: deleted in the reverse order of registration
        Path copy = dir.resolve(Path.of(name).getFileName().toString());
        try (InputStream in = url.openStream()) {
            Files.copy(in, copy);
        }
        copy.toFile().deleteOnExit();
        return copy;
    }
}
