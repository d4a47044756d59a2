package dev.isthmus.fuzz;

import dev.isthmus.backend.Backend;
import dev.isthmus.testing.Tries;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * Every public operation on the CPU backend, called with one argument corrupted (or none): see
 * {@link FuzzRun#check}. {@value #TRIES} tries from seed 1301 (the CI budget); a longer run sets
 * {@code -Disthmus.fuzz.tries=N} (see the README and {@link Tries}).
 */
class ApiFuzzTest {
    /** The CI budget of tries per backend, for at least 10,000 bad calls. */
    static final int TRIES = 24_000;
    static final String TRIES_PROPERTY = "isthmus.fuzz.tries";
    private static final FuzzRun.Tally TALLY = new FuzzRun.Tally();

    @Test
    void cpuRefusesEveryBadCall() {
        Backend cpu = Backend.cpu();
        Tries.run("cpu backend", 1301, TRIES_PROPERTY, TRIES, draw -> FuzzRun.check(cpu, draw, TALLY));
    }

    @AfterAll
    static void figures() {
        System.out.println(TALLY.summary("cpu backend"));
    }
}
