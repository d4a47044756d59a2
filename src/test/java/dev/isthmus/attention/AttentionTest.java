package dev.isthmus.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The CPU references against hand-computed values and against each other (identities of attention). */
class AttentionTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void twoKeysByHand() {
        // q = a * e0, k0 = e0, k1 = 0: scores (scale * a, 0); out = softmax-weighted v; lse = ln(e^s0 + 1).
        int d = 64;
        float a = 3f;
        float scale = 0.5f, cap = 1.2f;
        float[] k = new float[2 * d], v = new float[2 * d], q = new float[d];
        k[0] = 1;
        q[0] = a;
        for (int j = 0; j < d; j++) {
            v[j] = j;
            v[d + j] = -2 * j + 1;
        }
        for (boolean capped : new boolean[] {false, true}) {
            double s0 = scale * a;
            if (capped) s0 = cap * Math.tanh(s0 / cap);
            double w0 = Math.exp(s0) / (Math.exp(s0) + 1), w1 = 1 / (Math.exp(s0) + 1);
            try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, 2, 1, d);
                 KvBatch batch = KvBatch.of(CPU, cache.keys(), cache.values(), new int[][] {{0}}, new int[] {1}, new int[] {1});
                 Tensor qt = Tensor.fromFloats(DType.F32, q, 1, 1, d);
                 Tensor out = Tensor.allocateHost(DType.F32, 1, 1, d);
                 Tensor lse = Tensor.allocateHost(DType.F32, 1, 1)) {
                cache.keys().copyFrom(k);
                cache.values().copyFrom(v);
                AttentionOptions options = AttentionOptions.encoder().withScale(scale).withSoftcap(capped ? cap : 0f);
                Attention.attend(CPU, batch, qt, out, lse, options, null);
                for (int j = 0; j < d; j++) assertEquals(w0 * j + w1 * (-2 * j + 1), out.getFloat(0, 0, j), 1e-5);
                assertEquals(Math.log(Math.exp(s0) + 1), lse.getFloat(0, 0), 1e-6);
            }
        }
    }

    @Test
    void ropeRotatesPairsByPositionTimesFrequency() {
        int d = 64;
        float[] x = new float[d];
        x[0] = 1;
        x[d - 2] = 1; // last interleaved pair (frequency base^(-62/64))
        for (boolean neox : new boolean[] {false, true}) {
            Rope rope = neox ? Rope.neox(10000f) : Rope.interleaved(10000f).withPositionScale(0.5f);
            int position = 7;
            try (Tensor rotated = rotateOne(rope, x, position)) {
                double angle0 = position * rope.positionScale();
                int partner0 = neox ? d / 2 : 1;
                assertEquals(Math.cos(angle0), rotated.getFloat(0, 0, 0), 1e-6);
                assertEquals(Math.sin(angle0), rotated.getFloat(0, 0, partner0), 1e-6);
                if (!neox) {
                    double angle = angle0 * Math.pow(10000, -62.0 / 64);
                    assertEquals(Math.cos(angle), rotated.getFloat(0, 0, d - 2), 1e-6);
                    assertEquals(Math.sin(angle), rotated.getFloat(0, 0, d - 1), 1e-6);
                }
            }
        }
    }

    @Test
    void ropeScoresDependOnlyOnThePositionDifference() {
        Random random = new Random(3);
        int d = 96;
        float[] q = new float[d], k = new float[d];
        for (int j = 0; j < d; j++) {
            q[j] = (float) random.nextGaussian();
            k[j] = (float) random.nextGaussian();
        }
        for (Rope rope : new Rope[] {Rope.neox(500f), Rope.interleaved(10000f)}) {
            double near = dot(rotateOne(rope, q, 9), rotateOne(rope, k, 4));
            double far = dot(rotateOne(rope, q, 1009), rotateOne(rope, k, 1004));
            assertEquals(near, far, 1e-3 * Math.abs(near) + 1e-3);
        }
    }

    @Test
    void llama3ScalingRescalesEachFrequencyByItsWavelength() {
        // d 64, base 10000, original 32 positions, low/high frequency factors 1 and 4: pair 0
        // (wavelength 2 pi) is under 32 / 4 = 8 and stays; pairs 1..5 (wavelengths 8.4 .. 26.5) are
        // blended; pairs 6.. (from 35.3) are over 32 / 1 and divided by the factor 4. Each pair's
        // angle at position 1 is its frequency: x[j] = 1 turns into (cos f_j, sin f_j) at (j, j + 32).
        int d = 64, half = d / 2;
        Rope.Llama3Scaling scaling = new Rope.Llama3Scaling(4f, 1f, 4f, 32);
        Rope rope = Rope.neox(10000f).withLlama3Scaling(scaling);
        float[] x = new float[d];
        for (int j = 0; j < half; j++) x[j] = 1;
        int[] regimeCount = new int[3];
        try (Tensor rotated = rotateOne(rope, x, 1)) {
            for (int j = 0; j < half; j++) {
                double f = Math.pow(10000, -2.0 * j / d), wavelength = 2 * Math.PI / f;
                double expected;
                if (j == 0) {
                    expected = 1; // wavelength 2 pi < 8: unchanged
                    regimeCount[0]++;
                } else if (j >= 6) {
                    expected = f / 4;
                    regimeCount[2]++;
                } else {
                    double smooth = (32 / wavelength - 1) / 3; // in (0, 1) between the two thresholds
                    assertTrue(smooth > 0 && smooth < 1, "pair " + j + " smooth " + smooth);
                    expected = f / 4 + smooth * (f - f / 4);
                    regimeCount[1]++;
                }
                assertEquals(Math.cos(expected), rotated.getFloat(0, 0, j), 1e-6, "pair " + j);
                assertEquals(Math.sin(expected), rotated.getFloat(0, 0, j + half), 1e-6, "pair " + j);
            }
        }
        assertArrayEquals(new int[] {1, 5, 26}, regimeCount);
        // Pair 3 by hand: wavelength 2 pi 10^(3/8) = 14.90, s = (32 / 14.90 - 1) / 3 = 0.3826,
        // f = 10^(-3/8) = 0.42170 -> 0.42170 (0.25 + 0.75 s) = 0.226418.
        try (Tensor rotated = rotateOne(rope, x, 1)) {
            assertEquals(0.226418, Math.atan2(rotated.getFloat(0, 0, 3 + half), rotated.getFloat(0, 0, 3)), 1e-6);
        }
    }

    @Test
    void llama3ScalingWithFactorOneRotatesAsUnscaled() {
        Random random = new Random(5);
        int d = 80;
        float[] x = new float[d];
        for (int j = 0; j < d; j++) x[j] = (float) random.nextGaussian();
        Rope plain = Rope.interleaved(500000f).withPositionScale(0.5f);
        Rope factorOne = plain.withLlama3Scaling(new Rope.Llama3Scaling(1f, 1f, 4f, 8192));
        Rope factorEight = plain.withLlama3Scaling(new Rope.Llama3Scaling(8f, 1f, 4f, 8192));
        for (int position : new int[] {0, 3, 70000})
            assertArrayEquals(rotated(plain, x, position), rotated(factorOne, x, position), 1e-6f, "position " + position);
        // Factor 8 at a long position moves the slow pairs (wavelengths over 8192) and leaves the fast ones.
        float[] a = rotated(plain, x, 70000), b = rotated(factorEight, x, 70000);
        assertEquals(a[0], b[0]);
        assertEquals(a[1], b[1]);
        assertFalse(Math.abs(a[d - 2] - b[d - 2]) + Math.abs(a[d - 1] - b[d - 1]) < 1e-3);
    }

    /** x rotated as the single query of a one-token batch at {@code position}, f32. */
    private static Tensor rotateOne(Rope rope, float[] x, int position) {
        int d = x.length;
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, 1, 1, d);
             KvBatch batch = KvBatch.of(CPU, cache.keys(), cache.values(), new int[][] {{0}}, new int[] {0}, new int[] {1});
             Tensor k = Tensor.allocateHost(DType.F32, 1, 1, d);
             Tensor v = Tensor.allocateHost(DType.F32, 1, 1, d);
             Tensor positions = Tensor.fromLongs(DType.I32, new long[] {position}, 1)) {
            Tensor q = Tensor.fromFloats(DType.F32, x, 1, 1, d);
            Attention.append(CPU, batch, q, k, v, rope, positions);
            return q;
        }
    }

    private static float[] rotated(Rope rope, float[] x, int position) {
        try (Tensor t = rotateOne(rope, x, position)) {
            return t.toFloatArray();
        }
    }

    private static double dot(Tensor a, Tensor b) {
        float[] x = a.toFloatArray(), y = b.toFloatArray();
        double s = 0;
        for (int i = 0; i < x.length; i++) s += (double) x[i] * y[i];
        a.close();
        b.close();
        return s;
    }

    @Test
    void decodeAfterPrefillEqualsPrefillOfTheWhole() {
        Random random = new Random(5);
        int d = 64, kvHeads = 2, qHeads = 6, n = 19, prompt = 15;
        Tensor q = RandomTensors.normal(random, DType.F32, 1f, n, qHeads, d);
        Tensor k = RandomTensors.normal(random, DType.F32, 1f, n, kvHeads, d);
        Tensor v = RandomTensors.normal(random, DType.F32, 1f, n, kvHeads, d);
        Rope rope = Rope.neox(10000f);
        AttentionOptions options = AttentionOptions.decoder().withWindow(9, -1);
        float[] whole;
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 8, 4, kvHeads, d);
             KvBatch all = cache.extend(new int[] {cache.newSequence()}, new int[] {n});
             Tensor qc = copy(q); Tensor out = Tensor.allocateHost(DType.F32, n, qHeads, d)) {
            Attention.append(CPU, all, qc, k, v, rope, null);
            Attention.attend(CPU, all, qc, out, null, options, null);
            whole = out.toFloatArray();
        }
        float[] stepwise = new float[whole.length];
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 8, 4, kvHeads, d)) {
            int seq = cache.newSequence();
            int done = 0;
            for (int chunk : new int[] {prompt, 1, 2, 1}) { // prefill, decode, 2 speculative tokens, decode
                try (KvBatch step = cache.extend(new int[] {seq}, new int[] {chunk});
                     Tensor qs = copy(q.slice(0, done, done + chunk)); Tensor ks = copy(k.slice(0, done, done + chunk));
                     Tensor vs = copy(v.slice(0, done, done + chunk));
                     Tensor out = Tensor.allocateHost(DType.F32, chunk, qHeads, d)) {
                    Attention.append(CPU, step, qs, ks, vs, rope, null);
                    Attention.attend(CPU, step, qs, out, null, options, null);
                    System.arraycopy(out.toFloatArray(), 0, stepwise, done * qHeads * d, chunk * qHeads * d);
                }
                done += chunk;
            }
            assertEquals(n, cache.length(seq));
        }
        assertArrayEquals(whole, stepwise, 1e-6f);
        q.close();
        k.close();
        v.close();
    }

    @Test
    void pagedEqualsContiguous() {
        Random random = new Random(8);
        int d = 80, kvHeads = 3, qHeads = 3;
        int[] cachedLens = {16, 0, 33, 1};
        int[] newTokens = {1, 17, 2, 15};
        int blockSize = 16;
        int total = 0;
        for (int t : newTokens) total += t;
        // Paged: blocks handed out in a scrambled order from a larger pool.
        int[][] paged = new int[4][];
        java.util.List<Integer> pool = new java.util.ArrayList<>(java.util.stream.IntStream.range(0, 29).boxed().toList());
        java.util.Collections.shuffle(pool, new Random(1));
        int next = 0;
        for (int b = 0; b < 4; b++) {
            paged[b] = new int[(cachedLens[b] + newTokens[b] + blockSize - 1) / blockSize];
            for (int j = 0; j < paged[b].length; j++) paged[b][j] = pool.get(next++);
        }
        int longest = 35;
        int[][] contiguous = {{0}, {1}, {2}, {3}};
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            Tensor q = RandomTensors.normal(random, dtype, 1f, total, qHeads, d);
            float[][] history = new float[4][];
            for (int b = 0; b < 4; b++) history[b] = randomTokens(random, (cachedLens[b] + newTokens[b]) * kvHeads * d * 2);
            float[] pagedOut = run(dtype, 29, blockSize, paged, cachedLens, newTokens, history, q, kvHeads);
            float[] contiguousOut = run(dtype, 4, longest, contiguous, cachedLens, newTokens, history, q, kvHeads);
            assertArrayEquals(contiguousOut, pagedOut, 0f, dtype.label());
            q.close();
        }
    }

    private static float[] randomTokens(Random random, int count) {
        float[] x = new float[count];
        for (int i = 0; i < count; i++) x[i] = (float) random.nextGaussian();
        return x;
    }

    /** Writes each sequence's history (keys then values, [length, kvHeads, d] each) into the given tables, attends causally. */
    private static float[] run(DType dtype, int numBlocks, int blockSize, int[][] tables, int[] cachedLens, int[] newTokens,
                               float[][] history, Tensor q, int kvHeads) {
        int d = (int) q.dim(2);
        try (KvCache cache = KvCache.allocate(CPU, dtype, numBlocks, blockSize, kvHeads, d);
             KvBatch batch = KvBatch.of(CPU, cache.keys(), cache.values(), tables, cachedLens, newTokens);
             Tensor out = Tensor.allocateHost(dtype, q.shape())) {
            writeHistory(batch, history);
            Attention.attend(CPU, batch, q, out, null, AttentionOptions.decoder(), null);
            return out.toFloatArray();
        }
    }

    static void writeHistory(KvBatch batch, float[][] history) {
        int kvHeads = batch.kvHeads(), d = batch.headDim();
        for (int b = 0; b < batch.batchSize(); b++) {
            int length = batch.kvLength(b);
            for (int t = 0; t < length; t++)
                for (int h = 0; h < kvHeads; h++)
                    for (int j = 0; j < d; j++) {
                        int i = (t * kvHeads + h) * d + j;
                        batch.keys().setFloat(history[b][i], batch.blockOf(b, t), t % batch.blockSize(), h, j);
                        batch.values().setFloat(history[b][length * kvHeads * d + i], batch.blockOf(b, t), t % batch.blockSize(), h, j);
                    }
        }
    }

    @Test
    void mergeOfShardsEqualsTheWhole() {
        // Ring attention on one device: the KV of one sequence in shards, each attended separately, merged by LSE.
        Random random = new Random(13);
        int d = 64, kvHeads = 1, qHeads = 4, queries = 2;
        int[] shards = {2, 17, 45};
        int length = 64;
        float[] history = randomTokens(random, length * kvHeads * d * 2);
        Tensor q = RandomTensors.normal(random, DType.F32, 1f, queries, qHeads, d);
        AttentionOptions options = AttentionOptions.encoder();
        float[] whole;
        float[] wholeLse;
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, length, kvHeads, d);
             KvBatch batch = KvBatch.of(CPU, cache.keys(), cache.values(), new int[][] {{0}}, new int[] {length - queries}, new int[] {queries});
             Tensor out = Tensor.allocateHost(DType.F32, queries, qHeads, d);
             Tensor lse = Tensor.allocateHost(DType.F32, queries, qHeads)) {
            writeHistory(batch, new float[][] {history});
            Attention.attend(CPU, batch, q, out, lse, options, null);
            whole = out.toFloatArray();
            wholeLse = lse.toFloatArray();
        }
        try (Tensor partOuts = Tensor.allocateHost(DType.F32, shards.length, queries, qHeads, d);
             Tensor partLses = Tensor.allocateHost(DType.F32, shards.length, queries, qHeads);
             Tensor merged = Tensor.allocateHost(DType.F32, queries, qHeads, d);
             Tensor mergedLse = Tensor.allocateHost(DType.F32, queries, qHeads)) {
            int start = 0;
            for (int s = 0; s < shards.length; s++) {
                int n = shards[s];
                float[] shard = new float[n * kvHeads * d * 2];
                System.arraycopy(history, start * kvHeads * d, shard, 0, n * kvHeads * d);
                System.arraycopy(history, (length + start) * kvHeads * d, shard, n * kvHeads * d, n * kvHeads * d);
                try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, n, kvHeads, d);
                     KvBatch batch = KvBatch.of(CPU, cache.keys(), cache.values(), new int[][] {{0}}, new int[] {n - queries}, new int[] {queries})) {
                    writeHistory(batch, new float[][] {shard});
                    Attention.attend(CPU, batch, q, partOuts.slice(0, s, s + 1).reshape(queries, qHeads, d),
                            partLses.slice(0, s, s + 1).reshape(queries, qHeads), options, null);
                }
                start += n;
            }
            Attention.merge(CPU, merged, mergedLse, partOuts, partLses);
            assertArrayEquals(whole, merged.toFloatArray(), 1e-5f);
            assertArrayEquals(wholeLse, mergedLse.toFloatArray(), 1e-5f);
        }
        q.close();
    }

    @Test
    void mergingAnEmptyPartChangesNothing() {
        Random random = new Random(2);
        try (Tensor parts = RandomTensors.normal(random, DType.F32, 1f, 3, 5, 7);
             Tensor lses = RandomTensors.normal(random, DType.F32, 1f, 3, 5);
             Tensor out = Tensor.allocateHost(DType.F32, 5, 7);
             Tensor lse = Tensor.allocateHost(DType.F32, 5)) {
            for (int r = 0; r < 5; r++) {
                lses.setFloat(Float.NEGATIVE_INFINITY, 1, r); // part 1 saw nothing
                for (int j = 0; j < 7; j++) parts.setFloat(0f, 1, r, j);
                for (int p = 0; p < 3; p++) lses.setFloat(Float.NEGATIVE_INFINITY, p, 4); // row 4 saw nothing anywhere
            }
            Attention.merge(CPU, out, lse, parts, lses);
            try (Tensor out2 = Tensor.allocateHost(DType.F32, 5, 7); Tensor lse2 = Tensor.allocateHost(DType.F32, 5)) {
                Attention.merge(CPU, out2, lse2, stack(parts, 0, 2), stack(lses, 0, 2));
                assertArrayEquals(out2.toFloatArray(), out.toFloatArray(), 1e-6f);
                assertArrayEquals(lse2.toFloatArray(), lse.toFloatArray(), 1e-6f);
            }
            for (int j = 0; j < 7; j++) assertEquals(0f, out.getFloat(4, j));
            assertEquals(Float.NEGATIVE_INFINITY, lse.getFloat(4));
        }
    }

    /** Parts a and b of a stacked tensor, as a new stack of two. */
    private static Tensor stack(Tensor parts, int a, int b) {
        long[] shape = parts.shape().clone();
        shape[0] = 2;
        float[] x = parts.toFloatArray();
        int size = (int) (parts.elementCount() / parts.dim(0));
        float[] y = new float[2 * size];
        System.arraycopy(x, a * size, y, 0, size);
        System.arraycopy(x, b * size, y, size, size);
        return Tensor.fromFloats(parts.dtype(), y, shape);
    }

    @Test
    void causalMaskNeverLeaksAFutureToken() {
        Random random = new Random(21);
        int d = 64, kvHeads = 1, qHeads = 2, n = 18;
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 4, 8, kvHeads, d);
             KvBatch batch = cache.extend(new int[] {cache.newSequence()}, new int[] {n});
             Tensor q = RandomTensors.normal(random, DType.F32, 1f, n, qHeads, d);
             Tensor out = Tensor.allocateHost(DType.F32, n, qHeads, d);
             Tensor changed = Tensor.allocateHost(DType.F32, n, qHeads, d)) {
            writeHistory(batch, new float[][] {randomTokens(random, n * kvHeads * d * 2)});
            Attention.attend(CPU, batch, q, out, null, AttentionOptions.decoder(), null);
            float[] before = out.toFloatArray();
            for (int future : new int[] {1, 7, 8, 17}) { // around the block boundary and the last token
                float savedV = batch.values().getFloat(batch.blockOf(0, future), future % 8, 0, 0);
                float savedK = batch.keys().getFloat(batch.blockOf(0, future), future % 8, 0, 1);
                batch.values().setFloat(1000f, batch.blockOf(0, future), future % 8, 0, 0);
                batch.keys().setFloat(50f, batch.blockOf(0, future), future % 8, 0, 1);
                Attention.attend(CPU, batch, q, changed, null, AttentionOptions.decoder(), null);
                float[] after = changed.toFloatArray();
                int rowSize = qHeads * d;
                for (int i = 0; i < future * rowSize; i++) assertEquals(before[i], after[i], "row " + i / rowSize + " saw token " + future);
                boolean moved = false;
                for (int i = future * rowSize; i < (future + 1) * rowSize; i++) moved |= before[i] != after[i];
                assertTrue(moved, "token " + future + " must see itself");
                batch.values().setFloat(savedV, batch.blockOf(0, future), future % 8, 0, 0);
                batch.keys().setFloat(savedK, batch.blockOf(0, future), future % 8, 0, 1);
            }
        }
    }

    @Test
    void windowsNarrowAndWide() {
        Random random = new Random(4);
        int d = 64, n = 10;
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, n, 1, d);
             KvBatch batch = cache.extend(new int[] {cache.newSequence()}, new int[] {n});
             Tensor q = RandomTensors.normal(random, DType.F32, 1f, n, 1, d);
             Tensor a = Tensor.allocateHost(DType.F32, n, 1, d);
             Tensor b = Tensor.allocateHost(DType.F32, n, 1, d)) {
            float[] history = randomTokens(random, n * d * 2);
            writeHistory(batch, new float[][] {history});
            // A window wider than the sequence is no window.
            Attention.attend(CPU, batch, q, a, null, AttentionOptions.encoder(), null);
            Attention.attend(CPU, batch, q, b, null, AttentionOptions.encoder().withWindow(n + 3, 2 * n), null);
            assertArrayEquals(a.toFloatArray(), b.toFloatArray(), 0f);
            // Window (0, 0): each token sees only itself, so its output is its own value.
            Attention.attend(CPU, batch, q, b, null, AttentionOptions.encoder().withWindow(0, 0), null);
            for (int t = 0; t < n; t++)
                for (int j = 0; j < d; j++) assertEquals(history[n * d + t * d + j], b.getFloat(t, 0, j), 1e-6f);
            // Causal with left window 1 differs from plain causal once a token has two predecessors.
            Attention.attend(CPU, batch, q, a, null, AttentionOptions.decoder(), null);
            Attention.attend(CPU, batch, q, b, null, AttentionOptions.decoder().withWindow(1, -1), null);
            assertArrayEquals(slice(a, 0, 2), slice(b, 0, 2), 0f);
            assertFalse(java.util.Arrays.equals(slice(a, 2, n), slice(b, 2, n)));
        }
    }

    private static float[] slice(Tensor t, int from, int to) {
        return t.slice(0, from, to).toFloatArray();
    }

    @Test
    void gqaHeadReadsKvHeadOfItsGroup() {
        // 6 query heads over 2 kv heads equals 6 heads over 6 kv heads where kv head h is a copy of kv head h / 3.
        Random random = new Random(17);
        int d = 64, n = 5;
        float[] history = randomTokens(random, n * 2 * d * 2);
        float[] expanded = new float[n * 6 * d * 2];
        for (int kv = 0; kv < 2; kv++)
            for (int t = 0; t < n; t++)
                for (int h = 0; h < 6; h++)
                    System.arraycopy(history, kv * n * 2 * d + (t * 2 + h / 3) * d, expanded, kv * n * 6 * d + (t * 6 + h) * d, d);
        try (Tensor q = RandomTensors.normal(random, DType.F32, 1f, n, 6, d)) {
            float[] grouped = attendHistory(history, 2, q);
            float[] full = attendHistory(expanded, 6, q);
            assertArrayEquals(full, grouped, 0f);
        }
    }

    private static float[] attendHistory(float[] history, int kvHeads, Tensor q) {
        int n = (int) q.dim(0), d = (int) q.dim(2);
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, n, kvHeads, d);
             KvBatch batch = cache.extend(new int[] {cache.newSequence()}, new int[] {n});
             Tensor out = Tensor.allocateHost(DType.F32, q.shape())) {
            writeHistory(batch, new float[][] {history});
            Attention.attend(CPU, batch, q, out, null, AttentionOptions.decoder(), null);
            return out.toFloatArray();
        }
    }

    @Test
    void splitCountFillsTheMachineOnlyWhenTheBatchDoesNot() {
        assertTrue(Attention.splitCount(132, 2, 1, 8, 32, 1, 131072) > 1);
        assertEquals(1, Attention.splitCount(132, 2, 128, 8, 32, 1, 131072));
        assertEquals(1, Attention.splitCount(132, 2, 1, 8, 32, 1, 100)); // too short to split
        assertTrue(Attention.splitCount(132, 2, 1, 1, 1, 1, 1 << 20) <= 128);
        // The decode benchmark on 132 SMs x 2 blocks: 8 x 33 and 64 x 4 blocks, one wave each.
        assertEquals(33, Attention.splitCount(132, 2, 1, 8, 32, 1, 32768));
        assertEquals(4, Attention.splitCount(132, 2, 8, 8, 32, 1, 32768));
        // 100 units on 264 slots: 2 splits fill one wave to 76%, 5 fill two to 95%.
        assertEquals(5, Attention.splitCount(132, 2, 25, 4, 4, 1, 32768));
        // A kernel of 3 resident blocks an SM (an int8 cache's): 396 slots, 8 x 49 blocks.
        assertEquals(49, Attention.splitCount(132, 3, 1, 8, 32, 1, 32768));
        assertThrows(IllegalArgumentException.class, () -> Attention.splitCount(132, 0, 1, 8, 32, 1, 32768));
        try (KvCache cache = KvCache.allocate(CPU, DType.F32, 1, 16, 1, 64);
             KvBatch batch = cache.extend(new int[] {cache.newSequence()}, new int[] {3});
             AttentionWorkspace workspace = AttentionWorkspace.allocate(CPU, batch, 2)) {
            assertEquals(1, workspace.splits());
        }
    }

    static Tensor copy(Tensor t) {
        return Tensor.fromFloats(t.dtype(), t.toFloatArray(), t.shape());
    }
}
