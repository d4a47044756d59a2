package dev.isthmus.model;

import dev.isthmus.io.GgufFile;
import dev.isthmus.io.Json;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The vocabulary a GGUF file carries ({@code tokenizer.ggml.*}) written out as a tokenizers-library
 * tokenizer.json, so that a GGUF model tokenizes without a tokenizer.json beside it. Two kinds:
 * <ul>
 *   <li>{@code llama}, SentencePiece-style: tokens with scores and "▁" for spaces; a BPE whose merges
 *       are every split of a token into two tokens, the merges of higher-scoring tokens first (as
 *       SentencePiece merges the best-scoring pair), "▁" prepended to the text and spaces replaced,
 *       bytes falling back to the {@code <0xNN>} tokens when the vocabulary has them;
 *   <li>{@code gpt2}, byte-level BPE: tokens and their merges as stored, with the pre-tokenizer
 *       regular expression {@code tokenizer.ggml.pre} names (gpt2/default, llama-bpe/llama3, qwen2).
 * </ul>
 * Control tokens (type 3) become special tokens; a BOS is added when {@code tokenizer.ggml.add_bos_token}
 * says so (by default for llama, not for gpt2). Any other tokenizer model or pre-tokenizer is refused by name.
 */
final class GgufVocabulary {
    private GgufVocabulary() {}

    static final int TYPE_CONTROL = 3, TYPE_BYTE = 6;
    static final List<String> MODELS = List.of("llama", "gpt2");
    /** The split patterns of the byte-level pre-tokenizers, by tokenizer.ggml.pre. */
    static final Map<String, String> PRE = Map.of(
            "llama-bpe", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
            "qwen2", "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+");

    /** The tokenizer.json text of {@code f}'s vocabulary. */
    static String tokenizerJson(GgufFile f) {
        String model = f.string("tokenizer.ggml.model");
        if (!MODELS.contains(model))
            throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.model '" + model + "' is not supported (supported: " + MODELS + ")");
        List<String> tokens = strings(f, "tokenizer.ggml.tokens");
        List<?> types = f.has("tokenizer.ggml.token_type") ? f.array("tokenizer.ggml.token_type") : List.of();
        if (!types.isEmpty() && types.size() != tokens.size())
            throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.token_type has " + types.size() + " entries for " + tokens.size() + " tokens");
        Map<String, Integer> ids = new HashMap<>();
        StringBuilder vocab = new StringBuilder("{");
        StringBuilder added = new StringBuilder("[");
        boolean bytes = false;
        for (int id = 0; id < tokens.size(); id++) {
            String t = tokens.get(id);
            long type = type(f, types, id);
            bytes |= type == TYPE_BYTE;
            if (type == TYPE_CONTROL) {
                if (added.length() > 1) added.append(',');
                added.append("{\"id\":").append(id).append(",\"content\":").append(Json.quote(t))
                        .append(",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}");
            }
            if (ids.putIfAbsent(t, id) != null) continue; // a repeated token keeps its first id
            if (vocab.length() > 1) vocab.append(',');
            vocab.append(Json.quote(t)).append(':').append(id);
        }
        vocab.append('}');
        added.append(']');
        boolean llama = model.equals("llama");
        List<String> merges = llama ? spmMerges(f, tokens, types, ids) : strings(f, "tokenizer.ggml.merges");
        StringBuilder mergeJson = new StringBuilder("[");
        for (String m : merges) {
            if (mergeJson.length() > 1) mergeJson.append(',');
            mergeJson.append(Json.quote(m));
        }
        mergeJson.append(']');
        boolean addBos = f.has("tokenizer.ggml.add_bos_token") ? f.bool("tokenizer.ggml.add_bos_token") : llama;
        String bos = addBos ? tokens.get(checkedId(f, "tokenizer.ggml.bos_token_id", tokens.size())) : null;
        String unk = f.has("tokenizer.ggml.unknown_token_id") ? tokens.get(checkedId(f, "tokenizer.ggml.unknown_token_id", tokens.size())) : null;
        String bpe = "{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":" + (unk == null ? "null" : Json.quote(unk)) + ",\"fuse_unk\":" + llama
                + ",\"byte_fallback\":" + (llama && bytes) + ",\"ignore_merges\":false,\"vocab\":" + vocab + ",\"merges\":" + mergeJson + "}";
        String pre, decoder;
        if (llama) {
            pre = "{\"type\":\"Metaspace\",\"replacement\":\"\u2581\",\"prepend_scheme\":\"first\",\"split\":false}";
            decoder = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\u2581\"},\"content\":\" \"},"
                    + "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}";
        } else {
            String name = f.has("tokenizer.ggml.pre") ? f.string("tokenizer.ggml.pre") : "default";
            String byteLevel = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,\"use_regex\":";
            if (name.equals("default") || name.equals("gpt2")) pre = byteLevel + "true}";
            else if (PRE.containsKey(name) || name.equals("llama3"))
                pre = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":{\"Regex\":" + Json.quote(PRE.get(name.equals("llama3")
                        ? "llama-bpe" : name)) + "},\"behavior\":\"Isolated\",\"invert\":false}," + byteLevel + "false}]}";
            else throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.pre '" + name + "' is not supported (default, gpt2, llama-bpe, qwen2)");
            decoder = byteLevel + "true}";
        }
        String post = bos == null ? "null"
                : "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":" + Json.quote(bos) + ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                + "\"pair\":[{\"SpecialToken\":{\"id\":" + Json.quote(bos) + ",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}},{\"Sequence\":{\"id\":\"B\",\"type_id\":1}}],"
                + "\"special_tokens\":{" + Json.quote(bos) + ":{\"id\":" + Json.quote(bos) + ",\"ids\":[" + ids.get(bos) + "],\"tokens\":[" + Json.quote(bos) + "]}}}";
        return "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":" + added + ",\"normalizer\":null,\"pre_tokenizer\":" + pre
                + ",\"post_processor\":" + post + ",\"decoder\":" + decoder + ",\"model\":" + bpe + "}";
    }

    /**
     * SentencePiece-style merges: each token of two or more characters, split every way into two
     * tokens of the vocabulary; tokens of higher score merge first (ties: by the parts' ids).
     */
    private static List<String> spmMerges(GgufFile f, List<String> tokens, List<?> types, Map<String, Integer> ids) {
        List<?> scores = f.array("tokenizer.ggml.scores");
        if (scores.size() != tokens.size())
            throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.scores has " + scores.size() + " entries for " + tokens.size() + " tokens");
        record Merge(String left, String right, double score, int leftId, int rightId) {}
        List<Merge> merges = new ArrayList<>();
        for (int id = 0; id < tokens.size(); id++) {
            long type = type(f, types, id);
            String t = tokens.get(id);
            if (type == TYPE_CONTROL || type == TYPE_BYTE || ids.get(t) != id) continue;
            if (!(scores.get(id) instanceof Double score)) throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.scores holds a non-number");
            for (int k = t.offsetByCodePoints(0, 1); k < t.length(); k = t.offsetByCodePoints(k, 1)) {
                Integer l = ids.get(t.substring(0, k)), r = ids.get(t.substring(k));
                if (l != null && r != null) merges.add(new Merge(t.substring(0, k), t.substring(k), score, l, r));
            }
        }
        merges.sort(Comparator.comparingDouble(Merge::score).reversed().thenComparingInt(Merge::leftId).thenComparingInt(Merge::rightId));
        return merges.stream().map(m -> m.left + " " + m.right).toList();
    }

    /** Token {@code id}'s type (1, normal, when the file gives none). */
    private static long type(GgufFile f, List<?> types, int id) {
        if (types.isEmpty()) return 1;
        if (!(types.get(id) instanceof Long type)) throw new IllegalArgumentException(f.path() + ": tokenizer.ggml.token_type holds a non-integer");
        return type;
    }

    private static List<String> strings(GgufFile f, String key) {
        List<?> list = f.array(key);
        List<String> out = new ArrayList<>(list.size());
        for (Object o : list) {
            if (!(o instanceof String s)) throw new IllegalArgumentException(f.path() + ": " + key + " holds a non-string");
            out.add(s);
        }
        if (out.isEmpty()) throw new IllegalArgumentException(f.path() + ": " + key + " is empty");
        return out;
    }

    private static int checkedId(GgufFile f, String key, int vocab) {
        long id = f.integer(key);
        if (id < 0 || id >= vocab) throw new IllegalArgumentException(f.path() + ": " + key + " " + id + " is outside the vocabulary of " + vocab);
        return (int) id;
    }
}
