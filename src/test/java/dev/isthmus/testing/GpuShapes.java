package dev.isthmus.testing;

import dev.isthmus.cuda.HostEmulation;

/**
 * Test sizes for GPU tests that also run under the host emulation, where every CUDA thread is a
 * CPU fiber and a long context costs seconds: such a test keeps its sizes for a device and names
 * smaller ones, with the same awkward edges, for the emulation.
 */
public final class GpuShapes {
    private GpuShapes() {}

    /** {@code onDevice} on a GPU (and on the CPU), {@code underEmulation} under the host emulation. */
    @SafeVarargs
    public static <T> T[] choose(T[] onDevice, T... underEmulation) {
        return HostEmulation.enabled() ? underEmulation : onDevice;
    }

    /** {@code onDevice} on a GPU (and on the CPU), {@code underEmulation} under the host emulation. */
    public static int[] choose(int[] onDevice, int... underEmulation) {
        return HostEmulation.enabled() ? underEmulation : onDevice;
    }
}
