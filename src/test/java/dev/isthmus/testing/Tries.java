package dev.isthmus.testing;

import java.util.List;
import java.util.SplittableRandom;
import java.util.StringJoiner;

/**
 * The fuzz suite's loop: a fixed number of tries from a fixed seed, each with its own
 * {@link SplittableRandom} derived from (seed, try number), so that any one try can be replayed
 * alone. A failing try is reported with its number, what it drew and the property that replays it.
 *
 * <p>System properties (surefire passes {@code -D} options of the Maven command line on to the
 * test JVM):
 * <ul>
 *   <li>the tries property each test names (e.g. {@code isthmus.fuzz.tries}): the number of tries,
 *       by default the CI budget the test gives;
 *   <li>{@code isthmus.fuzz.seed}: another seed than the test's own, for a run that explores
 *       other cases;
 *   <li>{@code isthmus.fuzz.replay=SEED:TRY}: only that try, from that seed (what a failure
 *       prints).
 * </ul>
 */
public final class Tries {
    public static final String SEED = "isthmus.fuzz.seed";
    public static final String REPLAY = "isthmus.fuzz.replay";

    private Tries() {}

    /** One try's body: draws its values from {@code draw}, then runs its checks. */
    @FunctionalInterface
    public interface Body {
        void run(Draw draw) throws Exception;
    }

    /** The values one try draws, each recorded by name for the failure message. */
    public static final class Draw {
        private final SplittableRandom random;
        private final StringJoiner drawn = new StringJoiner(", ");

        Draw(SplittableRandom random) {
            this.random = random;
        }

        /** An int in [min, max]. */
        public int intIn(String name, int min, int max) {
            return record(name, random.nextInt(min, max + 1));
        }

        /** Any long. */
        public long anyLong(String name) {
            return record(name, random.nextLong());
        }

        /** One of {@code values}, each equally likely. */
        public <T> T oneOf(String name, List<T> values) {
            return record(name, values.get(random.nextInt(values.size())));
        }

        /** One constant of {@code type}, each equally likely. */
        public <E extends Enum<E>> E oneOf(String name, Class<E> type) {
            return oneOf(name, List.of(type.getEnumConstants()));
        }

        private <T> T record(String name, T value) {
            drawn.add(name + " " + value);
            return value;
        }

        @Override
        public String toString() {
            return drawn.toString();
        }
    }

    /**
     * Runs {@code body} for each try, stopping at the first that fails; returns the number of
     * tries run. {@code defaultSeed} is the test's own seed, {@code triesProperty} the system
     * property that overrides {@code defaultTries}.
     */
    public static int run(String what, long defaultSeed, String triesProperty, int defaultTries, Body body) {
        long seed = Long.getLong(SEED, defaultSeed);
        int first = 0, tries = intProperty(triesProperty, defaultTries);
        String replay = System.getProperty(REPLAY, "").strip();
        if (!replay.isEmpty()) {
            int colon = replay.indexOf(':');
            if (colon < 0) throw new IllegalArgumentException(REPLAY + " must be SEED:TRY, not " + replay);
            seed = Long.parseLong(replay.substring(0, colon).strip());
            first = Integer.parseInt(replay.substring(colon + 1).strip());
            tries = first + 1;
        }
        for (int t = first; t < tries; t++) {
            Draw draw = new Draw(new SplittableRandom(mix(seed, t)));
            try {
                body.run(draw);
            } catch (Throwable failure) {
                throw new AssertionError(String.format("%s, try %d of seed %d (replay it with -D%s=%d:%d): drew %s: %s", what, t, seed,
                        REPLAY, seed, t, draw, failure.getMessage()), failure);
            }
        }
        return tries - first;
    }

    private static int intProperty(String name, int fallback) {
        String value = System.getProperty(name, "").strip().replace("_", "");
        if (value.isEmpty()) return fallback;
        int n = Integer.parseInt(value);
        if (n < 1) throw new IllegalArgumentException(name + " must be at least 1, not " + value);
        return n;
    }

    /** The seed of try {@code t}: (seed, t) through a 64-bit finalizer, so neighbouring tries share nothing. */
    private static long mix(long seed, int t) {
        long z = seed * 0x9E3779B97F4A7C15L + t;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
