package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The reason given when cuBLAS does not load, whatever the loader's exception carries. */
class GemmCublasTest {
    @Test
    void aLoaderErrorWithoutAMessageIsNamedByItsClass() {
        assertEquals("java.lang.UnsatisfiedLinkError", GemmCublas.firstLine(new UnsatisfiedLinkError()));
        assertEquals("java.lang.UnsatisfiedLinkError", GemmCublas.firstLine(new UnsatisfiedLinkError("  ")));
        assertEquals("no libcublas.so.12", GemmCublas.firstLine(new UnsatisfiedLinkError("no libcublas.so.12\n\tat somewhere")));
    }
}
