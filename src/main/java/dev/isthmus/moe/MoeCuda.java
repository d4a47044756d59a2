package dev.isthmus.moe;

import static dev.isthmus.cuda.NativeLibrary.pointer;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/** The FFM bindings of the isthmus_moe_* launchers (native/isthmus.h). Arguments are checked by the API classes first. */
final class MoeCuda {
    private MoeCuda() {}

    private static final ValueLayout P = ValueLayout.ADDRESS;
    private static final ValueLayout I = ValueLayout.JAVA_INT;
    private static final ValueLayout L = ValueLayout.JAVA_LONG;
    private static final ValueLayout F = ValueLayout.JAVA_FLOAT;

    private static final class Handles {
        static final MethodHandle TOPK = NativeLibrary.downcall("isthmus_moe_topk",
                FunctionDescriptor.of(I, P, P, P, P, L, I, I, I, I, I, I, F, I, P));
        static final MethodHandle ALIGN = NativeLibrary.downcall("isthmus_moe_align",
                FunctionDescriptor.of(I, P, P, P, P, P, P, L, I, I, I, L, P));
        static final MethodHandle GATE_UP = NativeLibrary.downcall("isthmus_moe_gate_up",
                FunctionDescriptor.of(I, P, P, P, P, P, P, L, I, I, L, L, L, I, P, L, P));
        static final MethodHandle DOWN = NativeLibrary.downcall("isthmus_moe_down",
                FunctionDescriptor.of(I, P, P, P, P, P, P, P, L, I, L, L, L, I, P, L, P));
        static final MethodHandle GATE_UP_QUANT = NativeLibrary.downcall("isthmus_moe_gate_up_quant",
                FunctionDescriptor.of(I, P, P, P, I, L, P, P, P, L, I, I, L, L, L, I, P, L, P));
        static final MethodHandle DOWN_QUANT = NativeLibrary.downcall("isthmus_moe_down_quant",
                FunctionDescriptor.of(I, P, P, P, I, L, P, P, P, P, L, I, L, L, L, I, P, L, P));
        static final MethodHandle COMBINE = NativeLibrary.downcall("isthmus_moe_combine",
                FunctionDescriptor.of(I, P, P, P, P, P, L, I, L, I, P));
        static final MethodHandle STATS = NativeLibrary.downcall("isthmus_moe_router_stats",
                FunctionDescriptor.of(I, P, P, P, P, P, L, I, I, I, I, P));
    }

    static void topK(CudaBackend backend, Tensor weights, Tensor ids, Tensor logits, Tensor bias, RouterConfig c) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.TOPK.invokeExact(pointer(weights), pointer(ids), pointer(logits), pointer(bias), logits.dim(0),
                    c.experts(), c.topK(), c.scoring().code(), c.renormalize() ? 1 : 0, c.groups(), c.topGroups(),
                    c.routedScaling(), logits.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_topk downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_topk");
    }

    static void align(CudaBackend backend, Dispatch.Buffers out, Tensor ids, int expertCapacity) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.ALIGN.invokeExact(pointer(out.sortedPairs()), pointer(out.tileExperts()), pointer(out.paddedTotal()),
                    pointer(out.expertCounts()), pointer(out.dropped()), pointer(ids), (long) out.pairs(), out.experts(), out.tile(),
                    expertCapacity, out.sortedPairs().elementCount(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_align downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_align");
    }

    static void gateUp(CudaBackend backend, Tensor hidden, Tensor x, Tensor w13, Dispatch.Buffers r, int topK, GemmWorkspace ws) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.GATE_UP.invokeExact(pointer(hidden), pointer(x), pointer(w13), pointer(r.sortedPairs()),
                    pointer(r.tileExperts()), pointer(r.paddedTotal()), x.dim(0), topK, r.experts(), x.dim(1), hidden.dim(1),
                    r.sortedPairs().elementCount(), x.dtype().code(), GemmWorkspace.pointer(ws), GemmWorkspace.byteSize(ws), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_gate_up downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_gate_up");
    }

    static void down(CudaBackend backend, Tensor slotOut, Tensor hidden, Tensor w2, Tensor weights, Dispatch.Buffers r,
                     GemmWorkspace ws) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.DOWN.invokeExact(pointer(slotOut), pointer(hidden), pointer(w2), pointer(weights),
                    pointer(r.sortedPairs()), pointer(r.tileExperts()), pointer(r.paddedTotal()), (long) r.pairs(), r.experts(),
                    slotOut.dim(1), hidden.dim(1), r.sortedPairs().elementCount(), hidden.dtype().code(), GemmWorkspace.pointer(ws),
                    GemmWorkspace.byteSize(ws), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_down downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_down");
    }

    static void gateUpQuantized(CudaBackend backend, Tensor hidden, Tensor x, QuantizedExperts w13, Dispatch.Buffers r, int topK,
                                GemmWorkspace ws) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.GATE_UP_QUANT.invokeExact(pointer(hidden), pointer(x), pointer(w13.bytes()), w13.type().id(),
                    w13.expertBytes(), pointer(r.sortedPairs()), pointer(r.tileExperts()), pointer(r.paddedTotal()), x.dim(0), topK,
                    r.experts(), x.dim(1), hidden.dim(1), r.sortedPairs().elementCount(), x.dtype().code(), GemmWorkspace.pointer(ws),
                    GemmWorkspace.byteSize(ws), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_gate_up_quant downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_gate_up_quant");
    }

    static void downQuantized(CudaBackend backend, Tensor slotOut, Tensor hidden, QuantizedExperts w2, Tensor weights, Dispatch.Buffers r,
                              GemmWorkspace ws) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.DOWN_QUANT.invokeExact(pointer(slotOut), pointer(hidden), pointer(w2.bytes()), w2.type().id(),
                    w2.expertBytes(), pointer(weights), pointer(r.sortedPairs()), pointer(r.tileExperts()), pointer(r.paddedTotal()),
                    (long) r.pairs(), r.experts(), slotOut.dim(1), hidden.dim(1), r.sortedPairs().elementCount(),
                    hidden.dtype().code(), GemmWorkspace.pointer(ws), GemmWorkspace.byteSize(ws), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_down_quant downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_down_quant");
    }

    static void combine(CudaBackend backend, Tensor out, Tensor slotOut, Tensor dropped, Tensor shared, Tensor residual, int topK) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.COMBINE.invokeExact(pointer(out), pointer(slotOut), pointer(dropped), pointer(shared), pointer(residual),
                    out.dim(0), topK, out.dim(1), out.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_combine downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_combine");
    }

    static void routerStats(CudaBackend backend, RouterStats.Result out, Tensor logits, Tensor counts, RouterConfig c) {
        MemorySegment stream = MemorySegment.ofAddress(backend.prepareLaunch());
        int status;
        try {
            status = (int) Handles.STATS.invokeExact(pointer(out.meanProbability()), pointer(out.auxLoss()), pointer(out.zLoss()),
                    pointer(logits), pointer(counts), logits.dim(0), c.experts(), c.topK(), c.scoring().code(),
                    logits.dtype().code(), stream);
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_moe_router_stats downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_moe_router_stats");
    }
}
