package dev.isthmus.attention;

import static dev.isthmus.attention.AttentionGpuTest.blocksNeeded;
import static dev.isthmus.attention.AttentionGpuTest.shuffledTables;
import static dev.isthmus.testing.DeviceAssert.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.AttentionGpuTest.Shape;
import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuShapes;
import dev.isthmus.testing.GpuTest;
import java.util.Arrays;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The quantized KV caches on the GPU against the CPU reference. Append: the codes and int8 scales
 * the kernel stores equal the reference's bit for bit (without RoPE both sides quantize the same
 * f32 values; with RoPE the rotations round differently in the last bit, so a code may move by
 * one step). Attend: the kernels' output over the device's cache equals the reference computed
 * from the same bytes (copied back) within the model dtype's bound. fp8 gets per-head scales small
 * enough that some values saturate at +-448 s.
 */
class KvQuantGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};
    private static final KvCacheType[] TYPES = {KvCacheType.INT8, KvCacheType.FP8_E4M3};

    // New-token counts 1, 15, 17 and 129 (decode, the tensor-core prefill's tile edges), pages of
    // 16, 17 and 32, GQA 1 and 4, head_dim 64 and 128.
    private static final Shape[] DEVICE_SHAPES = {
        new Shape(16, new int[] {0, 37, 300}, new int[] {1, 1, 1}, 4, 1, 128),   // decode, GQA 4
        new Shape(17, new int[] {5, 0}, new int[] {15, 17}, 2, 2, 64),           // odd pages: the CUDA-core kernel
        new Shape(32, new int[] {40}, new int[] {129}, 8, 2, 64),                // a prefill past one 128-row block
        new Shape(16, new int[] {3000, 20}, new int[] {4, 1}, 4, 4, 128),        // long decode, speculative 4
    };
    private static final Shape[] SHAPES = GpuShapes.choose(DEVICE_SHAPES,
        DEVICE_SHAPES[0], DEVICE_SHAPES[1], DEVICE_SHAPES[2],
        new Shape(16, new int[] {300, 20}, new int[] {4, 1}, 4, 4, 128));

    /** The split planning's occupancy query answers for every cache type, dtype and head size a quantized cache takes. */
    @GpuTest
    void everyCacheHasAResidentBlockCount() {
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (KvCacheType type : KvCacheType.values())
                for (DType dtype : FLOATS)
                    for (int headDim : new int[] {64, 128})
                        for (int blockSize : new int[] {16, 5}) // 5: not whole 16-key steps, the CUDA-core kernel
                            try (KvCache cache = KvCache.allocate(gpu, dtype, type, 1, 4, blockSize, 2, headDim);
                                 KvBatch batch = cache.extend(new int[] {cache.newSequence()}, new int[] {1})) {
                                int blocks = AttentionCuda.decodeBlocksPerSm(gpu, batch);
                                assertTrue(blocks >= 1 && blocks <= 32, type + " " + dtype + " D=" + headDim + ": " + blocks + " blocks an SM");
                            }
        }
    }

    @GpuTest
    void appendStoresTheReferenceCodes() {
        Random random = new Random(81);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (KvCacheType type : TYPES)
                    for (Shape shape : SHAPES) {
                        checkAppend(gpu, random, dtype, type, shape, null);
                        checkAppend(gpu, random, dtype, type, shape, Rope.neox(10000f));
                    }
        }
    }

    @GpuTest
    void attendOverTheStoredCodesMatchesTheReference() {
        Random random = new Random(83);
        AttentionOptions[] options = {AttentionOptions.decoder(), AttentionOptions.encoder().withWindow(20, 3).withSoftcap(15f)};
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (KvCacheType type : TYPES)
                    for (Shape shape : SHAPES)
                        for (int o = 0; o < options.length; o++) checkAttend(gpu, random, dtype, type, shape, options[o], o == 0 ? 1 : 3);
        }
    }

    /** The cache of one layer (fp8: random per-head scales in [0.002, 0.01), so |x| > 0.9 to 4.5 saturates). */
    private static KvCache cache(Backend backend, Random random, DType dtype, KvCacheType type, Shape s, int numBlocks) {
        if (type == KvCacheType.INT8) return KvCache.allocate(backend, dtype, type, 1, numBlocks, s.blockSize(), s.kvHeads(), s.headDim());
        float[] ks = new float[s.kvHeads()], vs = new float[s.kvHeads()];
        for (int h = 0; h < s.kvHeads(); h++) {
            ks[h] = 0.002f + 0.008f * random.nextFloat();
            vs[h] = 0.002f + 0.008f * random.nextFloat();
        }
        return KvCache.allocateFp8(backend, dtype, 1, numBlocks, s.blockSize(), s.kvHeads(), s.headDim(), ks, vs);
    }

    private static void checkAppend(CudaBackend gpu, Random random, DType dtype, KvCacheType type, Shape s, Rope rope) {
        String what = "append " + dtype.label() + " " + type.label() + " " + describe(s) + " " + rope;
        int numBlocks = blocksNeeded(s) + 2;
        int[][] tables = shuffledTables(random, s, numBlocks);
        int[] total = totals(s);
        int tokens = IntStream.of(total).sum();
        long seed = random.nextLong();
        try (KvCache device = cache(gpu, new Random(seed), dtype, type, s, numBlocks);
             KvCache host = cache(Backend.cpu(), new Random(seed), dtype, type, s, numBlocks);
             Tensor q = RandomTensors.normal(random, dtype, 1f, tokens, s.qHeads(), s.headDim());
             Tensor k = RandomTensors.normal(random, dtype, 1f, tokens, s.kvHeads(), s.headDim());
             Tensor v = RandomTensors.normal(random, dtype, 1f, tokens, s.kvHeads(), s.headDim());
             Tensor dq = gpu.copyOf(q); Tensor dk = gpu.copyOf(k); Tensor dv = gpu.copyOf(v);
             KvBatch hostBatch = batch(Backend.cpu(), host, tables, new int[total.length], total);
             KvBatch deviceBatch = batch(gpu, device, tables, new int[total.length], total)) {
            // Slots nobody writes stay zero on both sides.
            for (Tensor t : new Tensor[] {device.keys(), device.values(), device.keyScales(0), device.valueScales(0)})
                if (type == KvCacheType.INT8 || t.dtype() == DType.I8) zero(gpu, t);
            Attention.append(Backend.cpu(), hostBatch, q, k, v, rope, null);
            Attention.append(gpu, deviceBatch, dq, dk, dv, rope, null);
            assertClose(what + " rotated q", gpu, dq, q);
            try (Tensor keys = gpu.toHost(device.keys()); Tensor values = gpu.toHost(device.values());
                 Tensor keyScales = gpu.toHost(device.keyScales(0)); Tensor valueScales = gpu.toHost(device.valueScales(0))) {
                if (rope == null) {
                    assertArrayEquals(host.keys().toLongArray(), keys.toLongArray(), what + " key codes");
                    assertArrayEquals(host.values().toLongArray(), values.toLongArray(), what + " value codes");
                    assertArrayEquals(bits(host.keyScales(0)), bits(keyScales), what + " key scales");
                    assertArrayEquals(bits(host.valueScales(0)), bits(valueScales), what + " value scales");
                } else { // a rotated value a last bit apart may round to the next code
                    assertArrayEquals(host.values().toLongArray(), values.toLongArray(), what + " value codes");
                    try (Tensor got = dequantized(type, keys, keyScales, s); Tensor want = dequantized(type, host.keys(), host.keyScales(0), s)) {
                        assertClose(what + " keys", Backend.cpu(), got, want, 1e-3);
                    }
                }
            }
        }
    }

    private static void checkAttend(CudaBackend gpu, Random random, DType dtype, KvCacheType type, Shape s, AttentionOptions options,
                                    int splits) {
        String what = "attend " + dtype.label() + " " + type.label() + " " + describe(s) + " " + options + " splits " + splits;
        int numBlocks = blocksNeeded(s) + 2;
        int[][] tables = shuffledTables(random, s, numBlocks);
        int[] total = totals(s);
        int all = IntStream.of(total).sum(), tokens = IntStream.of(s.fresh()).sum();
        try (KvCache device = cache(gpu, random, dtype, type, s, numBlocks);
             Tensor q = RandomTensors.normal(random, dtype, 1f, all, s.qHeads(), s.headDim());
             Tensor k = RandomTensors.normal(random, dtype, 1f, all, s.kvHeads(), s.headDim());
             Tensor v = RandomTensors.normal(random, dtype, 1f, all, s.kvHeads(), s.headDim());
             Tensor dq = gpu.copyOf(q); Tensor dk = gpu.copyOf(k); Tensor dv = gpu.copyOf(v);
             Tensor query = RandomTensors.normal(random, dtype, 1f, tokens, s.qHeads(), s.headDim());
             Tensor dQuery = gpu.copyOf(query);
             Tensor out = gpu.allocate(dtype, tokens, s.qHeads(), s.headDim());
             Tensor lse = gpu.allocate(DType.F32, tokens, s.qHeads());
             Tensor expected = Tensor.allocateHost(dtype, tokens, s.qHeads(), s.headDim());
             Tensor expectedLse = Tensor.allocateHost(DType.F32, tokens, s.qHeads())) {
            try (KvBatch fill = batch(gpu, device, tables, new int[total.length], total)) {
                Attention.append(gpu, fill, dq, dk, dv, Rope.neox(10000f), null);
            }
            try (Tensor keys = gpu.toHost(device.keys()); Tensor values = gpu.toHost(device.values());
                 Tensor keyScales = gpu.toHost(device.keyScales(0)); Tensor valueScales = gpu.toHost(device.valueScales(0));
                 KvBatch hostBatch = KvBatch.of(Backend.cpu(), dtype, type, keys, values, keyScales, valueScales, tables, s.cached(), s.fresh());
                 KvBatch deviceBatch = batch(gpu, device, tables, s.cached(), s.fresh());
                 AttentionWorkspace workspace = AttentionWorkspace.allocate(gpu, deviceBatch, s.qHeads(), splits)) {
                Attention.attend(Backend.cpu(), hostBatch, query, expected, expectedLse, options, null);
                gpu.poison(out);
                gpu.poison(lse);
                Attention.attend(gpu, deviceBatch, dQuery, out, lse, options, workspace);
                assertClose(what + " out", gpu, out, expected);
                assertClose(what + " lse", gpu, lse, expectedLse, Compare.boundFor(dtype));
            }
        }
    }

    private static void zero(Backend backend, Tensor t) {
        try (Tensor zeros = Tensor.allocateHost(t.dtype(), t.shape())) { // a host allocation starts zeroed
            backend.copy(t, zeros);
        }
    }

    private static KvBatch batch(Backend backend, KvCache cache, int[][] tables, int[] cached, int[] fresh) {
        return KvBatch.of(backend, cache.dtype(), cache.type(), cache.keys(), cache.values(), cache.keyScales(0), cache.valueScales(0), tables,
                cached, fresh);
    }

    /** A host cache's codes as f32 values [numBlocks, blockSize, kvHeads, headDim]. */
    private static Tensor dequantized(KvCacheType type, Tensor codes, Tensor scales, Shape s) {
        long[] c = codes.toLongArray();
        float[] sc = scales.toFloatArray(), x = new float[c.length];
        for (int i = 0; i < c.length; i++) {
            int row = i / s.headDim();
            x[i] = KvQuantization.dequantize(type, (byte) c[i], type == KvCacheType.INT8 ? sc[row] : sc[row % s.kvHeads()]);
        }
        return Tensor.fromFloats(DType.F32, x, codes.shape());
    }

    private static int[] bits(Tensor t) {
        float[] f = t.toFloatArray();
        int[] out = new int[f.length];
        for (int i = 0; i < f.length; i++) out[i] = Float.floatToRawIntBits(f[i]);
        return out;
    }

    private static String describe(Shape s) {
        return "block " + s.blockSize() + " cached " + Arrays.toString(s.cached()) + " new " + Arrays.toString(s.fresh()) + " heads " + s.qHeads() + "/"
                + s.kvHeads() + " d " + s.headDim();
    }

    private static int[] totals(Shape s) {
        int[] total = new int[s.cached().length];
        for (int b = 0; b < total.length; b++) total[b] = s.cached()[b] + s.fresh()[b];
        return total;
    }
}
