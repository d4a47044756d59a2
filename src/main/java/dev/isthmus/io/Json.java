package dev.isthmus.io;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON parser (RFC 8259) for file headers such as the safetensors one: objects
 * become {@code LinkedHashMap<String, Object>} (key order kept), arrays {@code List<Object>},
 * strings {@code String}, numbers {@code Long} when integral and {@code Double} otherwise,
 * true/false {@code Boolean}, null {@code null}. Anything else — trailing commas, duplicate keys,
 * comments, leading zeros, unescaped control characters, text after the value — is an
 * IllegalArgumentException saying what was found where.
 */
public final class Json {
    /** Arrays and objects nest at most this deep: each level is a Java stack frame, and no header needs more. */
    public static final int MAX_DEPTH = 256;

    private final String text;
    private final boolean nonFinite;
    private int pos;
    private int depth;

    private Json(String text, boolean nonFinite) {
        this.text = text;
        this.nonFinite = nonFinite;
    }

    /** Parses one JSON value that must span the whole text (surrounding whitespace allowed). */
    public static Object parse(String text) {
        return parse(text, false);
    }

    /**
     * As {@link #parse(String)}, also accepting the bare {@code NaN}, {@code Infinity} and
     * {@code -Infinity} (as Double) that Python's json module writes by default, and so the
     * config.json files transformers saves (a Mamba-2 config holds {@code "time_step_limit": [0.0, Infinity]}).
     */
    public static Object parseAsPythonWrites(String text) {
        return parse(text, true);
    }

    private static Object parse(String text, boolean nonFinite) {
        if (text == null) throw new IllegalArgumentException("JSON: text is null");
        Json p = new Json(text, nonFinite);
        p.skipWhitespace();
        Object value = p.value();
        p.skipWhitespace();
        if (p.pos != text.length()) throw p.error("unexpected text after the JSON value");
        return value;
    }

    /** {@code s} as a JSON string literal, quoted and escaped. */
    public static String quote(String s) {
        StringBuilder sb = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
                }
            }
        }
        return sb.append('"').toString();
    }

    private Object value() {
        if (pos >= text.length()) throw error("unexpected end of input");
        char c = text.charAt(pos);
        return switch (c) {
            case '{' -> object();
            case '[' -> array();
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            case 'N' -> nonFinite("NaN", Double.NaN);
            case 'I' -> nonFinite("Infinity", Double.POSITIVE_INFINITY);
            default -> {
                if (c == '-' && text.startsWith("-I", pos)) yield nonFinite("-Infinity", Double.NEGATIVE_INFINITY);
                if (c == '-' || (c >= '0' && c <= '9')) yield number();
                throw error("unexpected character '" + c + "'");
            }
        };
    }

    private Map<String, Object> object() {
        Map<String, Object> map = new LinkedHashMap<>();
        enter();
        pos++; // '{'
        skipWhitespace();
        if (peek() == '}') {
            pos++;
            depth--;
            return map;
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') throw error("expected a string key");
            int keyPos = pos;
            String key = string();
            skipWhitespace();
            expect(':');
            skipWhitespace();
            Object value = value();
            if (map.containsKey(key)) {
                pos = keyPos;
                throw error("duplicate key " + quote(key));
            }
            map.put(key, value);
            skipWhitespace();
            char c = next("',' or '}'");
            if (c == '}') {
                depth--;
                return map;
            }
            if (c != ',') throw errorBefore("expected ',' or '}'");
        }
    }

    private List<Object> array() {
        List<Object> list = new ArrayList<>();
        enter();
        pos++; // '['
        skipWhitespace();
        if (peek() == ']') {
            pos++;
            depth--;
            return list;
        }
        while (true) {
            skipWhitespace();
            list.add(value());
            skipWhitespace();
            char c = next("',' or ']'");
            if (c == ']') {
                depth--;
                return list;
            }
            if (c != ',') throw errorBefore("expected ',' or ']'");
        }
    }

    private String string() {
        pos++; // opening quote
        StringBuilder sb = new StringBuilder();
        while (true) {
            char c = next("closing '\"'");
            if (c == '"') return sb.toString();
            if (c < 0x20) throw errorBefore("unescaped control character in a string");
            if (c != '\\') {
                sb.append(c);
                continue;
            }
            char e = next("escape character");
            switch (e) {
                case '"', '\\', '/' -> sb.append(e);
                case 'b' -> sb.append('\b');
                case 'f' -> sb.append('\f');
                case 'n' -> sb.append('\n');
                case 'r' -> sb.append('\r');
                case 't' -> sb.append('\t');
                case 'u' -> {
                    if (pos + 4 > text.length()) throw error("incomplete \\u escape");
                    int code = 0;
                    for (int i = 0; i < 4; i++) {
                        int digit = Character.digit(text.charAt(pos++), 16);
                        if (digit < 0) throw errorBefore("bad hex digit in a \\u escape");
                        code = code * 16 + digit;
                    }
                    sb.append((char) code); // surrogate pairs arrive as two escapes and join up here
                }
                default -> throw errorBefore("unknown escape '\\" + e + "'");
            }
        }
    }

    private Object number() {
        int start = pos;
        if (peek() == '-') pos++;
        if (peek() == '0') {
            pos++;
            if (isDigit(peek())) throw error("leading zero in a number");
        } else if (isDigit(peek())) {
            while (isDigit(peek())) pos++;
        } else {
            throw error("expected a digit");
        }
        boolean integral = true;
        if (peek() == '.') {
            integral = false;
            pos++;
            if (!isDigit(peek())) throw error("expected a digit after '.'");
            while (isDigit(peek())) pos++;
        }
        if (peek() == 'e' || peek() == 'E') {
            integral = false;
            pos++;
            if (peek() == '+' || peek() == '-') pos++;
            if (!isDigit(peek())) throw error("expected a digit in the exponent");
            while (isDigit(peek())) pos++;
        }
        String literal = text.substring(start, pos);
        if (integral) {
            try {
                return Long.parseLong(literal);
            } catch (NumberFormatException e) {
                pos = start;
                throw error("integer " + literal + " does not fit in 64 bits");
            }
        }
        return Double.parseDouble(literal);
    }

    private void enter() {
        if (++depth > MAX_DEPTH) throw error("arrays and objects nest deeper than " + MAX_DEPTH + " levels");
    }

    private Object nonFinite(String word, double value) {
        if (!nonFinite) throw error(word + " is not JSON (only Python's json module writes it)");
        return literal(word, value);
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, pos)) throw error("unexpected character '" + text.charAt(pos) + "'");
        pos += word.length();
        return value;
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            pos++;
        }
    }

    private void expect(char c) {
        if (peek() != c) throw error("expected '" + c + "'");
        pos++;
    }

    /** The current character, or 0 at the end (0 is never valid where peek is used). */
    private char peek() {
        return pos < text.length() ? text.charAt(pos) : 0;
    }

    private char next(String expected) {
        if (pos >= text.length()) throw error("unexpected end of input, expected " + expected);
        return text.charAt(pos++);
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }

    private IllegalArgumentException error(String message) {
        return new IllegalArgumentException("JSON: " + message + " at offset " + pos);
    }

    private IllegalArgumentException errorBefore(String message) {
        pos--;
        return error(message);
    }
}
