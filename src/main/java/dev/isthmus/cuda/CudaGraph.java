package dev.isthmus.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * A CUDA graph: the kernels and device copies that some work issued on a stream, recorded once
 * and replayed with one launch ({@code isthmus_graph_*} of isthmus.h). A replay reuses the
 * capture's pointers and arguments, so the work must read its changing inputs from device
 * buffers that stay where they are, refreshed before each {@link #launch()}.
 *
 * <p>While a capture is open, nothing on its thread may wait for the stream or copy to or from
 * the host: the CUDA backend refuses those copies with an IllegalStateException instead of
 * letting them break the capture. Under {@link HostEmulation} the emulated library records its
 * launches and replays them on the CPU, so the same code runs in CI.
 */
public final class CudaGraph implements AutoCloseable {
    private static final ThreadLocal<Boolean> CAPTURING = ThreadLocal.withInitial(() -> false);

    private final CudaStream stream;
    private MemorySegment exec;

    private CudaGraph(CudaStream stream, MemorySegment exec) {
        this.stream = stream;
        this.exec = exec;
    }

    private static final class Handle {
        static final MethodHandle BEGIN = NativeLibrary.downcall("isthmus_graph_begin_capture", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        static final MethodHandle END = NativeLibrary.downcall("isthmus_graph_end_capture", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle LAUNCH = NativeLibrary.downcall("isthmus_graph_launch", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle DESTROY = NativeLibrary.downcall("isthmus_graph_destroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
    }

    /** Whether this thread is inside {@link #capture}. */
    public static boolean capturing() {
        return CAPTURING.get();
    }

    /**
     * Runs {@code work} with {@code stream} capturing and returns the instantiated graph. The work
     * does not execute: launch the graph for that. If the work throws, the capture is ended,
     * discarded, and the exception passed on.
     */
    public static CudaGraph capture(CudaStream stream, Runnable work) {
        if (stream == null || work == null) throw new IllegalArgumentException("stream and work must not be null");
        if (capturing()) throw new IllegalStateException("a capture is already open on this thread");
        MemorySegment handle = MemorySegment.ofAddress(stream.handle());
        Cuda.setDevice(stream.ordinal());
        NativeLibrary.check(call(Handle.BEGIN, handle), "isthmus_graph_begin_capture");
        CAPTURING.set(true);
        MemorySegment exec;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            RuntimeException failure = null;
            try {
                work.run();
            } catch (RuntimeException e) {
                failure = e;
            } finally {
                CAPTURING.set(false);
            }
            int status = call(Handle.END, handle, out);
            exec = out.get(ADDRESS, 0);
            if (failure != null) {
                destroy(exec);
                throw failure;
            }
            NativeLibrary.check(status, "isthmus_graph_end_capture");
        }
        return new CudaGraph(stream, exec);
    }

    /** Replays the captured work on the stream it was captured from; returns without waiting. */
    public void launch() {
        if (exec == null) throw new IllegalArgumentException("graph is closed");
        Cuda.setDevice(stream.ordinal());
        NativeLibrary.check(call(Handle.LAUNCH, exec, MemorySegment.ofAddress(stream.handle())), "isthmus_graph_launch");
    }

    @Override
    public void close() {
        if (exec == null) return;
        MemorySegment e = exec;
        exec = null;
        destroy(e);
    }

    private static void destroy(MemorySegment exec) {
        NativeLibrary.check(call(Handle.DESTROY, exec), "isthmus_graph_destroy");
    }

    private static int call(MethodHandle handle, MemorySegment... args) {
        try {
            return switch (args.length) {
                case 1 -> (int) handle.invokeExact(args[0]);
                default -> (int) handle.invokeExact(args[0], args[1]);
            };
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_graph downcall failed", t);
        }
    }
}
