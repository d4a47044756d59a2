package dev.isthmus.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import org.junit.jupiter.api.Test;

/**
 * What a machine with or without CUDA sees: the native library loads wherever it was built (CI
 * has nvcc but no driver), and without a usable device nothing crashes — the CPU is the best
 * backend and asking for CUDA is an exception carrying CUDA's own words.
 */
class CudaAvailabilityTest {
    private static final boolean BUILT_WITH_NVCC = NativeLibrary.class.getResource(NativeLibrary.RESOURCE) != null;

    @Test
    void theNativeLibraryLoadsWhereverItWasBuilt() {
        if (!BUILT_WITH_NVCC) {
            assertFalse(NativeLibrary.isLoaded());
            assertTrue(NativeLibrary.loadError().contains("without nvcc"), NativeLibrary.loadError());
            assertThrows(CudaException.class, NativeLibrary::version);
            return;
        }
        assertTrue(NativeLibrary.isLoaded(), NativeLibrary.loadError());
        assertTrue(NativeLibrary.path().isPresent());
        assertTrue(NativeLibrary.version().matches("\\d+\\.\\d+\\.\\d+"), NativeLibrary.version());
        assertTrue(NativeLibrary.cudaArchitectures().contains("sm_90"), NativeLibrary.cudaArchitectures());
        assertTrue(NativeLibrary.runtimeVersion() >= 12000, "runtime " + NativeLibrary.runtimeVersion());
    }

    @Test
    void withoutAUsableDeviceTheCpuIsBestAndCudaSaysWhy() {
        Cuda.Availability cuda = Cuda.availability();
        assumeFalse(cuda.available(), "a CUDA device is usable here");
        assertFalse(cuda.reason().isBlank());
        assertInstanceOf(CpuBackend.class, Backend.best());
        CudaException e = assertThrows(CudaException.class, () -> Backend.cuda(0));
        assertTrue(e.getMessage().contains(cuda.reason()), e.getMessage());
        if (BUILT_WITH_NVCC && NativeLibrary.driverVersion() == 0) {
            // No driver at all (the CI case): the library's own runtime reports it, by name.
            CudaException noDriver = assertThrows(CudaException.class, NativeLibrary::deviceCount);
            assertTrue(noDriver.errorName().startsWith("cudaError"), noDriver.errorName());
        }
    }

    @Test
    void withADeviceCudaIsBest() {
        assumeTrue(Cuda.availability().available(), "no usable CUDA device: " + Cuda.availability().reason());
        try (Backend best = Backend.best()) {
            assertInstanceOf(CudaBackend.class, best);
            assertEquals(0, ((CudaBackend) best).ordinal());
        }
    }
}
