package dev.isthmus.attention;

import static dev.isthmus.testing.DeviceAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuShapes;
import dev.isthmus.testing.GpuTest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The CUDA kernels against the CPU references: the same cache history, tables and new tokens on
 * both sides, fresh random values, outputs poisoned before each launch, relative error within the
 * dtype's bound. Shapes are awkward on purpose: lengths 1 and 2, block_size +- 1, odd head counts
 * within GQA, windows wider and narrower than the sequence, split and unsplit KV.
 */
class AttentionGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};

    record Shape(int blockSize, int[] cached, int[] fresh, int qHeads, int kvHeads, int headDim) {}

    private static final Shape[] DEVICE_SHAPES = {
        new Shape(16, new int[] {0}, new int[] {1}, 1, 1, 64),                    // one token, nothing cached
        new Shape(16, new int[] {15, 16, 17}, new int[] {1, 2, 1}, 6, 2, 128),    // block_size - 1, block_size, + 1
        new Shape(17, new int[] {0, 40}, new int[] {33, 2}, 9, 3, 80),            // odd block size, prefill + decode mixed
        new Shape(256, new int[] {300, 0, 1}, new int[] {3, 70, 1}, 5, 1, 96),    // MQA, 5 heads
        new Shape(32, new int[] {1000}, new int[] {4}, 8, 8, 256),                // MHA, long-ish context, speculative 4
        new Shape(16, new int[] {5000, 3}, new int[] {1, 1}, 8, 2, 128),          // decode, long and short side by side
    };
    /** Under the host emulation the two long contexts shrink; the edges they cover stay. */
    private static final Shape[] SHAPES = GpuShapes.choose(DEVICE_SHAPES,
        DEVICE_SHAPES[0], DEVICE_SHAPES[1], DEVICE_SHAPES[2], DEVICE_SHAPES[3],
        new Shape(32, new int[] {100}, new int[] {4}, 8, 8, 256),
        new Shape(16, new int[] {600, 3}, new int[] {1, 1}, 8, 2, 128));

    private static final AttentionOptions[] OPTIONS = {
        AttentionOptions.decoder(),
        AttentionOptions.encoder(),
        AttentionOptions.decoder().withWindow(5, -1).withSoftcap(20f),            // narrower than the sequence
        AttentionOptions.encoder().withWindow(3000, 2).withScale(0.3f),           // wider on the left
    };

    @GpuTest
    void appendAndAttendMatchTheReference() {
        Random random = new Random(31);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (Shape shape : SHAPES)
                    for (int o = 0; o < OPTIONS.length; o++)
                        for (int splits : new int[] {1, 3, 0}) // 0: the planned split count
                            check(gpu, random, dtype, shape, OPTIONS[o], splits, o % 2 == 0 ? Rope.neox(10000f) : Rope.interleaved(500f));
        }
    }

    private static void check(CudaBackend gpu, Random random, DType dtype, Shape s, AttentionOptions options, int splits, Rope rope) {
        String what = dtype.label() + " block " + s.blockSize + " cached " + java.util.Arrays.toString(s.cached) + " new "
                + java.util.Arrays.toString(s.fresh) + " heads " + s.qHeads + "/" + s.kvHeads + " d " + s.headDim + " " + options
                + " splits " + splits;
        int numBlocks = blocksNeeded(s) + 3;
        int[][] tables = shuffledTables(random, s, numBlocks);
        int tokens = IntStream.of(s.fresh).sum();
        try (Inputs in = Inputs.random(gpu, random, dtype, s, numBlocks, tokens);
             Tensor expected = Tensor.allocateHost(dtype, tokens, s.qHeads, s.headDim);
             Tensor expectedLse = Tensor.allocateHost(DType.F32, tokens, s.qHeads);
             Tensor out = gpu.allocate(dtype, tokens, s.qHeads, s.headDim);
             Tensor lse = gpu.allocate(DType.F32, tokens, s.qHeads);
             KvBatch host = KvBatch.of(Backend.cpu(), in.keys(), in.values(), tables, s.cached, s.fresh);
             KvBatch device = KvBatch.of(gpu, in.dKeys(), in.dValues(), tables, s.cached, s.fresh);
             AttentionWorkspace workspace = splits == 0 ? AttentionWorkspace.allocate(gpu, device, s.qHeads)
                                                        : AttentionWorkspace.allocate(gpu, device, s.qHeads, splits)) {
            Tensor keys = in.keys(), values = in.values(), q = in.q(), k = in.k(), v = in.v();
            Tensor dKeys = in.dKeys(), dValues = in.dValues(), dq = in.dq(), dk = in.dk(), dv = in.dv();
            Attention.append(Backend.cpu(), host, q, k, v, rope, null);
            Attention.attend(Backend.cpu(), host, q, expected, expectedLse, options, null);
            Attention.append(gpu, device, dq, dk, dv, rope, null);
            gpu.poison(out);
            gpu.poison(lse);
            Attention.attend(gpu, device, dq, out, lse, options, workspace);
            assertClose(what + " rotated q", gpu, dq, q);
            assertClose(what + " keys", gpu, dKeys, keys);
            assertClose(what + " values", gpu, dValues, values);
            assertClose(what + " out", gpu, out, expected);
            assertClose(what + " lse", gpu, lse, expectedLse, Compare.boundFor(dtype));
        }
    }

    static int blocksNeeded(Shape s) {
        int blocks = 0;
        for (int b = 0; b < s.cached.length; b++) blocks += (s.cached[b] + s.fresh[b] + s.blockSize - 1) / s.blockSize;
        return blocks;
    }

    /** Block tables over blocks drawn at random from a pool of {@code numBlocks}: the pages of a sequence are not in order. */
    static int[][] shuffledTables(Random random, Shape s, int numBlocks) {
        List<Integer> pool = new ArrayList<>(IntStream.range(0, numBlocks).boxed().toList());
        Collections.shuffle(pool, random);
        int[][] tables = new int[s.cached.length][];
        int next = 0;
        for (int b = 0; b < tables.length; b++) {
            tables[b] = new int[(s.cached[b] + s.fresh[b] + s.blockSize - 1) / s.blockSize];
            for (int j = 0; j < tables[b].length; j++) tables[b][j] = pool.get(next++);
        }
        return tables;
    }

    /**
     * The tensor-core prefill's edges in f16 and bf16 at every head_dim: new-token counts around
     * its 16-row warp tiles and 128-row blocks (1, 15, 16, 17, 127, 128, 129) beside each other
     * in one batch, with and without a cached prefix, contexts across pages of 16, 17 and 32 keys
     * (shuffled), GQA groups 1 and 4; causal, bidirectional, a narrow sliding window with soft-cap
     * and a two-sided window with a scale; split and unsplit. The cache is written directly (no
     * RoPE on either side), so both sides see the same inputs and the lse is held to 5e-6: the
     * kernel sums the unrounded fp32 probabilities, not the rounded ones that multiply V.
     */
    @GpuTest
    void prefillKernelEdgesMatchTheReference() {
        Random random = new Random(61);
        Shape[] shapes = {
            new Shape(16, new int[] {0, 5, 40}, new int[] {17, 1, 129}, 4, 1, 128),  // GQA 4; 1, 17 and 129 new tokens
            new Shape(17, new int[] {3, 0}, new int[] {128, 15}, 2, 2, 64),          // GQA 1, odd pages; 128 and 15
            new Shape(16, new int[] {100}, new int[] {127}, 4, 1, 96),                 // a cached prefix of 100, 127 new
            new Shape(32, new int[] {0, 33}, new int[] {16, 16}, 2, 2, 256),           // exactly one warp tile each
            new Shape(16, new int[] {20}, new int[] {50}, 4, 4, 80),                   // head_dim 80 (a loader remainder)
        };
        AttentionOptions[] options = {
            AttentionOptions.decoder(),
            AttentionOptions.encoder(),
            AttentionOptions.decoder().withWindow(5, -1).withSoftcap(20f),             // most tiles of a block masked or skipped
            AttentionOptions.encoder().withWindow(37, 3).withScale(0.3f),
        };
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.BF16, DType.F16})
                for (Shape shape : shapes)
                    for (int o = 0; o < options.length; o++)
                        checkPrefill(gpu, random, dtype, shape, options[o], o % 2 == 0 ? 1 : 3);
        }
    }

    private static void checkPrefill(CudaBackend gpu, Random random, DType dtype, Shape s, AttentionOptions options, int splits) {
        String what = "prefill " + dtype.label() + " block " + s.blockSize + " cached " + java.util.Arrays.toString(s.cached) + " new "
                + java.util.Arrays.toString(s.fresh) + " heads " + s.qHeads + "/" + s.kvHeads + " d " + s.headDim + " " + options
                + " splits " + splits;
        int numBlocks = blocksNeeded(s) + 2;
        int[][] tables = shuffledTables(random, s, numBlocks);
        int tokens = IntStream.of(s.fresh).sum();
        try (Tensor keys = RandomTensors.normal(random, dtype, 1f, numBlocks, s.blockSize, s.kvHeads, s.headDim);
             Tensor values = RandomTensors.normal(random, dtype, 1f, numBlocks, s.blockSize, s.kvHeads, s.headDim);
             Tensor q = RandomTensors.normal(random, dtype, 1f, tokens, s.qHeads, s.headDim);
             Tensor dKeys = gpu.copyOf(keys); Tensor dValues = gpu.copyOf(values); Tensor dq = gpu.copyOf(q);
             Tensor expected = Tensor.allocateHost(dtype, tokens, s.qHeads, s.headDim);
             Tensor expectedLse = Tensor.allocateHost(DType.F32, tokens, s.qHeads);
             Tensor out = gpu.allocate(dtype, tokens, s.qHeads, s.headDim);
             Tensor lse = gpu.allocate(DType.F32, tokens, s.qHeads);
             KvBatch host = KvBatch.of(Backend.cpu(), keys, values, tables, s.cached, s.fresh);
             KvBatch device = KvBatch.of(gpu, dKeys, dValues, tables, s.cached, s.fresh);
             AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, device, s.qHeads, splits)) {
            Attention.attend(Backend.cpu(), host, q, expected, expectedLse, options, null);
            gpu.poison(out);
            gpu.poison(lse);
            Attention.attend(gpu, device, dq, out, lse, options, workspace);
            assertClose(what + " out", gpu, out, expected);
            assertClose(what + " lse", gpu, lse, expectedLse, 5e-6);
        }
    }

    @GpuTest
    void appendWithLlama3ScalingMatchesTheReference() {
        // Llama 3.1's scaling (factor 8, low/high frequency factors 1 and 4) with original contexts
        // that put pairs of every head size in all three regimes (unchanged, blended, divided);
        // positions from the cache slots and explicit ones far past the original context.
        Random random = new Random(47);
        Shape[] shapes = {SHAPES[0], SHAPES[1], SHAPES[2], new Shape(16, new int[] {3}, new int[] {5}, 4, 2, 256)};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (Shape shape : shapes)
                    for (boolean neox : new boolean[] {true, false}) {
                        Rope rope = new Rope(500000f, neox, 1f, new Rope.Llama3Scaling(8f, 1f, 4f, neox ? 8192 : 512));
                        checkAppend(gpu, random, dtype, shape, rope, false);
                        checkAppend(gpu, random, dtype, shape, rope.withPositionScale(0.5f), true);
                    }
        }
    }

    @GpuTest
    void appendWithLongRopeMatchesTheReference() {
        // LongRoPE with an original context of 32: sequences ending at 12, 31 and 32 tokens take the
        // short factors, those ending at 33 (a prompt, and one decode token past the edge) the long
        // ones, side by side in one launch; random factors per pair, attention factor 1.2.
        Random random = new Random(53);
        Shape[] shapes = {new Shape(16, new int[] {10, 0, 30, 31, 32}, new int[] {2, 33, 1, 1, 1}, 4, 2, 64),
            new Shape(17, new int[] {0, 32}, new int[] {31, 1}, 3, 1, 96), new Shape(16, new int[] {3}, new int[] {31}, 2, 2, 256)};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (Shape shape : shapes)
                    for (boolean neox : new boolean[] {true, false}) {
                        int pairs = shape.headDim / 2;
                        float[] shortFactors = new float[pairs], longFactors = new float[pairs];
                        for (int j = 0; j < pairs; j++) {
                            shortFactors[j] = 1 + random.nextFloat();
                            longFactors[j] = 1 + 40 * random.nextFloat();
                        }
                        Rope rope = new Rope(10000f, neox, 1f).withLongRope(new Rope.LongRope(shortFactors, longFactors, 32, 1.2f));
                        checkAppend(gpu, random, dtype, shape, rope, false);
                        checkAppend(gpu, random, dtype, shape, rope, true);
                    }
        }
    }

    /** Append alone: rotated q, and the written cache slots (poisoned first) within the bound, every other slot untouched. */
    private static void checkAppend(CudaBackend gpu, Random random, DType dtype, Shape s, Rope rope, boolean explicitPositions) {
        String what = dtype.label() + " " + rope + " cached " + java.util.Arrays.toString(s.cached) + " new "
                + java.util.Arrays.toString(s.fresh) + " heads " + s.qHeads + "/" + s.kvHeads + " d " + s.headDim
                + (explicitPositions ? " explicit positions" : "");
        int batch = s.cached.length;
        int[][] tables = new int[batch][];
        int numBlocks = 0;
        for (int b = 0; b < batch; b++) {
            tables[b] = new int[(s.cached[b] + s.fresh[b] + s.blockSize - 1) / s.blockSize];
            for (int j = 0; j < tables[b].length; j++) tables[b][j] = numBlocks++;
        }
        int tokens = IntStream.of(s.fresh).sum();
        long[] positions = random.longs(tokens, 0, 200_000).toArray();
        try (Inputs in = Inputs.random(gpu, random, dtype, s, numBlocks, tokens);
             Tensor hostPositions = Tensor.fromLongs(DType.I32, positions, tokens);
             Tensor dPositions = gpu.copyOf(hostPositions);
             Tensor expectedKeys = Tensor.allocateHost(dtype, tokens, s.kvHeads, s.headDim);
             Tensor expectedValues = Tensor.allocateHost(dtype, tokens, s.kvHeads, s.headDim);
             KvBatch host = KvBatch.of(Backend.cpu(), in.keys(), in.values(), tables, s.cached, s.fresh);
             KvBatch device = KvBatch.of(gpu, in.dKeys(), in.dValues(), tables, s.cached, s.fresh)) {
            Tensor keys = in.keys(), values = in.values(), q = in.q(), k = in.k(), v = in.v();
            Tensor dKeys = in.dKeys(), dValues = in.dValues(), dq = in.dq(), dk = in.dk(), dv = in.dv();
            float[] keysBefore = keys.toFloatArray(), valuesBefore = values.toFloatArray();
            Attention.append(Backend.cpu(), host, q, k, v, rope, explicitPositions ? hostPositions : null);
            for (int[] slot : writtenSlots(s, tables)) {
                gpu.poison(dKeys.slice(0, slot[1], slot[1] + 1).slice(1, slot[2], slot[2] + 1));
                gpu.poison(dValues.slice(0, slot[1], slot[1] + 1).slice(1, slot[2], slot[2] + 1));
            }
            Attention.append(gpu, device, dq, dk, dv, rope, explicitPositions ? dPositions : null);
            assertClose(what + " rotated q", gpu, dq, q);
            try (Tensor gotKeys = gpu.toHost(dKeys); Tensor gotValues = gpu.toHost(dValues);
                 Tensor newKeys = Tensor.allocateHost(dtype, tokens, s.kvHeads, s.headDim);
                 Tensor newValues = Tensor.allocateHost(dtype, tokens, s.kvHeads, s.headDim)) {
                float[] got = gotKeys.toFloatArray(), gotV = gotValues.toFloatArray();
                float[] want = keys.toFloatArray(), wantV = values.toFloatArray();
                boolean[] written = new boolean[numBlocks * s.blockSize];
                for (int[] slot : writtenSlots(s, tables)) {
                    int row = slot[1] * s.blockSize + slot[2];
                    written[row] = true;
                    for (int h = 0; h < s.kvHeads; h++)
                        for (int j = 0; j < s.headDim; j++) {
                            int at = (row * s.kvHeads + h) * s.headDim + j;
                            newKeys.setFloat(got[at], slot[0], h, j);
                            newValues.setFloat(gotV[at], slot[0], h, j);
                            expectedKeys.setFloat(want[at], slot[0], h, j);
                            expectedValues.setFloat(wantV[at], slot[0], h, j);
                        }
                }
                Compare.Result keyResult = Compare.check(what + " new keys", newKeys, expectedKeys);
                assertTrue(keyResult.withinBound(), keyResult.toString());
                Compare.Result valueResult = Compare.check(what + " new values", newValues, expectedValues);
                assertTrue(valueResult.withinBound(), valueResult.toString());
                int rowSize = s.kvHeads * s.headDim;
                for (int i = 0; i < got.length; i++) {
                    if (written[i / rowSize]) continue;
                    org.junit.jupiter.api.Assertions.assertEquals(keysBefore[i], got[i], what + ": unwritten key element " + i);
                    org.junit.jupiter.api.Assertions.assertEquals(valuesBefore[i], gotV[i], what + ": unwritten value element " + i);
                }
            }
        }
    }

    /**
     * A reusable decode batch grown in place for several steps with the KV length split for its
     * whole capacity (four pieces of 64 keys over room for 208), so most pieces of the short
     * sequence are empty: the same outputs as the reference every step.
     */
    @GpuTest
    void aReusableBatchSplitForItsCapacityMatchesTheReference() {
        Random random = new Random(53);
        int qHeads = 4, kvHeads = 2, d = 64, block = 16, maxLength = 200;
        int[] prompts = {10, 100};
        try (CudaBackend gpu = Backend.cuda(0);
             KvCache hostCache = KvCache.allocate(Backend.cpu(), DType.BF16, 30, block, kvHeads, d);
             KvCache deviceCache = KvCache.allocate(gpu, DType.BF16, 30, block, kvHeads, d)) {
            int[] ids = {hostCache.newSequence(), hostCache.newSequence()};
            deviceCache.newSequence();
            deviceCache.newSequence();
            for (KvCache cache : new KvCache[] {hostCache, deviceCache}) cache.extend(ids, prompts).close(); // the prompts' slots: random below
            try (Tensor prefix = RandomTensors.normal(random, DType.BF16, 1f, 30, block, kvHeads, d)) {
                hostCache.keys().copyFrom(prefix.toFloatArray());
                hostCache.values().copyFrom(prefix.toFloatArray());
                gpu.copy(deviceCache.keys(), prefix);
                gpu.copy(deviceCache.values(), prefix);
            }
            try (KvBatch host = hostCache.extendReusable(ids, new int[] {1, 1}, maxLength);
                 KvBatch device = deviceCache.extendReusable(ids, new int[] {1, 1}, maxLength);
                 AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, device, qHeads, 4)) {
                org.junit.jupiter.api.Assertions.assertEquals(4, workspace.splits());
                for (int step = 0; step < 5; step++) {
                    if (step > 0) {
                        hostCache.extend(host);
                        deviceCache.extend(device);
                    }
                    try (Tensor q = RandomTensors.normal(random, DType.BF16, 1f, 2, qHeads, d);
                         Tensor k = RandomTensors.normal(random, DType.BF16, 1f, 2, kvHeads, d);
                         Tensor v = RandomTensors.normal(random, DType.BF16, 1f, 2, kvHeads, d);
                         Tensor dq = gpu.copyOf(q); Tensor dk = gpu.copyOf(k); Tensor dv = gpu.copyOf(v);
                         Tensor expected = Tensor.allocateHost(DType.BF16, 2, qHeads, d);
                         Tensor out = gpu.allocate(DType.BF16, 2, qHeads, d)) {
                        Attention.append(Backend.cpu(), host, q, k, v, Rope.neox(10000f), null);
                        Attention.attend(Backend.cpu(), host, q, expected, null, AttentionOptions.decoder(), null);
                        Attention.append(gpu, device, dq, dk, dv, Rope.neox(10000f), null);
                        gpu.poison(out);
                        Attention.attend(gpu, device, dq, out, null, AttentionOptions.decoder(), workspace);
                        assertClose("reusable batch step " + step, gpu, out, expected);
                    }
                }
            }
        }
    }

    /**
     * The decode kernel's edges (f16/bf16, head_dim 64 and 128, blocks of 16 and 32 tokens): KV
     * lengths off the 16-key step and the block (a partly filled last block), a single block,
     * sequences with no new token beside others, GQA groups 1, 4 and 8, several new tokens whose
     * rows span row groups (the causal mask inside a step), windows that leave whole splits empty,
     * soft-cap, and many splits; poisoned outputs against the reference.
     */
    @GpuTest
    void decodeKernelEdgesMatchTheReference() {
        Random random = new Random(59);
        Shape[] shapes = {
            new Shape(16, new int[] {40, 5, 0}, new int[] {1, 1, 1}, 8, 2, 128),      // 41 keys, one block, a one-key sequence
            new Shape(16, new int[] {100, 7}, new int[] {1, 0}, 8, 1, 128),           // group 8 (two row groups); no new token
            new Shape(32, new int[] {77, 31}, new int[] {3, 1}, 4, 4, 64),            // group 1, speculative 3, blocks of 32
            new Shape(16, new int[] {130}, new int[] {2}, 8, 2, 64),                  // 2 tokens x group 4 = 8 rows, causal inside a step
        };
        AttentionOptions[] options = {
            AttentionOptions.decoder(),
            AttentionOptions.decoder().withWindow(20, -1).withSoftcap(10f),
            AttentionOptions.encoder().withWindow(7, 3),
        };
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.BF16, DType.F16})
                for (Shape shape : shapes)
                    for (AttentionOptions option : options)
                        for (int splits : new int[] {1, 2, 7})
                            check(gpu, random, dtype, shape, option, splits, Rope.neox(10000f));
        }
    }

    /**
     * The tensor-core decode kernel at awkward KV lengths, several sequences of different lengths
     * in one batch: 1, 15, 16, 17, 127 and 129 keys (a 16-key step short, exact, one over; pages of
     * 16 ending mid-way), then 40 and 70 over pages of 32 (ending mid-page) beside a sequence with
     * no new token; GQA ratios 1, 4 and 8; head_dim 64 and 128; f16 and bf16; unsplit and split
     * (so the last block of each row group merges), causal and windowed with a soft-cap; poisoned
     * outputs and lse against the reference.
     */
    @GpuTest
    void decodeAtAwkwardLengthsMatchesTheReference() {
        Random random = new Random(61);
        int[][][] batches = {
            {{0, 14, 15, 16, 126, 128}, {1, 1, 1, 1, 1, 1}, {16}},  // {cached, new, block size}
            {{39, 69, 5}, {1, 1, 0}, {32}},
        };
        int[][] heads = {{4, 4}, {8, 2}, {8, 1}};  // query heads, kv heads: GQA 1, 4, 8
        AttentionOptions[] options = {AttentionOptions.decoder(), AttentionOptions.decoder().withWindow(20, -1).withSoftcap(10f)};
        try (CudaBackend gpu = Backend.cuda(0)) {
            int n = 0;
            for (DType dtype : new DType[] {DType.BF16, DType.F16})
                for (int headDim : new int[] {64, 128})
                    for (int[][] b : batches)
                        for (int[] h : heads)
                            for (int splits : new int[] {1, 3})
                                check(gpu, random, dtype, new Shape(b[2][0], b[0], b[1], h[0], h[1], headDim), options[(n++ / 2) % 2], splits,
                                      Rope.neox(10000f));
        }
    }

    /** A random paged cache and new q, k, v on the host, and their copies on the device. */
    private record Inputs(Tensor keys, Tensor values, Tensor q, Tensor k, Tensor v,
                          Tensor dKeys, Tensor dValues, Tensor dq, Tensor dk, Tensor dv) implements AutoCloseable {
        static Inputs random(CudaBackend gpu, Random random, DType dtype, Shape s, int numBlocks, int tokens) {
            Tensor keys = RandomTensors.normal(random, dtype, 1f, numBlocks, s.blockSize, s.kvHeads, s.headDim);
            Tensor values = RandomTensors.normal(random, dtype, 1f, numBlocks, s.blockSize, s.kvHeads, s.headDim);
            Tensor q = RandomTensors.normal(random, dtype, 1f, tokens, s.qHeads, s.headDim);
            Tensor k = RandomTensors.normal(random, dtype, 1f, tokens, s.kvHeads, s.headDim);
            Tensor v = RandomTensors.normal(random, dtype, 1f, tokens, s.kvHeads, s.headDim);
            return new Inputs(keys, values, q, k, v, gpu.copyOf(keys), gpu.copyOf(values), gpu.copyOf(q), gpu.copyOf(k), gpu.copyOf(v));
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {keys, values, q, k, v, dKeys, dValues, dq, dk, dv}) t.close();
        }
    }

    /** (new-token row, block, slot in block) of every new token of the batch. */
    private static List<int[]> writtenSlots(Shape s, int[][] tables) {
        List<int[]> slots = new ArrayList<>();
        int row = 0;
        for (int b = 0; b < s.cached.length; b++)
            for (int i = 0; i < s.fresh[b]; i++, row++) {
                int t = s.cached[b] + i;
                slots.add(new int[] {row, tables[b][t / s.blockSize], t % s.blockSize});
            }
        return slots;
    }

    @GpuTest
    void decodeAfterPrefillOnTheGpuEqualsPrefillOfTheWhole() {
        // The cache workflow end to end on the GPU: a prompt (tensor-core path in 16-bit), then
        // decode steps (CUDA-core path, planned splits), against the reference's one prefill of all tokens.
        Random random = new Random(41);
        int d = 128, qHeads = 8, kvHeads = 2, prompt = 300, steps = 3, n = prompt + steps;
        for (DType dtype : FLOATS) {
            try (CudaBackend gpu = Backend.cuda(0);
                 Tensor q = RandomTensors.normal(random, dtype, 1f, n, qHeads, d);
                 Tensor k = RandomTensors.normal(random, dtype, 1f, n, kvHeads, d);
                 Tensor v = RandomTensors.normal(random, dtype, 1f, n, kvHeads, d);
                 Tensor expected = Tensor.allocateHost(dtype, n, qHeads, d);
                 Tensor actual = Tensor.allocateHost(dtype, n, qHeads, d);
                 KvCache hostCache = KvCache.allocate(Backend.cpu(), dtype, 40, 16, kvHeads, d);
                 KvCache cache = KvCache.allocate(gpu, dtype, 40, 16, kvHeads, d)) {
                Rope rope = Rope.neox(10000f);
                AttentionOptions options = AttentionOptions.decoder();
                try (KvBatch all = hostCache.extend(new int[] {hostCache.newSequence()}, new int[] {n});
                     Tensor qc = AttentionTest.copy(q)) {
                    Attention.append(Backend.cpu(), all, qc, k, v, rope, null);
                    Attention.attend(Backend.cpu(), all, qc, expected, null, options, null);
                }
                int seq = cache.newSequence();
                int done = 0;
                for (int chunk : new int[] {prompt, 1, 1, 1}) {
                    try (KvBatch step = cache.extend(new int[] {seq}, new int[] {chunk});
                         AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, step, qHeads);
                         Tensor qs = gpu.copyOf(q.slice(0, done, done + chunk)); Tensor ks = gpu.copyOf(k.slice(0, done, done + chunk));
                         Tensor vs = gpu.copyOf(v.slice(0, done, done + chunk)); Tensor out = gpu.allocate(dtype, chunk, qHeads, d)) {
                        gpu.poison(out);
                        Attention.append(gpu, step, qs, ks, vs, rope, null);
                        Attention.attend(gpu, step, qs, out, null, options, workspace);
                        try (Tensor host = gpu.toHost(out)) {
                            float[] x = host.toFloatArray();
                            for (int i = 0; i < x.length; i++) actual.setFloat(x[i], done + i / (qHeads * d), (i / d) % qHeads, i % d);
                        }
                    }
                    done += chunk;
                }
                Compare.Result result = Compare.check(dtype.label() + " decode after prefill", actual, expected);
                assertTrue(result.withinBound(), result.toString());
            }
        }
    }

    @GpuTest
    void causalMaskNeverLeaksAFutureTokenOnTheGpu() {
        // A huge future key/value must leave every earlier row bit-identical: a masked key gets
        // probability exactly 0 in both kernels (f32: CUDA cores; f16: tensor cores, 70 tokens).
        Random random = new Random(43);
        int d = 64, qHeads = 4, kvHeads = 2, n = 70, block = 16;
        int blocks = (n + block - 1) / block;
        for (DType dtype : new DType[] {DType.F32, DType.F16}) {
            try (CudaBackend gpu = Backend.cuda(0);
                 Tensor keys = RandomTensors.normal(random, dtype, 1f, blocks, block, kvHeads, d);
                 Tensor values = RandomTensors.normal(random, dtype, 1f, blocks, block, kvHeads, d);
                 Tensor hq = RandomTensors.normal(random, dtype, 1f, n, qHeads, d);
                 Tensor dKeys = gpu.copyOf(keys); Tensor dValues = gpu.copyOf(values); Tensor q = gpu.copyOf(hq);
                 Tensor out = gpu.allocate(dtype, n, qHeads, d);
                 KvBatch batch = KvBatch.of(gpu, dKeys, dValues, new int[][] {IntStream.range(0, blocks).map(i -> blocks - 1 - i).toArray()},
                         new int[] {0}, new int[] {n})) {
                Attention.attend(gpu, batch, q, out, null, AttentionOptions.decoder(), null);
                float[] before;
                try (Tensor host = gpu.toHost(out)) {
                    before = host.toFloatArray();
                }
                for (int future : new int[] {1, 15, 16, 63, 64, 69}) {
                    long blockId = blocks - 1 - future / block;
                    float savedK = keys.getFloat(blockId, future % block, 0, 0), savedV = values.getFloat(blockId, future % block, 0, 0);
                    keys.setFloat(50f, blockId, future % block, 0, 0);
                    values.setFloat(1000f, blockId, future % block, 0, 0);
                    gpu.copy(dKeys, keys);
                    gpu.copy(dValues, values);
                    gpu.poison(out);
                    Attention.attend(gpu, batch, q, out, null, AttentionOptions.decoder(), null);
                    try (Tensor host = gpu.toHost(out)) {
                        float[] after = host.toFloatArray();
                        int rowSize = qHeads * d;
                        for (int i = 0; i < future * rowSize; i++)
                            org.junit.jupiter.api.Assertions.assertEquals(before[i], after[i],
                                    dtype.label() + ": row " + i / rowSize + " saw future token " + future);
                    }
                    keys.setFloat(savedK, blockId, future % block, 0, 0);
                    values.setFloat(savedV, blockId, future % block, 0, 0);
                }
            }
        }
    }

    @GpuTest
    void mergeMatchesTheReference() {
        Random random = new Random(37);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType partType : FLOATS)
                for (DType outType : FLOATS)
                    for (int[] shape : new int[][] {{1, 1, 64}, {3, 7, 80}, {5, 130, 33}}) {
                        int parts = shape[0], rows = shape[1], d = shape[2];
                        try (Tensor partOuts = RandomTensors.normal(random, partType, 1f, parts, rows, d);
                             Tensor partLses = RandomTensors.normal(random, DType.F32, 3f, parts, rows)) {
                            if (parts > 1) partLses.setFloat(Float.NEGATIVE_INFINITY, 0, 0); // an empty part
                            try (Tensor dParts = gpu.copyOf(partOuts); Tensor dLses = gpu.copyOf(partLses);
                                 Tensor out = gpu.allocate(outType, rows, d); Tensor lse = gpu.allocate(DType.F32, rows);
                                 Tensor expected = Tensor.allocateHost(outType, rows, d);
                                 Tensor expectedLse = Tensor.allocateHost(DType.F32, rows)) {
                                gpu.poison(out);
                                gpu.poison(lse);
                                Attention.merge(Backend.cpu(), expected, expectedLse, partOuts, partLses);
                                Attention.merge(gpu, out, lse, dParts, dLses);
                                String what = "merge " + partType.label() + "->" + outType.label() + " " + parts + "x" + rows + "x" + d;
                                assertClose(what, gpu, out, expected, Compare.boundFor(outType));
                                assertClose(what + " lse", gpu, lse, expectedLse, 1e-5);
                            }
                        }
                    }
        }
    }
}
