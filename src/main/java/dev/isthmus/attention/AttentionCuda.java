package dev.isthmus.attention;

import static dev.isthmus.cuda.NativeLibrary.pointer;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/** The FFM bindings of isthmus_attention_append, isthmus_attention and isthmus_attention_merge. Checked by Attention first. */
final class AttentionCuda {
    private AttentionCuda() {}

    /** Factor 1 rescales nothing; the C side then reads none of the other three fields. */
    private static final Rope.Llama3Scaling UNSCALED = new Rope.Llama3Scaling(1f, 1f, 2f, 1);

    private static final class Handle {
        static final MethodHandle APPEND = NativeLibrary.downcall("isthmus_attention_append", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_FLOAT, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT, JAVA_INT,
                ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        static final MethodHandle ATTEND = NativeLibrary.downcall("isthmus_attention", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        static final MethodHandle MERGE = NativeLibrary.downcall("isthmus_attention_merge", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        // int isthmus_attention_blocks_per_sm(int32_t dtype, int32_t head_dim, int32_t cache_type, int32_t block_size, int32_t *blocks)
        static final MethodHandle BLOCKS_PER_SM = NativeLibrary.downcall("isthmus_attention_blocks_per_sm",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
    }

    /** The blocks of the kernel a decode step over {@code batch}'s cache takes that one SM of the device holds at once. */
    static int decodeBlocksPerSm(CudaBackend backend, KvBatch batch) {
        KvBatch.Cache cache = batch.cache();
        backend.prepareLaunch(); // the device current for this thread
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment blocks = arena.allocate(JAVA_INT);
            int status;
            try {
                status = (int) Handle.BLOCKS_PER_SM.invokeExact(cache.dtype().code(), batch.headDim(), cache.type().code(), batch.blockSize(),
                        blocks);
            } catch (Throwable t) {
                throw new IllegalStateException("isthmus_attention_blocks_per_sm downcall failed", t);
            }
            NativeLibrary.check(status, "isthmus_attention_blocks_per_sm");
            return blocks.get(JAVA_INT, 0);
        }
    }

    static void append(CudaBackend backend, KvBatch batch, Tensor q, Tensor k, Tensor v, Rope rope, Tensor positions, int qHeads) {
        long stream = backend.prepareLaunch();
        Rope.Llama3Scaling llama3 = rope == null || rope.llama3() == null ? UNSCALED : rope.llama3();
        Rope.LongRope longRope = rope == null ? null : rope.longRope();
        int status;
        try (Arena arena = Arena.ofConfined()) {
            // LongRoPE's factors go as a host array (short, then long) that the launcher copies into the launch.
            MemorySegment factors = longRope == null ? MemorySegment.NULL
                    : arena.allocateFrom(JAVA_FLOAT, concat(longRope.shortFactors(), longRope.longFactors()));
            status = (int) Handle.APPEND.invokeExact(pointer(q), pointer(batch.keys()), pointer(batch.values()), pointer(k), pointer(v),
                    pointer(batch.blockTable()), pointer(batch.cachedLengths()), pointer(batch.queryStarts()), pointer(positions),
                    batch.batchSize(), batch.totalNewTokens(), batch.maxBlocksPerSequence(), batch.numBlocks(), batch.blockSize(),
                    qHeads, batch.kvHeads(), batch.headDim(),
                    rope == null ? 0 : rope.mode(), rope == null ? 0f : rope.base(), rope == null ? 1f : rope.positionScale(),
                    llama3.factor(), llama3.lowFreqFactor(), llama3.highFreqFactor(), llama3.originalMaxPositions(),
                    factors, longRope == null ? 1 : longRope.originalMaxPositions(), longRope == null ? 1f : longRope.attentionFactor(),
                    batch.cacheType().code(), pointer(batch.keyScales()), pointer(batch.valueScales()),
                    q.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_attention_append downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_attention_append");
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static void attend(CudaBackend backend, KvBatch batch, Tensor q, Tensor out, Tensor lse, AttentionOptions options,
                       AttentionWorkspace workspace, int qHeads) {
        long stream = backend.prepareLaunch();
        boolean split = workspace != null && workspace.splits() > 1;
        int splits = split ? workspace.splits() : 1;
        int chunk = split ? workspace.chunk() : batch.kvLengthBound();
        int status;
        try {
            status = (int) Handle.ATTEND.invokeExact(pointer(out), pointer(lse),
                    pointer(split ? workspace.partialOut() : null), pointer(split ? workspace.partialLse() : null),
                    pointer(split ? workspace.splitCounts() : null), pointer(q), pointer(batch.keys()), pointer(batch.values()),
                    pointer(batch.blockTable()), pointer(batch.cachedLengths()), pointer(batch.queryStarts()),
                    batch.batchSize(), batch.totalNewTokens(), batch.maxNewTokens(), batch.maxBlocksPerSequence(), batch.numBlocks(),
                    batch.blockSize(), qHeads, batch.kvHeads(), batch.headDim(), splits, chunk,
                    options.causal() ? 1 : 0, options.scaleFor(batch.headDim()), options.windowLeft(), options.effectiveWindowRight(),
                    options.softcap(), batch.cacheType().code(), pointer(batch.keyScales()), pointer(batch.valueScales()),
                    q.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_attention downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_attention");
    }

    static void merge(CudaBackend backend, Tensor out, Tensor lse, Tensor partOuts, Tensor partLses) {
        long stream = backend.prepareLaunch();
        int headDim = (int) partOuts.dim(-1);
        long rows = out.elementCount() / headDim;
        int status;
        try {
            status = (int) Handle.MERGE.invokeExact(pointer(out), pointer(lse), pointer(partOuts), pointer(partLses),
                    (int) partOuts.dim(0), rows, headDim, out.dtype().code(), partOuts.dtype().code(), MemorySegment.ofAddress(stream));
        } catch (Throwable t) {
            throw new IllegalStateException("isthmus_attention_merge downcall failed", t);
        }
        NativeLibrary.check(status, "isthmus_attention_merge");
    }
}
