package dev.isthmus.attention;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * A reusable batch (the decode step a CUDA graph replays) grown in place, and a batch reaching
 * another layer's pool through {@link KvBatch#over}: both must attend exactly as fresh batches do.
 */
class ReusableBatchTest {
    private static final Backend CPU = Backend.cpu();
    private static final int D = 64, KV_HEADS = 2, Q_HEADS = 4, BLOCK = 4;

    /** Two sequences of different prompt lengths decode 9 steps (crossing blocks) on two layers; every step's output is compared. */
    @Test
    void decodeInPlaceOnTwoLayersEqualsFreshBatchesOnTwoCaches() {
        Random random = new Random(11);
        int[] prompts = {3, 6};
        int steps = 9, maxLength = 16;
        try (KvCache shared = KvCache.allocate(CPU, DType.F32, 2, 10, BLOCK, KV_HEADS, D);
             KvCache first = KvCache.allocate(CPU, DType.F32, 10, BLOCK, KV_HEADS, D);
             KvCache second = KvCache.allocate(CPU, DType.F32, 10, BLOCK, KV_HEADS, D)) {
            int[] ids = {shared.newSequence(), shared.newSequence()};
            int[] idsFirst = {first.newSequence(), first.newSequence()}, idsSecond = {second.newSequence(), second.newSequence()};
            // Prefill: the shared cache's layers through one batch and its view; the others through their own.
            try (KvBatch prefill = shared.extend(ids, prompts)) {
                for (int layer = 0; layer < 2; layer++) {
                    Tensor[] qkv = qkv(random, prompts[0] + prompts[1]);
                    KvCache own = layer == 0 ? first : second;
                    try (KvBatch fresh = own.extend(layer == 0 ? idsFirst : idsSecond, prompts)) {
                        Attention.append(CPU, fresh, AttentionTest.copy(qkv[0]), qkv[1], qkv[2], Rope.neox(10000f), null);
                    }
                    KvBatch mine = layer == 0 ? prefill : prefill.over(shared.keys(layer), shared.values(layer));
                    Attention.append(CPU, mine, qkv[0], qkv[1], qkv[2], Rope.neox(10000f), null);
                }
            }
            try (KvBatch decode = shared.extendReusable(ids, new int[] {1, 1}, maxLength)) {
                Tensor table = decode.blockTable(), lengths = decode.cachedLengths();
                assertTrue(decode.isReusable());
                assertEquals(maxLength, decode.kvCapacity());
                for (int step = 0; step < steps; step++) {
                    if (step > 0) shared.extend(decode);
                    assertSame(table, decode.blockTable(), "the device tables stay where they are");
                    assertSame(lengths, decode.cachedLengths());
                    for (int b = 0; b < 2; b++) assertEquals(prompts[b] + step, decode.cachedLength(b));
                    for (int layer = 0; layer < 2; layer++) {
                        Tensor[] qkv = qkv(random, 2);
                        KvCache own = layer == 0 ? first : second;
                        try (KvBatch fresh = own.extend(layer == 0 ? idsFirst : idsSecond, new int[] {1, 1});
                             Tensor out = Tensor.allocateHost(DType.F32, 2, Q_HEADS, D);
                             Tensor expected = Tensor.allocateHost(DType.F32, 2, Q_HEADS, D)) {
                            for (int b = 0; b < 2; b++) assertArrayEquals(trimmed(fresh, b), trimmed(decode, b), "the tables a fresh batch gets");
                            Tensor q = AttentionTest.copy(qkv[0]);
                            Attention.append(CPU, fresh, qkv[0], qkv[1], qkv[2], Rope.neox(10000f), null);
                            Attention.attend(CPU, fresh, qkv[0], expected, null, AttentionOptions.decoder(), null);
                            KvBatch view = layer == 0 ? decode : decode.over(shared.keys(layer), shared.values(layer));
                            Attention.append(CPU, view, q, qkv[1], qkv[2], Rope.neox(10000f), null);
                            Attention.attend(CPU, view, q, out, null, AttentionOptions.decoder(), null);
                            if (view != decode) view.close(); // a view's close leaves the tables to their batch
                            assertArrayEquals(expected.toFloatArray(), out.toFloatArray(), "step " + step + " layer " + layer);
                        }
                    }
                }
                assertEquals(prompts[1] + steps, shared.length(ids[1]));
            }
        }
    }

    @Test
    void aReusableBatchRefusesWhatItCannotHold() {
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 2, 6, BLOCK, 1, D);
             KvCache other = KvCache.allocate(CPU, DType.F32, 6, BLOCK, 1, D)) {
            int seq = cache.newSequence();
            cache.extend(new int[] {seq}, new int[] {6}).close();
            try (KvBatch decode = cache.extendReusable(new int[] {seq}, new int[] {1}, 8)) {
                cache.extend(decode); // 9 tokens: past the room for 8
                assertEquals(8, cache.length(seq));
            }
            try (KvBatch decode = cache.extendReusable(new int[] {seq}, new int[] {1}, 9)) {
                illegalArgument("past the batch's room for 12", () -> {
                    for (int i = 0; i < 4; i++) cache.extend(decode);
                });
                assertEquals(12, cache.length(seq), "the refused step changed nothing");
                illegalArgument("not made by extendReusable of this cache", () -> other.extend(decode));
                illegalArgument("not made by extendReusable of this cache", () -> cache.extend(decode.over(cache.keys(1), cache.values(1))));
                try (Tensor small = Tensor.allocateHost(DType.F32, 5, BLOCK, 1, D)) {
                    illegalArgument("keys", () -> decode.over(small, small));
                }
            }
            try (KvBatch plain = cache.extend(new int[] {seq}, new int[] {1})) {
                illegalArgument("not made by extendReusable of this cache", () -> cache.extend(plain));
            }
            illegalArgument("layer 2 is outside the cache's 2", () -> cache.keys(2));
            KvBatch closed = cache.extendReusable(new int[] {seq}, new int[] {1}, 16);
            closed.close();
            illegalArgument("batch is closed", () -> closed.over(cache.keys(1), cache.values(1)));
        }
    }

    /** Sequence b's row of the batch's host block table, up to the blocks it uses. */
    private static long[] trimmed(KvBatch batch, int b) {
        int used = (batch.kvLength(b) + batch.blockSize() - 1) / batch.blockSize();
        long[] row = new long[used];
        for (int j = 0; j < used; j++) row[j] = batch.blockOf(b, j * batch.blockSize());
        return row;
    }

    private static Tensor[] qkv(Random random, int tokens) {
        return new Tensor[] {RandomTensors.normal(random, DType.F32, 1f, tokens, Q_HEADS, D),
                RandomTensors.normal(random, DType.F32, 1f, tokens, KV_HEADS, D),
                RandomTensors.normal(random, DType.F32, 1f, tokens, KV_HEADS, D)};
    }
}
