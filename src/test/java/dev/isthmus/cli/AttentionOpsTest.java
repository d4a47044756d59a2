package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.attention.Rope;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The attention ops of `isthmus op` (attention-prefill, attention-decode, rope-append,
 * attention-merge) through the command-line entry point on the CPU backend: a paged cache with
 * shuffled blocks and padded block tables written from Java, outputs read back and compared bit
 * for bit with the attention room's API called directly; bench rows; errors.
 */
class AttentionOpsTest extends OpTestSupport {
    private static final int BLOCK = 3, KV_HEADS = 2, Q_HEADS = 4, HEAD_DIM = 64, BLOCKS = 8;
    /** Sequence 0 owns blocks 5, 2, 7; sequence 1 owns 0, 4 (then padding -1, which the op ignores). */
    private static final int[][] TABLES = {{5, 2, 7}, {0, 4}};

    /** The cache and its batch: cached lengths {@code cached}, new tokens {@code fresh} (null: one each). */
    private Map<String, Tensor> cache(DType dtype, long[] cached, long[] fresh) {
        Map<String, Tensor> in = new HashMap<>();
        in.put("keys", random(dtype, BLOCKS, BLOCK, KV_HEADS, HEAD_DIM));
        in.put("values", random(dtype, BLOCKS, BLOCK, KV_HEADS, HEAD_DIM));
        in.put("block_table", keep(Tensor.fromLongs(DType.I64, new long[] {5, 2, 7, 0, 4, -1}, 2, 3)));
        in.put("cached_lens", keep(Tensor.fromLongs(DType.I32, cached, 2)));
        if (fresh != null) in.put("new_tokens", keep(Tensor.fromLongs(DType.I32, fresh, 2)));
        return in;
    }

    private static KvBatch batch(Map<String, Tensor> in, Tensor keys, Tensor values, int[] cached, int[] fresh) {
        return KvBatch.of(CPU, keys, values, new int[][] {TABLES[0], TABLES[1]}, cached, fresh);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "F16", "BF16"})
    void prefillMatchesTheReference(DType dtype) throws IOException {
        Map<String, Tensor> in = cache(dtype, new long[] {2, 0}, new long[] {6, 5});
        Tensor q = random(dtype, 11, Q_HEADS, HEAD_DIM);
        in.put("q", q);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "attention-prefill", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "window_left=3", "--set", "scale=0.2");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check out:") && r.out.contains("check lse:"), r.out);
        assertTrue(r.err.contains("converting 'block_table' from i64 to i32"), r.err);
        Tensor expected = expected(dtype, 11, Q_HEADS, HEAD_DIM), lse = expected(DType.F32, 11, Q_HEADS);
        try (KvBatch b = batch(in, in.get("keys"), in.get("values"), new int[] {2, 0}, new int[] {6, 5})) {
            Attention.attend(CPU, b, q, expected, lse, AttentionOptions.decoder().withWindow(3, -1).withScale(0.2f), null);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(lse, f.tensor("lse"));
        }
    }

    @Test
    void decodeMatchesTheReferenceAndCountsItsBench() throws IOException {
        Map<String, Tensor> in = cache(DType.BF16, new long[] {8, 2}, null);
        Tensor q = random(DType.BF16, 2, Q_HEADS, HEAD_DIM);
        in.put("q", q);
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "attention-decode", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "softcap=5", "--set", "causal=false", "--bench", "2", "--warmup", "1");
        assertEquals(0, r.status, r.err);
        // K and V of 9 + 3 tokens (2 heads of 64 bf16), q and out (2 rows of 4 heads), lse (2 * 4 f32); 4 * 4 * 64 FLOPs per pair
        long bytes = 2L * 12 * 2 * 64 * 2 + 2L * 2 * 4 * 64 * 2 + 2 * 4 * 4;
        assertTrue(r.out.contains("attention-decode,b2-ctx9,bf16,") && r.out.contains("," + bytes + "," + (4 * 4 * 64 * 12) + "\n"), r.out);
        Tensor expected = expected(DType.BF16, 2, Q_HEADS, HEAD_DIM), lse = expected(DType.F32, 2, Q_HEADS);
        try (KvBatch b = batch(in, in.get("keys"), in.get("values"), new int[] {8, 2}, new int[] {1, 1})) {
            Attention.attend(CPU, b, q, expected, lse, AttentionOptions.encoder().withSoftcap(5f), null);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(lse, f.tensor("lse"));
        }
    }

    @Test
    void prefillFlopsCountOnlyTheCausallyVisiblePairs() throws IOException {
        Map<String, Tensor> in = cache(DType.F32, new long[] {2, 0}, new long[] {6, 5});
        in.put("q", random(DType.F32, 11, Q_HEADS, HEAD_DIM));
        Run r = cli("op", "attention-prefill", "--in", write("in", in).toString(), "--backend", "cpu", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        // sequence 0: rows at positions 2..7 see 3..8 keys (33); sequence 1: 1..5 (15)
        assertTrue(r.out.contains("attention-prefill,b2-tokens11-ctx8,f32,") && r.out.contains("," + (4L * 4 * 64 * 48) + "\n"), r.out);
    }

    @ParameterizedTest
    @EnumSource(value = DType.class, names = {"F32", "BF16"})
    void ropeAppendWritesTheCacheAndRotatesQ(DType dtype) throws IOException {
        Map<String, Tensor> in = cache(dtype, new long[] {4, 1}, new long[] {3, 2});
        Tensor q = random(dtype, 5, Q_HEADS, HEAD_DIM), k = random(dtype, 5, KV_HEADS, HEAD_DIM), v = random(DType.F32, 5, KV_HEADS, HEAD_DIM);
        Tensor positions = keep(Tensor.fromLongs(DType.I64, new long[] {10, 11, 12, 0, 7}, 5));
        in.putAll(Map.of("q", q, "k", k, "v", v, "positions", positions));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "rope-append", "--in", write("in", in).toString(), "--out", out.toString(), "--backend", "cpu", "--check",
                "--set", "neox=false", "--set", "base=500000", "--set", "position_scale=0.25", "--set", "llama3_factor=8",
                "--set", "original_max_positions=64");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("check q:") && r.out.contains("check keys:") && r.out.contains("check values:"), r.out);
        Tensor expectedQ = keep(q.to(dtype)), keys = keep(in.get("keys").to(dtype)), values = keep(in.get("values").to(dtype));
        try (KvBatch b = batch(in, keys, values, new int[] {4, 1}, new int[] {3, 2}); Tensor vx = v.to(dtype); Tensor p = positions.to(DType.I32)) {
            Attention.append(CPU, b, expectedQ, k, vx, Rope.interleaved(500000f).withPositionScale(0.25f)
                    .withLlama3Scaling(new Rope.Llama3Scaling(8f, 1f, 4f, 64)), p);
        }
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expectedQ, f.tensor("q"));
            assertSame(keys, f.tensor("keys"));
            assertSame(values, f.tensor("values"));
        }
    }

    @Test
    void mergeMatchesTheReference() throws IOException {
        Tensor parts = random(DType.F32, 3, 5, 2, HEAD_DIM);
        float[] l = keep(Tensor.fromFloats(DType.F32, new float[30], 3, 5, 2)).toFloatArray();
        for (int i = 0; i < l.length; i++) l[i] = i % 7 == 3 ? Float.NEGATIVE_INFINITY : (float) random.nextGaussian() * 3;
        Tensor lses = keep(Tensor.fromFloats(DType.F32, l, 3, 5, 2));
        Path out = dir.resolve("out.safetensors");
        Run r = cli("op", "attention-merge", "--in", write("in", Map.of("part_outs", parts, "part_lses", lses)).toString(), "--out", out.toString(),
                "--backend", "cpu", "--check", "--bench", "1", "--warmup", "0");
        assertEquals(0, r.status, r.err);
        assertTrue(r.out.contains("attention-merge,p3-rows10-d64,f32,") && r.out.contains("," + (4 * 10 * (64 * 4 + 4)) + ",0\n"), r.out);
        Tensor expected = expected(DType.F32, 5, 2, HEAD_DIM), lse = expected(DType.F32, 5, 2);
        Attention.merge(CPU, expected, lse, parts, lses);
        try (SafetensorsFile f = SafetensorsFile.open(out)) {
            assertSame(expected, f.tensor("out"));
            assertSame(lse, f.tensor("lse"));
        }
    }

    @Test
    void helpListsTheTensorsAndOptions() {
        assertHelpShows("attention-prefill", "q ", "keys ", "values ", "block_table ", "cached_lens ", "new_tokens ", "(T, Hq, d)", "causal",
                "scale", "window_left", "window_right", "softcap", "out ", "lse ");
        assertHelpShows("attention-decode", "(S, Hq, d)", "(S, Hq)");
        assertFalse(cli("op", "attention-decode", "--help").out.contains("new_tokens"), "decode has one new token per sequence");
        assertHelpShows("rope-append", "k ", "v ", "positions?", "base", "neox", "position_scale", "rope ", "llama3_factor",
                "low_freq_factor", "high_freq_factor", "original_max_positions");
        assertHelpShows("attention-merge", "part_outs", "part_lses", "(P, ..., d)");
    }

    @Test
    void errorsNameTheTensorOrOption() throws IOException {
        Map<String, Tensor> good = cache(DType.F32, new long[] {2, 0}, new long[] {6, 5});
        good.put("q", random(DType.F32, 11, Q_HEADS, HEAD_DIM));
        good.put("block_table", ints2(5, 2, 7, 0, 4, -1)); // i32: no conversion note before the error line
        assertError(run("attention-prefill", with(good, "q", random(DType.F32, 10, Q_HEADS, HEAD_DIM))), "q has shape [10, 4, 64], expected [11, 4, 64]");
        assertError(run("attention-prefill", with(good, "q", random(DType.F32, 11, 3, HEAD_DIM))), "q has 3 heads", "2 kv heads");
        assertError(run("attention-prefill", with(good, "new_tokens", ints(6, 10))), "block_table has 3 columns", "sequence 1 of length 10 needs 4 blocks");
        assertError(run("attention-prefill", with(good, "new_tokens", ints(6, 7))), "blockTables[1][2] = -1", "pool of 8 blocks");
        assertError(run("attention-prefill", with(good, "block_table", ints2(5, 9, 7, 0, 4, -1))), "blockTables[0][1] = 9", "pool of 8 blocks");
        assertError(run("attention-prefill", with(good, "cached_lens", ints(2, 0, 1))), "cached_lens has shape [3], expected [2]");
        assertError(run("attention-prefill", with(good, "keys", random(DType.F32, BLOCKS, BLOCK, KV_HEADS, 63),
                "values", random(DType.F32, BLOCKS, BLOCK, KV_HEADS, 63), "q", random(DType.F32, 11, Q_HEADS, 63))), "keys has head_dim 63");
        assertError(run("attention-prefill", good, "--set", "window_left=-2"), "option 'window_left' must be -1 (all) or >= 0");
        assertError(run("attention-prefill", good, "--set", "scale=0"), "option 'scale' must be > 0");
        assertError(run("attention-prefill", good, "--set", "softcap=-1"), "option 'softcap' must be >= 0");
        assertError(run("attention-prefill", without(good, "new_tokens")), "missing tensor 'new_tokens'");
        assertError(run("attention-decode", without(good, "new_tokens")), "q has shape [11, 4, 64], expected [2, 4, 64]");

        Map<String, Tensor> append = with(cache(DType.F32, new long[] {2, 0}, new long[] {1, 1}), "block_table", ints2(5, 2, 7, 0, 4, -1));
        append.putAll(Map.of("q", random(DType.F32, 2, Q_HEADS, HEAD_DIM), "k", random(DType.F32, 2, KV_HEADS, HEAD_DIM),
                "v", random(DType.F32, 2, KV_HEADS, HEAD_DIM)));
        assertError(run("rope-append", with(append, "v", random(DType.F32, 2, 1, HEAD_DIM))), "v has shape [2, 1, 64], expected [2, 2, 64]");
        assertError(run("rope-append", with(append, "positions", ints(1, 2, 3))), "positions has shape [3], expected [2]");
        assertError(run("rope-append", append, "--set", "base=1"), "option 'base' must be > 1");
        assertError(run("rope-append", append, "--set", "llama3_factor=4", "--set", "high_freq_factor=0.5"), "highFreqFactor");
        assertError(run("rope-append", append, "--set", "causal=true"), "unknown option 'causal' for rope-append");

        Tensor parts = random(DType.F32, 2, 3, HEAD_DIM);
        assertError(run("attention-merge", Map.of("part_outs", parts, "part_lses", random(DType.F32, 2, 4))), "part_lses has shape [2, 4], expected [2, 3]");
        assertError(run("attention-merge", Map.of("part_outs", random(DType.F32, 4), "part_lses", random(DType.F32, 4))), "part_outs must have rank >= 2");
    }

    // ---- helpers --------------------------------------------------------------------------------

    private Tensor ints2(long... values) {
        return keep(Tensor.fromLongs(DType.I32, values, 2, values.length / 2));
    }
}
