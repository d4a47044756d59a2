package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.Rope;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The attention ops with --backend cuda: a paged cache of shuffled 17-token blocks, sequences of
 * awkward lengths (long enough for decode to split the KV length), head_dim 128 and 80, GQA;
 * --check passes, --bench prints its row, and the output file matches the attention API on the CPU.
 */
class AttentionOpsGpuTest extends OpTestSupport {
    private static final int BLOCK = 17, KV_HEADS = 2, Q_HEADS = 6;

    @GpuTest
    void prefillAndDecodeOnTheGpuMatchTheReference() throws Exception {
        for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16})
            for (int headDim : new int[] {128, 80}) {
                long[] cached = {0, 1000, 3};
                long[] fresh = {70, 33, 1};
                Map<String, Tensor> in = cache(dtype, headDim, cached, fresh);
                in.put("q", random(dtype, 104, Q_HEADS, headDim));
                Map<String, Tensor> out = runOnGpu("attention-prefill", in, "attention-prefill,b3-tokens104-ctx1033," + dtype.label());
                expectAttend(in, cached, fresh, AttentionOptions.decoder(), out);

                long[] context = {1999, 17, 4000};
                Map<String, Tensor> dec = cache(dtype, headDim, context, null);
                dec.put("q", random(dtype, 3, Q_HEADS, headDim));
                out = runOnGpu("attention-decode", dec, "attention-decode,b3-ctx4001," + dtype.label(), "--set", "window_left=1500");
                expectAttend(dec, context, new long[] {1, 1, 1}, AttentionOptions.decoder().withWindow(1500, -1), out);
            }
    }

    @GpuTest
    void ropeAppendAndMergeOnTheGpuMatchTheReference() throws Exception {
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            long[] cached = {5, 40};
            long[] fresh = {30, 1};
            Map<String, Tensor> in = cache(dtype, 128, cached, fresh);
            in.put("q", random(dtype, 31, Q_HEADS, 128));
            in.put("k", random(dtype, 31, KV_HEADS, 128));
            in.put("v", random(dtype, 31, KV_HEADS, 128));
            Map<String, Tensor> out = runOnGpu("rope-append", in, "rope-append,b2-tokens31," + dtype.label());
            Tensor q = keep(in.get("q").to(dtype)), keys = keep(in.get("keys").to(dtype)), values = keep(in.get("values").to(dtype));
            try (KvBatch b = KvBatch.of(CPU, keys, values, tables(in, cached, fresh), intArray(cached), intArray(fresh))) {
                Attention.append(CPU, b, q, in.get("k"), in.get("v"), Rope.neox(10000f), null);
            }
            assertClose("rotated q", out.get("q"), q, Compare.boundFor(dtype));
            assertClose("keys", out.get("keys"), keys, Compare.boundFor(dtype));
            assertEquals(0.0, Compare.relativeError(out.get("values"), values), "values are copied, not computed");

            Tensor parts = random(dtype, 5, 37, Q_HEADS, 128), lses = random(DType.F32, 5, 37, Q_HEADS);
            out = runOnGpu("attention-merge", Map.of("part_outs", parts, "part_lses", lses), "attention-merge,p5-rows222-d128," + dtype.label());
            Tensor merged = expected(dtype, 37, Q_HEADS, 128), lse = expected(DType.F32, 37, Q_HEADS);
            Attention.merge(CPU, merged, lse, parts, lses);
            assertClose("merged out", out.get("out"), merged, Compare.boundFor(dtype));
            assertClose("merged lse", out.get("lse"), lse, 1e-5);
        }
    }

    private void expectAttend(Map<String, Tensor> in, long[] cached, long[] fresh, AttentionOptions mask, Map<String, Tensor> out) {
        Tensor q = in.get("q");
        Tensor expected = expected(q.dtype(), q.shape()), lse = expected(DType.F32, q.dim(0), q.dim(1));
        try (KvBatch b = KvBatch.of(CPU, in.get("keys"), in.get("values"), tables(in, cached, fresh), intArray(cached), intArray(fresh))) {
            Attention.attend(CPU, b, q, expected, lse, mask, null);
        }
        assertClose(q.dtype() + " out", out.get("out"), expected, Compare.boundFor(q.dtype()));
        assertClose(q.dtype() + " lse", out.get("lse"), lse, Compare.boundFor(q.dtype()));
    }

    /** A cache with each sequence's blocks shuffled over the pool; block_table padded with -1. */
    private Map<String, Tensor> cache(DType dtype, int headDim, long[] cached, long[] fresh) {
        int sequences = cached.length, width = 0, total = 0;
        int[] needed = new int[sequences];
        for (int s = 0; s < sequences; s++) {
            needed[s] = (int) ((cached[s] + (fresh == null ? 1 : fresh[s]) + BLOCK - 1) / BLOCK);
            width = Math.max(width, needed[s]);
            total += needed[s];
        }
        List<Long> ids = new ArrayList<>();
        for (long i = 0; i < total + 3; i++) ids.add(i);
        Collections.shuffle(ids, random);
        long[] table = new long[sequences * width];
        java.util.Arrays.fill(table, -1);
        for (int s = 0, next = 0; s < sequences; s++)
            for (int j = 0; j < needed[s]; j++) table[s * width + j] = ids.get(next++);
        Map<String, Tensor> in = new HashMap<>();
        in.put("keys", random(dtype, total + 3, BLOCK, KV_HEADS, headDim));
        in.put("values", random(dtype, total + 3, BLOCK, KV_HEADS, headDim));
        in.put("block_table", keep(Tensor.fromLongs(DType.I32, table, sequences, width)));
        in.put("cached_lens", keep(Tensor.fromLongs(DType.I32, cached, sequences)));
        if (fresh != null) in.put("new_tokens", keep(Tensor.fromLongs(DType.I32, fresh, sequences)));
        return in;
    }

    /** Each sequence's owned blocks, as the op reads them from block_table. */
    private static int[][] tables(Map<String, Tensor> in, long[] cached, long[] fresh) {
        Tensor t = in.get("block_table");
        long[] all = t.toLongArray();
        int width = (int) t.dim(1);
        int[][] tables = new int[cached.length][];
        for (int s = 0; s < cached.length; s++) {
            tables[s] = new int[(int) ((cached[s] + fresh[s] + BLOCK - 1) / BLOCK)];
            for (int j = 0; j < tables[s].length; j++) tables[s][j] = (int) all[s * width + j];
        }
        return tables;
    }

    private static int[] intArray(long[] values) {
        return java.util.Arrays.stream(values).mapToInt(Math::toIntExact).toArray();
    }
}
