package dev.isthmus.cli;

import dev.isthmus.attention.Attention;
import dev.isthmus.attention.Rope;
import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * `isthmus op rope-append`: {@link Attention#append}, the new keys and values written into their
 * cache slots, keys and q rotated by RoPE first. The outputs are the whole cache after the append
 * and the rotated q.
 */
final class RopeAppendOp implements Op {
    @Override
    public String name() {
        return "rope-append";
    }

    @Override
    public String description() {
        return "rotate q and k by RoPE at their positions, then write k and v into the paged cache at slots cached_lens[s] + i";
    }

    @Override
    public List<TensorSpec> inputs() {
        List<TensorSpec> specs = new ArrayList<>(List.of(
                new TensorSpec("q", "(T, Hq, d)", FLOATS, false, "the new tokens' queries, packed by sequence; its dtype is the op's"),
                new TensorSpec("k", "(T, Hkv, d)", FLOATS, false, "the new keys; converted to q's dtype"),
                new TensorSpec("v", "(T, Hkv, d)", FLOATS, false, "the new values; converted to q's dtype")));
        specs.addAll(AttentionOpParts.cacheSpecs(true));
        specs.add(new TensorSpec("positions", "(T)", AttentionOpParts.INDICES, true, "each token's RoPE position; else cached_lens[s] + i"));
        return specs;
    }

    @Override
    public List<OptionSpec> options() {
        return List.of(
                new OptionSpec("rope", OptionType.BOOLEAN, "true", "rotate q and k; false: only append"),
                new OptionSpec("base", OptionType.FLOAT, "10000", "pair j turns by position * position_scale * base^(-2j/d)"),
                new OptionSpec("neox", OptionType.BOOLEAN, "true", "pairs (j, j + d/2) as Llama; false: adjacent (2j, 2j+1)"),
                new OptionSpec("position_scale", OptionType.FLOAT, "1", "1/factor for linear position interpolation"),
                new OptionSpec("llama3_factor", OptionType.FLOAT, "1", "Llama 3.1 frequency scaling factor; 1: none"),
                new OptionSpec("low_freq_factor", OptionType.FLOAT, "1", "llama3: wavelengths over original_max / this are divided"),
                new OptionSpec("high_freq_factor", OptionType.FLOAT, "4", "llama3: wavelengths under original_max / this stay"),
                new OptionSpec("original_max_positions", OptionType.INT, "8192", "llama3: the original context length"));
    }

    @Override
    public List<TensorSpec> outputs() {
        return List.of(
                new TensorSpec("q", "(T, Hq, d)", Set.of(), false, "rotated (as given when rope=false); q's dtype"),
                new TensorSpec("keys", "(num_blocks, block_size, Hkv, d)", Set.of(), false, "the key cache after the append"),
                new TensorSpec("values", "(num_blocks, block_size, Hkv, d)", Set.of(), false, "the value cache after the append"));
    }

    @Override
    public Map<String, DType> kernelDtypes(Map<String, DType> given) {
        return AttentionOpParts.kernelDtypes(given);
    }

    @Override
    public Call prepare(Map<String, Tensor> in, OpOptions options) {
        AttentionOpParts.Layout layout = AttentionOpParts.layout(in, in.get("new_tokens"));
        Tensor q = in.get("q"), keys = in.get("keys");
        long tokens = layout.totalNew(), kvHeads = keys.dim(2), headDim = keys.dim(3);
        Checks.rank("q", q, 3);
        Checks.shape("q", q, tokens, q.dim(1), headDim);
        Checks.shape("k", in.get("k"), tokens, kvHeads, headDim);
        Checks.shape("v", in.get("v"), tokens, kvHeads, headDim);
        if (in.get("positions") != null) Checks.shape("positions", in.get("positions"), tokens);
        Rope rope = options.getBoolean("rope") ? rope(options) : null;

        DType dtype = q.dtype();
        List<Output> outputs = List.of(new Output("q", dtype, q.shape(), "q"), new Output("keys", dtype, keys.shape(), "keys"),
                new Output("values", dtype, keys.shape(), "values"));
        AttentionOpParts.Batches batches = new AttentionOpParts.Batches(layout);
        Kernel kernel = new Kernel() {
            @Override
            public void run(Backend backend, Map<String, Tensor> i, Map<String, Tensor> o) {
                Attention.append(backend, batches.over(backend, o.get("keys"), o.get("values")), o.get("q"), i.get("k"), i.get("v"), rope,
                        i.get("positions"));
            }

            @Override
            public void close() {
                batches.close();
            }
        };
        // q read and written back (rotated), k and v read and written into the cache, the positions read.
        double bytes = (2.0 * q.dim(1) + 4.0 * kvHeads) * tokens * headDim * dtype.byteSize() + (in.get("positions") != null ? 4.0 * tokens : 0);
        return new Call(outputs, kernel, "rope-append", "b" + layout.cached().length + "-tokens" + tokens, dtype, bytes, 0);
    }

    private static Rope rope(OpOptions options) {
        float base = options.getFloat("base"), scale = options.getFloat("position_scale");
        if (!(base > 1)) throw new IllegalArgumentException("option 'base' must be > 1, got " + base);
        if (!(scale > 0)) throw new IllegalArgumentException("option 'position_scale' must be > 0, got " + scale);
        Rope rope = new Rope(base, options.getBoolean("neox"), scale);
        float factor = options.getFloat("llama3_factor");
        if (factor == 1) return rope;
        long originalMax = options.getInt("original_max_positions");
        if (originalMax < 1 || originalMax > Integer.MAX_VALUE)
            throw new IllegalArgumentException("option 'original_max_positions' must be in [1, 2^31), got " + originalMax);
        try {
            return rope.withLlama3Scaling(new Rope.Llama3Scaling(factor, options.getFloat("low_freq_factor"),
                    options.getFloat("high_freq_factor"), (int) originalMax));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("options llama3_factor, low_freq_factor, high_freq_factor: " + e.getMessage(), e);
        }
    }
}
