package dev.isthmus.blas;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * The split-K workspace of the project's tensor-core GEMMs (the dense {@link Gemm} own kernel and the
 * MoE expert GEMMs): with it a decode-sized product (at most 64 rows or routed pairs) cuts K
 * across blocks so that its weights stream through every SM, and the last block of each tile adds
 * the fp32 partial sums in a fixed order (bitwise reproducible). Without it (null) the same kernel
 * runs unsplit. Allocate one per model or layer workspace, not per call: it holds arrival
 * counters that are zeroed here once and that each launch leaves at zero (CUDA-graph safe). One
 * workspace serves launches that follow each other on one stream, not concurrent ones. On the CPU
 * it is empty.
 */
public final class GemmWorkspace implements AutoCloseable {
    private static final class Handle {
        // int isthmus_gemm_workspace_bytes(int64_t *bytes)
        static final MethodHandle BYTES = NativeLibrary.downcall("isthmus_gemm_workspace_bytes",
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
    }

    private final Tensor buffer; // null on the CPU

    private GemmWorkspace(Tensor buffer) {
        this.buffer = buffer;
    }

    /** The workspace that lets every decode-sized GEMM on this backend's device split as far as it would. */
    public static GemmWorkspace allocate(Backend backend) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        return switch (backend) {
            case CpuBackend cpu -> new GemmWorkspace(null);
            case CudaBackend cuda -> {
                long words = Math.ceilDiv(bytes(cuda), Integer.BYTES);
                Tensor t = cuda.allocate(DType.I32, words);
                try (Tensor zeros = Tensor.allocateHost(DType.I32, words)) {
                    cuda.copy(t, zeros);
                } catch (RuntimeException e) {
                    t.close();
                    throw e;
                }
                yield new GemmWorkspace(t);
            }
        };
    }

    private static long bytes(CudaBackend cuda) {
        cuda.prepareLaunch(); // the device current for this thread
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_LONG);
            int status;
            try {
                status = (int) Handle.BYTES.invokeExact(out);
            } catch (Throwable t) {
                throw new IllegalStateException("isthmus_gemm_workspace_bytes downcall failed", t);
            }
            NativeLibrary.check(status, "isthmus_gemm_workspace_bytes");
            return out.get(ValueLayout.JAVA_LONG, 0);
        }
    }

    /** The device buffer, or null (CPU). */
    public Tensor buffer() {
        return buffer;
    }

    /** Checks that this workspace may serve a launch on {@code backend}. */
    public void checkOn(Backend backend, String name) {
        if (buffer != null && (buffer.isClosed() || !buffer.device().equals(backend.device())))
            throw new IllegalArgumentException(name + " is closed or on another device than " + backend.device());
    }

    /** The pointer argument of a launch: NULL for none. */
    public static MemorySegment pointer(GemmWorkspace ws) {
        return ws == null || ws.buffer == null ? MemorySegment.NULL : NativeLibrary.pointer(ws.buffer);
    }

    /** The size argument of a launch: 0 for none. */
    public static long byteSize(GemmWorkspace ws) {
        return ws == null || ws.buffer == null ? 0 : ws.buffer.byteSize();
    }

    @Override
    public void close() {
        if (buffer != null) buffer.close();
    }
}
