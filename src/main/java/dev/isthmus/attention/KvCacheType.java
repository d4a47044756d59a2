package dev.isthmus.attention;

import java.util.Locale;

/**
 * What the elements of a {@link KvCache} hold ({@code isthmus_kv_cache_type} in native/isthmus.h;
 * {@link KvQuantization} defines the two quantized formats).
 *
 * <ul>
 *   <li>{@link #MODEL_DTYPE}: keys and values in the model's dtype (f32, f16 or bf16).
 *   <li>{@link #INT8}: int8 codes q with one f32 scale s per (token, kv head) of K and of V,
 *       x = q s, s = max|x| / 127 over the head's elements, computed when the token is appended.
 *   <li>{@link #FP8_E4M3}: OCP FP8 E4M3 codes c with one fixed f32 scale s per (layer, kv head) of
 *       K and of V, x = e4m3(c) s, given when the cache is made (1 by default); values past
 *       448 s saturate to +-448 s.
 * </ul>
 */
public enum KvCacheType {
    MODEL_DTYPE(0, "model"),
    INT8(1, "int8"),
    FP8_E4M3(2, "fp8");

    private final int code;
    private final String label;

    KvCacheType(int code, String label) {
        this.code = code;
        this.label = label;
    }

    /** The isthmus_kv_cache_type value of native/isthmus.h. */
    public int code() {
        return code;
    }

    /** "model", "int8" or "fp8": the names {@code --kv-cache} takes. */
    public String label() {
        return label;
    }

    public boolean isQuantized() {
        return this != MODEL_DTYPE;
    }

    /** Parses a {@link #label()} (case-insensitive; "fp8_e4m3" and "e4m3" name fp8 too). */
    public static KvCacheType parse(String label) {
        if (label != null) {
            String l = label.toLowerCase(Locale.ROOT);
            for (KvCacheType t : values()) if (t.label.equals(l)) return t;
            if (l.equals("fp8_e4m3") || l.equals("e4m3")) return FP8_E4M3;
        }
        throw new IllegalArgumentException("unknown KV cache type '" + label + "' (expected model, int8 or fp8)");
    }
}
