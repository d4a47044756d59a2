package dev.isthmus.fuzz;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.testing.SkipWithoutGpu;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.Tag;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AddLifecycleHook;
import net.jqwik.api.lifecycle.AfterContainer;

/** {@link ApiFuzzTest} on the CUDA backend: on a GPU, or in CI under the host emulation (tagged "gpu"). */
@Tag("gpu")
@AddLifecycleHook(SkipWithoutGpu.class)
class ApiFuzzGpuTest {
    private static final FuzzRun.Tally TALLY = new FuzzRun.Tally();
    private static CudaBackend cuda;

    @Property(seed = "1302")
    void cudaRefusesEveryBadCall(@ForAll("cases") ApiCases.Case c, @ForAll @IntRange(max = 8) int victim, @ForAll Mutation mutation,
                                 @ForAll long seed) {
        FuzzRun.check(backend(), c, victim, mutation, seed, TALLY);
    }

    private static synchronized CudaBackend backend() {
        if (cuda == null) cuda = Backend.cuda(0);
        return cuda;
    }

    @Provide
    Arbitrary<ApiCases.Case> cases() {
        return Arbitraries.of(ApiCases.ALL);
    }

    @AfterContainer
    static void figures() {
        if (cuda == null) return;
        System.out.println(TALLY.summary("cuda backend (" + cuda.describe() + ")"));
        cuda.close();
        cuda = null;
    }
}
