package dev.isthmus.blas;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where the FFM binding of cuBLAS looks for libcublas, in this order (the first that loads and
 * makes a handle wins):
 * <ol>
 *   <li>the system property {@value #PATH_PROPERTY}: a file, or a folder holding libcublas.so.13
 *       or libcublas.so.12. When set it is the only place looked at, so that a wrong path is
 *       reported rather than hidden by another cuBLAS;
 *   <li>{@code $CUDA_HOME/lib64}: libcublas.so.13, then libcublas.so.12;
 *   <li>the same names through the dynamic loader's usual search (LD_LIBRARY_PATH, ld.so.cache,
 *       the system folders), as dlopen finds them.
 * </ol>
 * A file is opened by its absolute path, so its own RUNPATH ($ORIGIN in NVIDIA's wheels and
 * toolkits) finds libcublasLt beside it.
 */
final class CublasLocation {
    private CublasLocation() {}

    static final String PATH_PROPERTY = "isthmus.cublas.path";
    /** Newest first: the CUDA 13 library, then the CUDA 12 one (same ABI for the calls bound here). */
    static final List<String> NAMES = List.of("libcublas.so.13", "libcublas.so.12");

    /**
     * One place to try. {@code library} is an absolute path when {@code isFile}, else a bare name
     * for the dynamic loader; {@code source} says where it came from, for the messages.
     */
    record Candidate(String library, boolean isFile, String source) {
        @Override
        public String toString() {
            return library + " (" + source + ")";
        }
    }

    /** The places to try for this property value and CUDA_HOME (either null or blank when unset). */
    static List<Candidate> candidates(String property, String cudaHome) {
        if (!blank(property)) return List.of(new Candidate(explicitFile(Path.of(property.trim())), true, "-D" + PATH_PROPERTY));
        List<Candidate> out = new ArrayList<>();
        if (!blank(cudaHome))
            for (String name : NAMES)
                out.add(new Candidate(Path.of(cudaHome.trim(), "lib64", name).toAbsolutePath().toString(), true, "CUDA_HOME"));
        for (String name : NAMES) out.add(new Candidate(name, false, "the loader's search path"));
        return out;
    }

    /** The property's file; for a folder, the first of {@link #NAMES} inside it (the first name where none is). */
    private static String explicitFile(Path p) {
        Path file = p;
        if (Files.isDirectory(p)) {
            file = p.resolve(NAMES.getFirst());
            for (String name : NAMES)
                if (Files.isRegularFile(p.resolve(name))) {
                    file = p.resolve(name);
                    break;
                }
        }
        return file.toAbsolutePath().toString();
    }

    private static boolean blank(String s) {
        return s == null || s.isBlank();
    }
}
