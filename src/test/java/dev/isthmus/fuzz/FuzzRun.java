package dev.isthmus.fuzz;

import static org.junit.jupiter.api.Assertions.fail;

import dev.isthmus.backend.Backend;
import dev.isthmus.cuda.CudaException;
import dev.isthmus.testing.Tries;
import java.util.concurrent.atomic.AtomicLong;

/** Runs one fuzzed call and holds it to the contract; counts what it saw, for the figures. */
final class FuzzRun {
    private FuzzRun() {}

    /** Per backend: bad calls made (all refused, or the run failed) and valid calls made (all completed). */
    record Tally(AtomicLong refused, AtomicLong completed) {
        Tally() {
            this(new AtomicLong(), new AtomicLong());
        }

        String summary(String what) {
            return String.format("[fuzz] %s: %d bad calls, all refused with IllegalArgumentException; %d valid calls (empty ones among them), "
                    + "all completed", what, refused.get(), completed.get());
        }
    }

    /** One try: draws the case, the victim slot, the mutation and the arguments' seed, then {@link #check}s the call. */
    static void check(Backend backend, Tries.Draw draw, Tally tally) {
        ApiCases.Case c = draw.oneOf("case", ApiCases.ALL);
        int victim = draw.intIn("victim", 0, 8);
        Mutation mutation = draw.oneOf("mutation", Mutation.class);
        long seed = draw.anyLong("seed");
        check(backend, c, victim, mutation, seed, tally);
    }

    /**
     * The contract: a call with a corrupted argument throws IllegalArgumentException; a call
     * without one completes; nothing ever throws another type (CudaException only for a device
     * failure, which a valid call here never causes).
     */
    static void check(Backend backend, ApiCases.Case c, int victim, Mutation mutation, long seed, Tally tally) {
        Throwable thrown = null;
        String corrupted;
        boolean mustRefuse;
        try (Args args = new Args(backend, seed, victim, mutation)) {
            try {
                c.call().accept(args);
                backend.synchronize(); // a failure queued on the device surfaces here
            } catch (Throwable t) {
                thrown = t;
            }
            corrupted = args.corrupted;
            mustRefuse = args.mustRefuse;
        }
        String call = c + " on " + backend + ", corrupting " + corrupted + " (victim " + victim + ", " + mutation + ", seed " + seed + ")";
        if (thrown != null && !(thrown instanceof IllegalArgumentException) && !(thrown instanceof CudaException))
            fail(call + " threw " + thrown, thrown);
        if (mustRefuse && !(thrown instanceof IllegalArgumentException)) fail(call + " was accepted" + (thrown == null ? "" : ": " + thrown));
        if (!mustRefuse && thrown != null) fail(call + " is valid but threw " + thrown, thrown);
        (mustRefuse ? tally.refused() : tally.completed()).incrementAndGet();
    }
}
