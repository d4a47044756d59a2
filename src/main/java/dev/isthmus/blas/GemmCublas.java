package dev.isthmus.blas;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * GEMM through cuBLAS (cublasGemmEx, fp32 compute), bound by the first of these that works:
 * <ol>
 *   <li>where {@code -D}{@value CublasLocation#PATH_PROPERTY} is set, that library through FFM
 *       and nothing else (an explicit choice is honoured or reported, never replaced);
 *   <li>JCublas 12.6, where its libcublas.so.12 (CUDA 12) loads;
 *   <li>libcublas.so.13, then .so.12, through FFM from CUDA_HOME, then from the loader's search
 *       path ({@link CublasLocation}).
 * </ol>
 * "Works" includes making one handle on the current device, so that a cuBLAS this driver cannot
 * run (or a machine without a driver) falls through to the next, and in the end to the own
 * kernel. Under the host emulation none is tried. The choice is made once, on first use, and
 * {@link #availability()} says which and why.
 */
final class GemmCublas {
    private GemmCublas() {}

    /** The binding chosen, or null with {@code text} saying why there is none. */
    record Probe(CublasBinding binding, String text) {
        boolean available() {
            return binding != null;
        }
    }

    private static volatile Probe probe;

    private static Probe probe() {
        Probe p = probe;
        if (p == null) {
            probe = p = HostEmulation.enabled() ? new Probe(null, "unavailable under host emulation: cuBLAS needs a GPU")
                    : probe(System.getProperty(CublasLocation.PATH_PROPERTY), System.getenv("CUDA_HOME"));
        }
        return p;
    }

    /** The binding this machine offers for this property value and CUDA_HOME; never throws. */
    static Probe probe(String property, String cudaHome) {
        List<String> failures = new ArrayList<>();
        if (property == null || property.isBlank()) {
            try {
                JCublasBinding jcublas = JCublasBinding.load();
                String trial = jcublas.trial();
                if (trial.isEmpty()) return new Probe(jcublas, jcublas.description());
                failures.add(JCublasBinding.VERSION + ": " + trial);
            } catch (LinkageError | RuntimeException e) {
                failures.add(JCublasBinding.VERSION + " could not load libcublas.so.12 (CUDA 12 cuBLAS): " + firstLine(e));
            }
        }
        for (CublasLocation.Candidate candidate : CublasLocation.candidates(property, cudaHome)) {
            try {
                CublasFfm ffm = CublasFfm.open(candidate);
                String trial = ffm.trial();
                if (trial.isEmpty())
                    return new Probe(ffm, ffm.description() + (failures.isEmpty() ? "" : "; not JCublas: " + failures.getFirst()));
                failures.add("cuBLAS " + ffm.version() + " at " + candidate + ": " + trial);
            } catch (CublasFfm.Unusable e) {
                failures.add(e.getMessage());
            }
        }
        return new Probe(null, "unavailable: " + String.join("; ", failures));
    }

    /** Which cuBLAS GEMMs run through and how it is bound, or "unavailable: " and why. */
    static String availability() {
        return probe().text();
    }

    static boolean available() {
        return probe().available();
    }

    /** The first line of the throwable's message, or its class name where it has none (JCuda throws some without one). */
    static String firstLine(Throwable e) {
        String message = e.getMessage();
        return message == null || message.isBlank() ? e.getClass().getName() : message.lines().findFirst().orElseThrow();
    }

    /** Arguments checked by Gemm; k > 0 (cuBLAS wants operands with an address). */
    static void gemm(CudaBackend backend, Tensor c, Tensor a, boolean transposeA, Tensor b, boolean transposeB,
                     float alpha, float beta, int m, int n, int k) {
        Probe p = probe();
        if (!p.available()) throw new IllegalStateException("cuBLAS is " + p.text());
        backend.prepareLaunch();
        // cuBLAS is column-major. A row-major (R, C) matrix is the column-major (C, R) one, so the
        // row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T.
        p.binding().gemmEx(backend, transposeB, transposeA, n, m, k, alpha, b, (int) b.dim(1), a, (int) a.dim(1), beta, c, n);
    }
}
