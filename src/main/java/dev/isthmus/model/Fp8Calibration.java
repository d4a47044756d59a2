package dev.isthmus.model;

import dev.isthmus.attention.KvCache;
import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.Tensor;
import java.util.List;

/**
 * Scales for an fp8 E4M3 KV cache (one per attention layer and kv head, fixed for the cache's
 * life), calibrated on prompts: the prompts run once through a session whose cache holds the
 * model's dtype, and each head's scale is {@link #HEADROOM} times the largest |k| (after RoPE, as
 * the cache holds it) or |v| that head saw over the prompts' tokens, over 448, E4M3's largest
 * value. So the prompts' values use E4M3's range down from 448 / HEADROOM, later tokens up to
 * HEADROOM times the prompts' largest are kept, and larger ones saturate. A head that saw only
 * zeros keeps the scale 1. One extra prefill of the prompts; the tokens themselves are not kept.
 */
public final class Fp8Calibration {
    private Fp8Calibration() {}

    /** How far past the prompts' largest |k| and |v| a head's scale leaves room. */
    public static final float HEADROOM = 2f;
    static final float E4M3_MAX = 448f;

    /** Layer-major (attention layers x kv heads) scales for {@link KvCache#allocateFp8}. */
    public record Scales(float[] keys, float[] values) {}

    public static Scales calibrate(DecoderModel model, List<int[]> prompts) {
        if (model == null) throw new IllegalArgumentException("model is null");
        if (prompts == null || prompts.isEmpty()) throw new IllegalArgumentException("no prompts to calibrate on");
        int longest = 0;
        for (int i = 0; i < prompts.size(); i++) {
            if (prompts.get(i) == null || prompts.get(i).length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            longest = Math.max(longest, prompts.get(i).length);
        }
        int[] sequences = new int[prompts.size()];
        for (int i = 0; i < sequences.length; i++) sequences[i] = i;
        try (Session session = model.newSession(prompts.size(), longest, KvCacheType.MODEL_DTYPE);
             Tensor logits = model.forward(session, sequences, prompts.toArray(int[][]::new), false)) {
            KvCache cache = session.kvCache();
            if (cache == null) throw new IllegalArgumentException("the model has no attention layers: there is no KV cache to calibrate");
            int layers = cache.layers(), heads = model.config().kvHeads();
            float[] keys = new float[layers * heads], values = new float[layers * heads];
            for (int l = 0; l < layers; l++) {
                largest(model, cache, cache.keys(l), prompts, keys, l * heads);
                largest(model, cache, cache.values(l), prompts, values, l * heads);
            }
            for (float[] scales : new float[][] {keys, values})
                for (int i = 0; i < scales.length; i++)
                    scales[i] = scales[i] > 0 ? Math.min(scales[i] * HEADROOM / E4M3_MAX, Math.nextDown(KvCache.FP8_SCALE_LIMIT)) : 1f;
            return new Scales(keys, values);
        }
    }

    /** Into out[at + h]: the largest |x| of kv head h over the prompts' tokens in one layer's pool (blocks, block size, heads, dim). */
    private static void largest(DecoderModel model, KvCache cache, Tensor pool, List<int[]> prompts, float[] out, int at) {
        int blockSize = cache.blockSize(), heads = (int) pool.dim(2), dim = (int) pool.dim(3);
        float[] x;
        try (Tensor host = model.backend().toHost(pool)) {
            x = host.toFloatArray();
        }
        for (int s = 0; s < prompts.size(); s++) {
            int[] blocks = cache.blocks(s);
            for (int t = 0; t < prompts.get(s).length; t++) {
                long row = ((long) blocks[t / blockSize] * blockSize + t % blockSize) * heads;
                for (int h = 0; h < heads; h++)
                    for (int d = 0; d < dim; d++) out[at + h] = Math.max(out[at + h], Math.abs(x[(int) ((row + h) * dim + d)]));
            }
        }
    }
}
