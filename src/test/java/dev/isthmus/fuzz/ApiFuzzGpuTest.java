package dev.isthmus.fuzz;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.testing.GpuTest;
import dev.isthmus.testing.Tries;
import org.junit.jupiter.api.AfterAll;

/** {@link ApiFuzzTest} on the CUDA backend: on a GPU, or in CI under the host emulation (tagged "gpu"). */
class ApiFuzzGpuTest {
    private static final FuzzRun.Tally TALLY = new FuzzRun.Tally();
    private static CudaBackend cuda;

    @GpuTest
    void cudaRefusesEveryBadCall() {
        cuda = Backend.cuda(0);
        Tries.run("cuda backend", 1302, ApiFuzzTest.TRIES_PROPERTY, ApiFuzzTest.TRIES, draw -> FuzzRun.check(cuda, draw, TALLY));
    }

    @AfterAll
    static void figures() {
        if (cuda == null) return;
        System.out.println(TALLY.summary("cuda backend (" + cuda.describe() + ")"));
        cuda.close();
        cuda = null;
    }
}
