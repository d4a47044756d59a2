package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** How the cuBLAS binding is chosen, and the reasons given when none is. */
class GemmCublasTest {
    @Test
    void aLoaderErrorWithoutAMessageIsNamedByItsClass() {
        assertEquals("java.lang.UnsatisfiedLinkError", GemmCublas.firstLine(new UnsatisfiedLinkError()));
        assertEquals("java.lang.UnsatisfiedLinkError", GemmCublas.firstLine(new UnsatisfiedLinkError("  ")));
        assertEquals("no libcublas.so.12", GemmCublas.firstLine(new UnsatisfiedLinkError("no libcublas.so.12\n\tat somewhere")));
    }

    @Test
    void aMissingExplicitPathIsNamedAndNothingElseIsTried(@TempDir Path dir) {
        String missing = dir.resolve("nowhere/libcublas.so.13").toString();
        GemmCublas.Probe p = GemmCublas.probe(missing, "/opt/cuda");
        assertFalse(p.available());
        assertEquals("unavailable: " + missing + " (-Disthmus.cublas.path): does not exist", p.text());
    }

    @Test
    void aFileThatIsNoLibraryIsRefusedWithoutACrash(@TempDir Path dir) throws IOException {
        Path junk = Files.writeString(dir.resolve("libcublas.so.13"), "not an ELF file");
        GemmCublas.Probe p = GemmCublas.probe(junk.toString(), null);
        assertFalse(p.available());
        assertEquals("unavailable: " + junk + " (-Disthmus.cublas.path): not an ELF shared library", p.text());
    }

    @Test
    void aLibraryThatIsNotCublasIsRefusedByItsMissingSymbol() {
        Path libm = Path.of("/lib/x86_64-linux-gnu/libm.so.6");
        assumeTrue(Files.isRegularFile(libm), "no " + libm + " here");
        GemmCublas.Probe p = GemmCublas.probe(libm.toString(), null);
        assertFalse(p.available());
        assertEquals("unavailable: " + libm + " (-Disthmus.cublas.path): has no cublasCreate_v2 (not cuBLAS 12 or 13?)", p.text());
    }

    @Test
    void withoutThePropertyJCublasComesFirstThenCudaHomeThenTheLoader(@TempDir Path cudaHome) {
        GemmCublas.Probe p = GemmCublas.probe(null, cudaHome.toString());
        assumeFalse(p.available(), "a cuBLAS works here: " + p.text());
        String[] inOrder = {JCublasBinding.VERSION, cudaHome.resolve("lib64/libcublas.so.13") + " (CUDA_HOME)",
                cudaHome.resolve("lib64/libcublas.so.12") + " (CUDA_HOME)", "libcublas.so.13 (the loader's search path)",
                "libcublas.so.12 (the loader's search path)"};
        int at = -1;
        for (String attempt : inOrder) {
            int next = p.text().indexOf(attempt);
            assertTrue(next > at, "'" + attempt + "' should follow the attempts before it: " + p.text());
            at = next;
        }
    }

    @Test
    void withoutCublasTheOwnKernelSaysWhy() {
        assumeFalse(GemmCublas.available(), "a cuBLAS works here: " + GemmCublas.availability());
        assertEquals(GemmKernel.DESCRIPTION + ", because cuBLAS is " + GemmCublas.availability(), Gemm.cudaPath());
        assertTrue(GemmCublas.availability().startsWith("unavailable"), GemmCublas.availability());
    }
}
