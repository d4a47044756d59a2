package dev.isthmus.fuzz;

import dev.isthmus.backend.Backend;
import net.jqwik.api.Arbitraries;
import net.jqwik.api.Arbitrary;
import net.jqwik.api.ForAll;
import net.jqwik.api.Property;
import net.jqwik.api.Provide;
import net.jqwik.api.constraints.IntRange;
import net.jqwik.api.lifecycle.AfterContainer;

/**
 * Every public operation on the CPU backend, called with one argument corrupted (or none): see
 * {@link FuzzRun#check}. The tries come from jqwik.tries.default (junit-platform.properties: the
 * CI budget; the README gives the longer run), the seed is fixed.
 */
class ApiFuzzTest {
    private static final FuzzRun.Tally TALLY = new FuzzRun.Tally();

    @Property(seed = "1301")
    void cpuRefusesEveryBadCall(@ForAll("cases") ApiCases.Case c, @ForAll @IntRange(max = 8) int victim, @ForAll Mutation mutation,
                                @ForAll long seed) {
        FuzzRun.check(Backend.cpu(), c, victim, mutation, seed, TALLY);
    }

    @Provide
    Arbitrary<ApiCases.Case> cases() {
        return Arbitraries.of(ApiCases.ALL);
    }

    @AfterContainer
    static void figures() {
        System.out.println(TALLY.summary("cpu backend"));
    }
}
