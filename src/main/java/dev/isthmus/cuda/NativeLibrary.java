package dev.isthmus.cuda;

import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Optional;

/**
 * Finds and loads libisthmus.so once, and makes the FFM downcall handles of native/isthmus.h.
 *
 * <p>Where the library comes from, first match wins:
 * <ol>
 *   <li>the system property {@value #PATH_PROPERTY} or the environment variable {@value #PATH_ENV}
 *       (a file, or a directory holding libisthmus.so);
 *   <li>the copy inside the jar, at {@value #RESOURCE} (extracted to a temporary file).
 * </ol>
 * Loading never throws: when it fails, {@link #isLoaded()} is false and {@link #loadError()}
 * says why; a downcall then throws a {@link CudaException} with that reason.
 */
public final class NativeLibrary {
    public static final String PATH_PROPERTY = "isthmus.library.path";
    public static final String PATH_ENV = "ISTHMUS_LIBRARY_PATH";
    static final String RESOURCE = "/native/linux-x86_64/libisthmus.so";
    /** The ABI this Java code was written against (ISTHMUS_ABI_VERSION in isthmus.h). */
    public static final int ABI_VERSION = 6;

    /** isthmus_status codes. */
    static final int OK = 0, INVALID_ARGUMENT = 1, CUDA_ERROR = 2, UNSUPPORTED = 3;

    private record Loaded(SymbolLookup lookup, Path path, String error) {}

    private static final Linker LINKER = Linker.nativeLinker(); // before LIBRARY: load() uses it
    private static final Loaded LIBRARY = load();

    private NativeLibrary() {}

    public static boolean isLoaded() {
        return LIBRARY.lookup != null;
    }

    /** Why the library did not load ("" when it did). */
    public static String loadError() {
        return LIBRARY.error;
    }

    /** The file the library was loaded from. */
    public static Optional<Path> path() {
        return Optional.ofNullable(LIBRARY.path);
    }

    /** Throws a CudaException explaining why, if the library is not loaded. */
    public static void requireLoaded() {
        if (!isLoaded()) throw new CudaException("libisthmus.so is not available: " + LIBRARY.error, "isthmusLibraryMissing");
    }

    /** A downcall handle for {@code symbol} of isthmus.h. */
    public static MethodHandle downcall(String symbol, FunctionDescriptor descriptor) {
        requireLoaded();
        MemorySegment address = LIBRARY.lookup.find(symbol)
                .orElseThrow(() -> new CudaException("libisthmus.so has no symbol " + symbol + " (stale library?)", "isthmusSymbolMissing"));
        return LINKER.downcallHandle(address, descriptor);
    }

    /**
     * Turns an isthmus_status into an exception carrying isthmus_last_error(). Java checks every
     * argument first, so INVALID_ARGUMENT here means a check is missing on the Java side.
     */
    public static void check(int status, String operation) {
        if (status == OK) return;
        String message = operation + ": " + Calls.lastError();
        switch (status) {
            case INVALID_ARGUMENT -> throw new IllegalArgumentException(message);
            case UNSUPPORTED -> throw new UnsupportedOperationException(message);
            default -> throw new CudaException(message, errorNameIn(message));
        }
    }

    /** A tensor's first element as a pointer argument; NULL for an absent (null) tensor. */
    public static MemorySegment pointer(Tensor t) {
        return t == null ? MemorySegment.NULL : MemorySegment.ofAddress(t.address());
    }

    // ---- library-wide calls of isthmus.h ---------------------------------------------------------

    public static String version() {
        return Calls.string(Calls.VERSION);
    }

    public static String cudaArchitectures() {
        return Calls.string(Calls.ARCHITECTURES);
    }

    /** CUDA runtime version the library was built with, as 1000 * major + 10 * minor. */
    public static int runtimeVersion() {
        return Calls.integer(Calls.RUNTIME_VERSION);
    }

    /** The driver's CUDA version, 0 without a driver. */
    public static int driverVersion() {
        return Calls.integer(Calls.DRIVER_VERSION);
    }

    /** Devices the library's CUDA runtime sees; a CudaException (with the CUDA text) without a driver. */
    public static int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            int status = (int) Calls.DEVICE_COUNT.invokeExact(count);
            check(status, "isthmus_device_count");
            return count.get(ValueLayout.JAVA_INT, 0);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Makes {@code ordinal} current for this thread in the library's own (static) CUDA runtime. */
    public static void setDevice(int ordinal) {
        try {
            check((int) Calls.SET_DEVICE.invokeExact(ordinal), "isthmus_set_device");
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Properties of device {@code ordinal}, read by the library's CUDA runtime. */
    public static DeviceProperties deviceProperties(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment props = arena.allocate(DeviceProperties.LAYOUT);
            int status = (int) Calls.DEVICE_PROPERTIES.invokeExact(props, ordinal);
            check(status, "isthmus_get_device_properties");
            return DeviceProperties.read(props, ordinal);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /** Handles of the library-wide functions, made on first use (after the library is known loaded). */
    private static final class Calls {
        static final MethodHandle VERSION = downcall("isthmus_version", FunctionDescriptor.of(ValueLayout.ADDRESS));
        static final MethodHandle ARCHITECTURES = downcall("isthmus_cuda_architectures", FunctionDescriptor.of(ValueLayout.ADDRESS));
        static final MethodHandle RUNTIME_VERSION = downcall("isthmus_runtime_version", FunctionDescriptor.of(ValueLayout.JAVA_INT));
        static final MethodHandle DRIVER_VERSION = downcall("isthmus_driver_version", FunctionDescriptor.of(ValueLayout.JAVA_INT));
        static final MethodHandle LAST_ERROR = downcall("isthmus_last_error", FunctionDescriptor.of(ValueLayout.ADDRESS));
        static final MethodHandle DEVICE_COUNT = downcall("isthmus_device_count",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        static final MethodHandle DEVICE_PROPERTIES = downcall("isthmus_get_device_properties",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

        static final MethodHandle SET_DEVICE = downcall("isthmus_set_device",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));

        static String lastError() {
            return string(LAST_ERROR);
        }

        static String string(MethodHandle function) {
            try {
                MemorySegment s = (MemorySegment) function.invokeExact();
                return s.reinterpret(4096).getString(0);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        static int integer(MethodHandle function) {
            try {
                return (int) function.invokeExact();
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    private static String errorNameIn(String message) {
        for (String word : message.split("[^A-Za-z0-9]+")) if (word.startsWith("cudaError")) return word;
        return "isthmusError";
    }

    // ---- loading ---------------------------------------------------------------------------------

    private static Loaded load() {
        Path path;
        try {
            path = locate();
        } catch (IOException | RuntimeException e) {
            return new Loaded(null, null, "could not locate libisthmus.so: " + e.getMessage());
        }
        if (path == null)
            return new Loaded(null, null, "libisthmus.so is not inside the jar (it was built without nvcc) and neither -D"
                    + PATH_PROPERTY + " nor " + PATH_ENV + " is set");
        try {
            SymbolLookup lookup = SymbolLookup.libraryLookup(path, Arena.global());
            MethodHandle abi = LINKER.downcallHandle(lookup.find("isthmus_abi_version").orElseThrow(
                    () -> new IllegalStateException("no isthmus_abi_version symbol")), FunctionDescriptor.of(ValueLayout.JAVA_INT));
            int abiVersion = (int) abi.invokeExact();
            if (abiVersion != ABI_VERSION)
                return new Loaded(null, path, path + " has ABI version " + abiVersion + ", this code needs " + ABI_VERSION);
            return new Loaded(lookup, path, "");
        } catch (Throwable t) {
            return new Loaded(null, path, "loading " + path + " failed: " + t.getMessage());
        }
    }

    private static Path locate() throws IOException {
        String explicit = System.getProperty(PATH_PROPERTY);
        if (explicit == null || explicit.isBlank()) explicit = System.getenv(PATH_ENV);
        if (explicit != null && !explicit.isBlank()) {
            Path p = Path.of(explicit);
            if (Files.isDirectory(p)) p = p.resolve("libisthmus.so");
            if (!Files.isRegularFile(p)) throw new IOException(p + " (from " + PATH_PROPERTY + "/" + PATH_ENV + ") does not exist");
            return p.toAbsolutePath();
        }
        URL resource = NativeLibrary.class.getResource(RESOURCE);
        if (resource == null) return null;
        if ("file".equals(resource.getProtocol())) {
            try {
                return Path.of(resource.toURI());
            } catch (URISyntaxException e) {
                throw new IOException(e);
            }
        }
        Path extracted = Files.createTempFile("libisthmus-", ".so");
        extracted.toFile().deleteOnExit();
        try (InputStream in = resource.openStream()) {
            Files.copy(in, extracted, StandardCopyOption.REPLACE_EXISTING);
        }
        return extracted;
    }
}
