package dev.isthmus.cuda;

import jcuda.runtime.JCuda;
import jcuda.runtime.cudaError;

/**
 * The CUDA runtime as JCuda exposes it: whether there is a usable device, error checking, the
 * current device. JCuda's own exceptions stay off; every call here checks its return code and
 * throws a {@link CudaException} with the CUDA error name and text.
 */
public final class Cuda {
    private Cuda() {}

    /** Whether CUDA can be used here, and if not, why (the CUDA text, or the loading failure). */
    public record Availability(boolean available, int deviceCount, String reason) {}

    private static volatile Availability availability;

    /**
     * Checked once: JCuda loads, a driver answers, at least one device, and libisthmus.so loaded.
     * Under {@link HostEmulation} the emulated library alone answers, and the reason reads "host emulation".
     */
    public static Availability availability() {
        Availability a = availability;
        if (a == null) availability = a = probe();
        return a;
    }

    private static Availability probe() {
        if (HostEmulation.enabled()) {
            if (!HostEmulation.libraryIsEmulated())
                return new Availability(false, 0, "-D" + HostEmulation.PROPERTY + " is set but libisthmus is not the host emulation build: "
                        + (NativeLibrary.isLoaded() ? NativeLibrary.path().orElseThrow() : NativeLibrary.loadError()));
            return new Availability(true, NativeLibrary.deviceCount(), HostEmulation.DESCRIPTION);
        }
        if (HostEmulation.libraryIsEmulated())
            return new Availability(false, 0, "libisthmus is the host emulation build; it runs only with -D" + HostEmulation.PROPERTY + "=true");
        int count;
        try {
            count = deviceCount();
        } catch (CudaException e) {
            return new Availability(false, 0, e.getMessage());
        } catch (LinkageError e) {
            return new Availability(false, 0, "JCuda's native library did not load: " + e);
        }
        if (count == 0) return new Availability(false, 0, "no CUDA device found");
        if (!NativeLibrary.isLoaded()) return new Availability(false, count, "libisthmus.so is not available: " + NativeLibrary.loadError());
        return new Availability(true, count, "");
    }

    /** Number of devices; a CudaException carrying the CUDA text when there is no driver. */
    public static int deviceCount() {
        int[] count = {0};
        check(JCuda.cudaGetDeviceCount(count), "cudaGetDeviceCount");
        return count[0];
    }

    /** Makes {@code ordinal} current for this thread, in JCuda's runtime and in libisthmus's. */
    public static void setDevice(int ordinal) {
        if (!HostEmulation.enabled()) check(JCuda.cudaSetDevice(ordinal), "cudaSetDevice(" + ordinal + ")");
        NativeLibrary.setDevice(ordinal);
    }

    /** Throws a CudaException naming {@code what} if {@code result} is not cudaSuccess. */
    public static void check(int result, String what) {
        if (result == cudaError.cudaSuccess) return;
        String name = cudaError.stringFor(result);
        String text;
        try {
            text = JCuda.cudaGetErrorString(result);
        } catch (RuntimeException | LinkageError e) {
            text = "(no error text)";
        }
        JCuda.cudaGetLastError(); // clear a non-sticky error so it does not resurface later
        throw new CudaException(what + ": " + name + ": " + text, name);
    }
}
