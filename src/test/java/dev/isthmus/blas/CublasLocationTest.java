package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where the FFM binding looks for libcublas, and in which order. */
class CublasLocationTest {
    private static List<String> libraries(String property, String cudaHome) {
        return CublasLocation.candidates(property, cudaHome).stream().map(CublasLocation.Candidate::toString).toList();
    }

    @Test
    void withNothingSetTheLoaderIsAskedForTheNewestFirst() {
        assertEquals(List.of("libcublas.so.13 (the loader's search path)", "libcublas.so.12 (the loader's search path)"),
                libraries(null, " "));
    }

    @Test
    void cudaHomeComesBeforeTheLoader() {
        assertEquals(List.of("/opt/cuda/lib64/libcublas.so.13 (CUDA_HOME)", "/opt/cuda/lib64/libcublas.so.12 (CUDA_HOME)",
                        "libcublas.so.13 (the loader's search path)", "libcublas.so.12 (the loader's search path)"),
                libraries("", "/opt/cuda"));
    }

    @Test
    void thePropertyIsTheOnlyPlaceLookedAt() {
        assertEquals(List.of("/somewhere/libcublas.so.13 (-Disthmus.cublas.path)"), libraries("/somewhere/libcublas.so.13", "/opt/cuda"));
    }

    @Test
    void aFolderInThePropertyIsSearchedForEitherVersion(@TempDir Path dir) throws IOException {
        assertEquals(List.of(dir.resolve("libcublas.so.13") + " (-Disthmus.cublas.path)"), libraries(dir.toString(), null));
        Files.createFile(dir.resolve("libcublas.so.12"));
        assertEquals(List.of(dir.resolve("libcublas.so.12") + " (-Disthmus.cublas.path)"), libraries(dir.toString(), null));
        Files.createFile(dir.resolve("libcublas.so.13"));
        assertEquals(List.of(dir.resolve("libcublas.so.13") + " (-Disthmus.cublas.path)"), libraries(dir.toString(), null));
    }
}
