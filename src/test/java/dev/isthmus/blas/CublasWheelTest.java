package dev.isthmus.blas;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.HostEmulation;
import org.junit.jupiter.api.Test;

/**
 * A real libcublas through FFM: runs only where {@code -Disthmus.cublas.path} names one (the GPU
 * run sets it to PyTorch's copy; on a build machine, NVIDIA's nvidia-cublas wheel unpacked).
 * Without a usable GPU, making a handle must fail with cuBLAS's status, not crash.
 */
class CublasWheelTest {
    private static String path() {
        String path = System.getProperty(CublasLocation.PATH_PROPERTY);
        assumeTrue(path != null && !path.isBlank(), "-D" + CublasLocation.PATH_PROPERTY + " names no libcublas");
        return path;
    }

    private static boolean realGpu() {
        return !HostEmulation.enabled() && Cuda.availability().available();
    }

    @Test
    void theLibraryBindsAndReportsItsVersion() throws CublasFfm.Unusable {
        CublasFfm ffm = CublasFfm.open(CublasLocation.candidates(path(), null).getFirst());
        assertTrue(ffm.version().matches("1[23]\\.\\d+\\.\\d+"), ffm.version());
        assertTrue(ffm.description().startsWith("cuBLAS " + ffm.version() + " through FFM at "), ffm.description());
    }

    @Test
    void aHandleIsMadeOnAGpuAndRefusedCleanlyWithout() throws CublasFfm.Unusable {
        CublasFfm ffm = CublasFfm.open(CublasLocation.candidates(path(), null).getFirst());
        String trial = ffm.trial();
        if (realGpu()) assertEquals("", trial);
        else assertTrue(trial.startsWith("cublasCreate_v2: CUBLAS_STATUS_NOT_INITIALIZED ("), trial);
    }

    @Test
    void theProbeChoosesItExactlyWhereAGpuIsUsable() {
        GemmCublas.Probe p = GemmCublas.probe(path(), null);
        assertEquals(realGpu(), p.available(), p.text());
        assertTrue(p.text().contains(" (-Disthmus.cublas.path)"), p.text());
    }
}
