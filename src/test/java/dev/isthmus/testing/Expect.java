package dev.isthmus.testing;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.function.Executable;

/** Assertions on rejected input: the exception type and that its message names the problem. */
public final class Expect {
    private Expect() {}

    /** {@code call} throws an IllegalArgumentException whose message contains {@code word}. */
    public static IllegalArgumentException illegalArgument(String word, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        assertTrue(e.getMessage().contains(word), "message should name " + word + ": " + e.getMessage());
        return e;
    }
}
