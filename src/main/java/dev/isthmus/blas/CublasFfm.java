package dev.isthmus.blas;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaException;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * libcublas bound directly through FFM, for machines where JCublas's libcublas.so.12 is absent
 * (CUDA 13). The calls bound here have the same C signature in cuBLAS 12 and 13, so either
 * loads. cuBLAS links its CUDA runtime statically and works in the device's primary context,
 * the same one JCuda and libisthmus use, so our device pointers and streams are valid in it.
 * Loaded libraries stay loaded for the life of the JVM.
 */
final class CublasFfm implements CublasBinding {
    // cublas_api.h and library_types.h (the values are the same in CUDA 12 and 13)
    static final int STATUS_SUCCESS = 0;
    static final int OP_N = 0, OP_T = 1;
    static final int COMPUTE_32F = 68; // cublasComputeType_t CUBLAS_COMPUTE_32F: fp32 products and sums, no TF32
    static final int GEMM_DEFAULT = -1; // cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT
    static final int R_32F = 0, R_16F = 2, R_16BF = 14; // cudaDataType_t
    private static final int MAJOR_VERSION = 0, MINOR_VERSION = 1, PATCH_LEVEL = 2; // libraryPropertyType_t

    private static final Linker LINKER = Linker.nativeLinker();

    private final CublasLocation.Candidate where;
    private final String version;
    private final MethodHandle create, destroy, setStream, gemmEx, statusName, statusString;
    private final BackendHandles<MemorySegment> handles = new BackendHandles<>(backend -> {
        MemorySegment h = createHandle();
        check(callSetStream(h, MemorySegment.ofAddress(backend.stream().handle())), "cublasSetStream_v2");
        return h;
    }, h -> check(callDestroy(h), "cublasDestroy_v2"));

    /** Thrown by {@link #open} with why the candidate cannot be used. */
    static final class Unusable extends Exception {
        private static final long serialVersionUID = 1L;

        Unusable(String message) {
            super(message);
        }
    }

    private CublasFfm(CublasLocation.Candidate where, SymbolLookup lookup) throws Unusable {
        this.where = where;
        create = bind(lookup, "cublasCreate_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = bind(lookup, "cublasDestroy_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        setStream = bind(lookup, "cublasSetStream_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        // cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, Atype, lda, B, Btype, ldb, beta, C, Ctype, ldc, computeType, algo)
        gemmEx = bind(lookup, "cublasGemmEx", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT));
        statusName = bind(lookup, "cublasGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        statusString = bind(lookup, "cublasGetStatusString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        MethodHandle property = bind(lookup, "cublasGetProperty", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        version = property(property, MAJOR_VERSION) + "." + property(property, MINOR_VERSION) + "." + property(property, PATCH_LEVEL);
    }

    /** Loads and binds the candidate; never crashes on a missing or foreign file, and says why in {@link Unusable}. */
    static CublasFfm open(CublasLocation.Candidate where) throws Unusable {
        if (where.isFile() && !Files.isRegularFile(Path.of(where.library())))
            throw new Unusable(where + ": does not exist");
        // dlopen would reject any other file too, but HotSpot first warns about its stack guard.
        if (where.isFile() && !isElf(Path.of(where.library()))) throw new Unusable(where + ": not an ELF shared library");
        SymbolLookup lookup;
        try {
            lookup = where.isFile() ? SymbolLookup.libraryLookup(Path.of(where.library()), Arena.global())
                                    : SymbolLookup.libraryLookup(where.library(), Arena.global());
        } catch (IllegalArgumentException e) {
            throw new Unusable(where + ": " + (where.isFile()
                    ? "dlopen failed (not an x86-64 shared library, or libcublasLt of its version is missing beside it)"
                    : "not found"));
        }
        try {
            return new CublasFfm(where, lookup);
        } catch (Unusable e) {
            throw new Unusable(where + ": " + e.getMessage());
        }
    }

    private static boolean isElf(Path file) throws Unusable {
        byte[] magic = new byte[4];
        try (InputStream in = Files.newInputStream(file)) {
            return in.readNBytes(magic, 0, 4) == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
        } catch (IOException e) {
            throw new Unusable(file + ": cannot be read: " + e.getMessage());
        }
    }

    private static MethodHandle bind(SymbolLookup lookup, String symbol, FunctionDescriptor descriptor) throws Unusable {
        MemorySegment address = lookup.find(symbol).orElse(null);
        if (address == null) throw new Unusable("has no " + symbol + " (not cuBLAS 12 or 13?)");
        return LINKER.downcallHandle(address, descriptor);
    }

    private static int property(MethodHandle getProperty, int which) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment value = arena.allocate(JAVA_INT);
            int status = (int) getProperty.invokeExact(which, value);
            return status == STATUS_SUCCESS ? value.get(JAVA_INT, 0) : -1;
        } catch (Throwable t) {
            throw downcallFailed("cublasGetProperty", t);
        }
    }

    /** The version the library reports, e.g. "13.1.1". */
    String version() {
        return version;
    }

    @Override
    public String description() {
        return "cuBLAS " + version + " through FFM at " + where + " (cublasGemmEx, fp32 compute)";
    }

    @Override
    public String trial() {
        try {
            check(callDestroy(createHandle()), "cublasDestroy_v2");
            return "";
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    @Override
    public void gemmEx(CudaBackend backend, boolean transA, boolean transB, int m, int n, int k, float alpha,
                       Tensor a, int lda, Tensor b, int ldb, float beta, Tensor c, int ldc) {
        MemorySegment handle = handles.get(backend);
        int status;
        // cuBLAS reads alpha and beta from host memory before the call returns (the default pointer mode).
        try (Arena arena = Arena.ofConfined()) {
            status = (int) gemmEx.invokeExact(handle, transA ? OP_T : OP_N, transB ? OP_T : OP_N, m, n, k,
                    arena.allocateFrom(JAVA_FLOAT, alpha), MemorySegment.ofAddress(a.address()), dataType(a.dtype()), lda,
                    MemorySegment.ofAddress(b.address()), dataType(b.dtype()), ldb,
                    arena.allocateFrom(JAVA_FLOAT, beta), MemorySegment.ofAddress(c.address()), dataType(c.dtype()), ldc,
                    COMPUTE_32F, GEMM_DEFAULT);
        } catch (Throwable t) {
            throw downcallFailed("cublasGemmEx", t);
        }
        check(status, "cublasGemmEx");
    }

    private static int dataType(DType t) {
        return switch (t) {
            case F32 -> R_32F;
            case F16 -> R_16F;
            case BF16 -> R_16BF;
            default -> throw new IllegalArgumentException("no cuBLAS type for " + t.label());
        };
    }

    /** A new handle on the calling thread's current device. */
    private MemorySegment createHandle() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int status;
            try {
                status = (int) create.invokeExact(out);
            } catch (Throwable t) {
                throw downcallFailed("cublasCreate_v2", t);
            }
            check(status, "cublasCreate_v2");
            return out.get(ADDRESS, 0);
        }
    }

    private int callDestroy(MemorySegment handle) {
        try {
            return (int) destroy.invokeExact(handle);
        } catch (Throwable t) {
            throw downcallFailed("cublasDestroy_v2", t);
        }
    }

    private int callSetStream(MemorySegment handle, MemorySegment stream) {
        try {
            return (int) setStream.invokeExact(handle, stream);
        } catch (Throwable t) {
            throw downcallFailed("cublasSetStream_v2", t);
        }
    }

    private void check(int status, String what) {
        if (status == STATUS_SUCCESS) return;
        String name = text(statusName, status);
        throw new CudaException(what + ": " + name + " (" + text(statusString, status) + ")", name);
    }

    /** cuBLAS's name or description of a status; the bare number where it returns none. */
    private static String text(MethodHandle function, int status) {
        try {
            MemorySegment s = (MemorySegment) function.invokeExact(status);
            return s.equals(MemorySegment.NULL) ? "cuBLAS status " + status : s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw downcallFailed("cublasGetStatusName/String", t);
        }
    }

    private static IllegalStateException downcallFailed(String what, Throwable t) {
        return new IllegalStateException(what + " downcall failed", t);
    }
}
