package dev.isthmus.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.Tensor;

/** The GPU tests' one comparison: a result on the backend's device against a host reference. */
public final class DeviceAssert {
    private DeviceAssert() {}

    /** Copies {@code actual} to the host and asserts its relative error is within its dtype's bound. */
    public static void assertClose(String what, Backend backend, Tensor actual, Tensor expected) {
        assertClose(what, backend, actual, expected, Compare.boundFor(actual.dtype()));
    }

    /** Copies {@code actual} to the host and asserts ||actual - expected|| / ||expected|| <= bound. */
    public static void assertClose(String what, Backend backend, Tensor actual, Tensor expected, double bound) {
        try (Tensor host = backend.toHost(actual)) {
            Compare.Result result = Compare.check(what, host, expected, bound);
            assertTrue(result.withinBound(), result.toString());
        }
    }
}
