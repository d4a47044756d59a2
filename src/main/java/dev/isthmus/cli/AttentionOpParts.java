package dev.isthmus.cli;

import dev.isthmus.attention.AttentionOptions;
import dev.isthmus.attention.KvBatch;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What the attention ops share: the paged KV cache and its batch description read from the file
 * ({@link KvBatch}), the mask options ({@link AttentionOptions}), and the count of visible
 * query-key pairs the benchmark rows are charged for.
 */
final class AttentionOpParts {
    private AttentionOpParts() {}

    static final Set<DType> INDICES = Set.of(DType.I32, DType.I64);

    /** The cache and the batch over it, as {@link KvBatch} names them. */
    static List<Op.TensorSpec> cacheSpecs(boolean withNewTokens) {
        List<Op.TensorSpec> specs = new ArrayList<>(List.of(
                new Op.TensorSpec("keys", "(num_blocks, block_size, Hkv, d)", Op.FLOATS, false,
                        "the paged key cache; d one of 64, 80, 96, 128, 256; q's dtype"),
                new Op.TensorSpec("values", "(num_blocks, block_size, Hkv, d)", Op.FLOATS, false, "the paged value cache; q's dtype"),
                new Op.TensorSpec("block_table", "(S, max_blocks)", INDICES, false,
                        "sequence s owns blocks block_table[s][0..]; entries past its length are ignored"),
                new Op.TensorSpec("cached_lens", "(S)", INDICES, false, "tokens of each sequence cached before the new ones")));
        if (withNewTokens)
            specs.add(new Op.TensorSpec("new_tokens", "(S)", INDICES, false, "new tokens (query rows) of each sequence; T = their sum"));
        return specs;
    }

    static final List<Op.OptionSpec> MASK = List.of(
            new Op.OptionSpec("causal", Op.OptionType.BOOLEAN, "true", "key t visible only up to the query's position (bottom-right aligned)"),
            new Op.OptionSpec("scale", Op.OptionType.FLOAT, null, "softmax scale; default 1/sqrt(d)"),
            new Op.OptionSpec("window_left", Op.OptionType.INT, "-1", "keys before the query that stay visible; -1 all"),
            new Op.OptionSpec("window_right", Op.OptionType.INT, "-1", "keys after the query that stay visible; -1 all"),
            new Op.OptionSpec("softcap", Op.OptionType.FLOAT, "0", "s = softcap * tanh(s / softcap); 0 none"));

    /** Every given input in q's dtype but the index tensors, which become i32. */
    static Map<String, DType> kernelDtypes(Map<String, DType> given) {
        Map<String, DType> needed = Op.allLike(given, "q");
        for (String name : List.of("block_table", "cached_lens", "new_tokens", "positions"))
            if (given.containsKey(name)) needed.put(name, DType.I32);
        return needed;
    }

    static AttentionOptions mask(OpOptions options) {
        float scale = options.isSet("scale") ? options.getFloat("scale") : Float.NaN;
        if (options.isSet("scale") && !(scale > 0)) throw new IllegalArgumentException("option 'scale' must be > 0, got " + scale);
        float softcap = options.getFloat("softcap");
        if (softcap < 0) throw new IllegalArgumentException("option 'softcap' must be >= 0, got " + softcap);
        return new AttentionOptions(options.getBoolean("causal"), scale, window(options, "window_left"), window(options, "window_right"), softcap);
    }

    private static int window(OpOptions options, String name) {
        long w = options.getInt(name);
        if (w < -1 || w > Integer.MAX_VALUE) throw new IllegalArgumentException("option '" + name + "' must be -1 (all) or >= 0, got " + w);
        return (int) w;
    }

    /**
     * The batch of the file: per sequence its cached length, its new tokens (1 each when
     * {@code newTokens} is null, as in decoding) and the blocks it owns, the first
     * ceil(length / block_size) of its row of block_table. Checked here, on the host, by building
     * it over the host cache once.
     */
    static Layout layout(Map<String, Tensor> in, Tensor newTokens) {
        Tensor keys = in.get("keys"), table = in.get("block_table"), cachedLens = in.get("cached_lens");
        Checks.rank("keys", keys, 4);
        Checks.rank("block_table", table, 2);
        int sequences = Math.toIntExact(table.dim(0));
        Checks.shape("cached_lens", cachedLens, sequences);
        if (newTokens != null) Checks.shape("new_tokens", newTokens, sequences);
        int[] cached = ints(cachedLens), fresh = newTokens == null ? filledWithOnes(sequences) : ints(newTokens);
        long[] entries = table.toLongArray();
        int width = Math.toIntExact(table.dim(1));
        long blockSize = keys.dim(1);
        int[][] tables = new int[sequences][];
        for (int s = 0; s < sequences; s++) {
            long length = (long) cached[s] + fresh[s];
            long needed = blockSize < 1 || length < 1 ? 0 : (length + blockSize - 1) / blockSize; // a bad length is KvBatch's to name
            if (needed > width)
                throw new IllegalArgumentException("block_table has " + width + " columns but sequence " + s + " of length " + length
                        + " needs " + needed + " blocks of " + blockSize);
            tables[s] = new int[(int) needed];
            for (int j = 0; j < needed; j++) tables[s][j] = (int) entries[s * width + j];
        }
        Layout layout = new Layout(tables, cached, fresh);
        try (KvBatch check = layout.batch(Backend.cpu(), keys, in.get("values"))) {
            return layout;
        }
    }

    private static int[] ints(Tensor t) {
        return java.util.Arrays.stream(t.toLongArray()).mapToInt(Math::toIntExact).toArray();
    }

    private static int[] filledWithOnes(int n) {
        int[] ones = new int[n];
        java.util.Arrays.fill(ones, 1);
        return ones;
    }

    /** The block tables and lengths of a batch, from which each backend's {@link KvBatch} is made. */
    record Layout(int[][] tables, int[] cached, int[] fresh) {
        KvBatch batch(Backend backend, Tensor keys, Tensor values) {
            return KvBatch.of(backend, keys, values, tables, cached, fresh);
        }

        int totalNew() {
            return java.util.Arrays.stream(fresh).sum();
        }

        long totalKv() {
            long sum = 0;
            for (int s = 0; s < cached.length; s++) sum += (long) cached[s] + fresh[s];
            return sum;
        }

        int maxKv() {
            int m = 0;
            for (int s = 0; s < cached.length; s++) m = Math.max(m, cached[s] + fresh[s]);
            return m;
        }

        /** Query-key pairs the mask leaves visible: what the FLOPs of q.k and p.v are counted over. */
        double visiblePairs(AttentionOptions mask) {
            double pairs = 0;
            int right = mask.causal() ? 0 : mask.windowRight();
            for (int s = 0; s < cached.length; s++) {
                long kv = (long) cached[s] + fresh[s];
                for (int i = 0; i < fresh[s]; i++) {
                    long p = cached[s] + i;
                    long lo = mask.windowLeft() < 0 ? 0 : Math.max(0, p - mask.windowLeft());
                    long hi = right < 0 ? kv - 1 : Math.min(kv - 1, p + right);
                    pairs += Math.max(0, hi - lo + 1);
                }
            }
            return pairs;
        }
    }

    /**
     * The {@link KvBatch} of each cache the kernel runs over (the device copy, the host one of
     * --check), made on first use and kept for the timed runs, closed with the kernel.
     */
    static final class Batches implements AutoCloseable {
        private final Layout layout;
        private final Map<Tensor, KvBatch> byKeys = new IdentityHashMap<>();

        Batches(Layout layout) {
            this.layout = layout;
        }

        KvBatch over(Backend backend, Tensor keys, Tensor values) {
            return byKeys.computeIfAbsent(keys, k -> layout.batch(backend, keys, values));
        }

        @Override
        public void close() {
            byKeys.values().forEach(KvBatch::close);
        }
    }
}
