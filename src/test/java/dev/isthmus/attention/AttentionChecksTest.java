package dev.isthmus.attention;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import org.junit.jupiter.api.Test;

/** Bad input is an IllegalArgumentException naming what is wrong, before anything runs. */
class AttentionChecksTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void batchTablesAndLengths() {
        try (KvCache cache = KvCache.allocate(CPU, DType.F16, 4, 16, 2, 64)) {
            Tensor k = cache.keys(), v = cache.values();
            illegalArgument("points outside the pool", () -> KvBatch.of(CPU, k, v, new int[][] {{0, 4}}, new int[] {0}, new int[] {1}));
            illegalArgument("points outside the pool", () -> KvBatch.of(CPU, k, v, new int[][] {{-1}}, new int[] {0}, new int[] {1}));
            illegalArgument("past its cache capacity", () -> KvBatch.of(CPU, k, v, new int[][] {{0, 1}}, new int[] {30}, new int[] {3}));
            illegalArgument("newTokens", () -> KvBatch.of(CPU, k, v, new int[][] {{0}}, new int[] {1}, new int[] {-1}));
            illegalArgument("cachedLens has", () -> KvBatch.of(CPU, k, v, new int[][] {{0}, {1}}, new int[] {1}, new int[] {1, 1}));
            try (KvBatch empty = KvBatch.of(CPU, k, v, new int[0][], new int[0], new int[0]);
                 Tensor none = Tensor.allocateHost(DType.F16, 0, 2, 64)) {
                assertEquals(0, empty.totalNewTokens(), "an empty batch is legal");
                Attention.append(CPU, empty, none, none, none, Rope.neox(10000f), null);
                Attention.attend(CPU, empty, none, none, null, AttentionOptions.decoder(), null);
            }
            try (Tensor other = Tensor.allocateHost(DType.BF16, 4, 16, 2, 64)) {
                illegalArgument("values has dtype bf16", () -> KvBatch.of(CPU, k, other, new int[][] {{0}}, new int[] {0}, new int[] {1}));
            }
        }
        illegalArgument("headDim 100", () -> KvCache.allocate(CPU, DType.F32, 1, 16, 1, 100));
        illegalArgument("dtype", () -> KvCache.allocate(CPU, DType.I32, 1, 16, 1, 64));
    }

    @Test
    void cacheAllocatorReusesFreedBlocksAndRefusesOverflow() {
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 3, 4, 1, 64)) {
            int a = cache.newSequence(), b = cache.newSequence();
            cache.extend(new int[] {a}, new int[] {9}).close(); // 3 blocks
            assertEquals(0, cache.freeBlockCount());
            illegalArgument("needs 1 more blocks but has 0 free", () -> cache.extend(new int[] {b}, new int[] {1}));
            assertEquals(0, cache.length(b), "a refused extend changes nothing");
            cache.free(a);
            assertEquals(3, cache.freeBlockCount());
            try (KvBatch batch = cache.extend(new int[] {b}, new int[] {5})) {
                assertEquals(0, batch.cachedLength(0));
                assertEquals(5, batch.kvLength(0));
            }
            illegalArgument("does not exist", () -> cache.length(a));
            illegalArgument("appears twice", () -> cache.extend(new int[] {b, b}, new int[] {1, 1}));
        }
    }

    @Test
    void anExtendWhoseBatchCannotBeMadeLeavesTheCacheAsItWas() {
        KvCache cache = KvCache.allocate(CPU, DType.F32, 4, 4, 1, 64);
        int seq = cache.newSequence();
        cache.extend(new int[] {seq}, new int[] {3}).close();
        cache.close(); // the pool is gone: making the next batch fails after the blocks were planned
        illegalArgument("closed", () -> cache.extend(new int[] {seq}, new int[] {6}));
        assertEquals(3, cache.length(seq));
        assertEquals(3, cache.freeBlockCount());
    }

    @Test
    void attendAndAppendArguments() {
        try (KvCache cache = KvCache.allocate(CPU, DType.BF16, 4, 16, 2, 64)) {
            int seq = cache.newSequence();
            try (KvBatch batch = cache.extend(new int[] {seq}, new int[] {3});
                 Tensor q = Tensor.allocateHost(DType.BF16, 3, 6, 64);
                 Tensor qOdd = Tensor.allocateHost(DType.BF16, 3, 3, 64);
                 Tensor qF16 = Tensor.allocateHost(DType.F16, 3, 6, 64);
                 Tensor out = Tensor.allocateHost(DType.BF16, 3, 6, 64);
                 Tensor lseWrong = Tensor.allocateHost(DType.F32, 3, 5);
                 Tensor k = Tensor.allocateHost(DType.BF16, 3, 2, 64);
                 Tensor kShort = Tensor.allocateHost(DType.BF16, 2, 2, 64);
                 Tensor positions = Tensor.allocateHost(DType.I64, 3)) {
                AttentionOptions o = AttentionOptions.decoder();
                illegalArgument("not a positive multiple", () -> Attention.attend(CPU, batch, qOdd, out, null, o, null));
                illegalArgument("q has dtype f16", () -> Attention.attend(CPU, batch, qF16, out, null, o, null));
                illegalArgument("lse has shape", () -> Attention.attend(CPU, batch, q, out, lseWrong, o, null));
                illegalArgument("options is null", () -> Attention.attend(CPU, batch, q, out, null, null, null));
                illegalArgument("k has shape", () -> Attention.append(CPU, batch, q, kShort, k, null, null));
                illegalArgument("positions must be i32", () -> Attention.append(CPU, batch, q, k, k, Rope.neox(1e4f), positions));
                Rope narrow = Rope.neox(1e4f).withLongRope(new Rope.LongRope(new float[] {1, 2}, new float[] {3, 4}, 8, 1f));
                illegalArgument("longrope has 2 factors per set; head_dim 64 has 32 pairs", () -> Attention.append(CPU, batch, q, k, k, narrow, null));
                illegalArgument("differ in length", () -> new Rope.LongRope(new float[] {1, 2}, new float[] {3}, 8, 1f));
                illegalArgument("attentionFactor", () -> new Rope.LongRope(new float[] {1}, new float[] {3}, 8, 0f));
                illegalArgument("not both", () -> narrow.withLlama3Scaling(new Rope.Llama3Scaling(8f, 1f, 4f, 8192)));
                illegalArgument("queryHeads 5", () -> {
                    try (AttentionWorkspace w = AttentionWorkspace.allocate(CPU, batch, 5)) {
                        // unreachable: 5 heads do not divide
                    }
                });
            }
            KvBatch closed = cache.extend(new int[] {seq}, new int[] {1});
            closed.close();
            try (Tensor q = Tensor.allocateHost(DType.BF16, 1, 2, 64); Tensor out = Tensor.allocateHost(DType.BF16, 1, 2, 64)) {
                illegalArgument("closed", () -> Attention.attend(CPU, closed, q, out, null, AttentionOptions.decoder(), null));
            }
        }
        illegalArgument("windowLeft", () -> AttentionOptions.decoder().withWindow(-2, 0));
        illegalArgument("softcap", () -> AttentionOptions.decoder().withSoftcap(-1f));
        illegalArgument("scale", () -> AttentionOptions.decoder().withScale(0f));
        illegalArgument("rope base", () -> Rope.neox(1f));
        illegalArgument("llama3 rope factor", () -> new Rope.Llama3Scaling(0.5f, 1f, 4f, 8192));
        illegalArgument("llama3 rope factor", () -> new Rope.Llama3Scaling(Float.POSITIVE_INFINITY, 1f, 4f, 8192));
        illegalArgument("lowFreqFactor", () -> new Rope.Llama3Scaling(8f, 0f, 4f, 8192));
        illegalArgument("lowFreqFactor", () -> new Rope.Llama3Scaling(8f, Float.NaN, 4f, 8192));
        illegalArgument("highFreqFactor", () -> new Rope.Llama3Scaling(8f, 4f, 4f, 8192));
        illegalArgument("highFreqFactor", () -> new Rope.Llama3Scaling(8f, 1f, Float.POSITIVE_INFINITY, 8192));
        illegalArgument("originalMaxPositions", () -> new Rope.Llama3Scaling(8f, 1f, 4f, 0));
    }

    @Test
    void mergeArguments() {
        try (Tensor parts = Tensor.allocateHost(DType.F32, 2, 3, 8);
             Tensor lses = Tensor.allocateHost(DType.F32, 2, 3);
             Tensor lsesF16 = Tensor.allocateHost(DType.F16, 2, 3);
             Tensor out = Tensor.allocateHost(DType.BF16, 3, 8);
             Tensor outWrong = Tensor.allocateHost(DType.F32, 3, 7)) {
            illegalArgument("partLses must be f32", () -> Attention.merge(CPU, out, null, parts, lsesF16));
            illegalArgument("out has shape", () -> Attention.merge(CPU, outWrong, null, parts, lses));
            illegalArgument("partLses has shape", () -> Attention.merge(CPU, out, null, parts, lses.slice(1, 0, 2)));
        }
    }
}
