package dev.isthmus.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The strict JSON parser of safetensors headers: what it accepts, what it gives, what it refuses. */
class JsonTest {

    @Test
    void parsesASafetensorsLikeHeaderKeepingKeyOrder() {
        Object v = Json.parse(" {\"z\": {\"dtype\": \"F32\", \"shape\": [2, 3], \"data_offsets\": [0, 24]},"
                + " \"__metadata__\": {\"format\": \"pt\"}, \"a\": [] } ");
        Map<?, ?> root = (Map<?, ?>) v;
        assertEquals(List.of("z", "__metadata__", "a"), List.copyOf(root.keySet()));
        Map<?, ?> z = (Map<?, ?>) root.get("z");
        assertEquals("F32", z.get("dtype"));
        assertEquals(List.of(2L, 3L), z.get("shape"));
        assertEquals(List.of(0L, 24L), z.get("data_offsets"));
        assertEquals(Map.of("format", "pt"), root.get("__metadata__"));
        assertEquals(List.of(), root.get("a"));
    }

    @Test
    void parsesScalarsAndEscapes() {
        assertEquals(-12L, Json.parse("-12"));
        assertEquals(0L, Json.parse("0"));
        assertEquals(1.5e-3, Json.parse("1.5e-3"));
        assertEquals(-0.25, Json.parse("-0.25"));
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(true, Json.parse("true"));
        assertEquals(false, Json.parse("false"));
        assertNull(Json.parse("null"));
        assertEquals("a\"b\\c/d\n\t\u00e9\ud83d\ude00", Json.parse("\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\ud83d\\ude00\""));
        assertEquals("h\u00e9", Json.parse("\"h\u00e9\""), "UTF-8 text passes through");
    }

    @Test
    void quoteRoundTrips() {
        String s = "tab\there \"quoted\" back\\slash \u0001 ctrl";
        assertEquals(s, Json.parse(Json.quote(s)));
    }

    @ParameterizedTest
    @ValueSource(strings = {"", "{", "{\"a\":1,}", "[1,]", "{\"a\":1 \"b\":2}", "{\"a\":1,\"a\":2}", "{a:1}", "01", "1.", "-",
            ".5", "1e", "\"abc", "\"a\\x\"", "\"\\u12g4\"", "\"line\nbreak\"", "tru", "nul", "[1] 2", "// c\n1", "{'a':1}",
            "99999999999999999999", "NaN", "Infinity", "-Infinity", "[1,,2]"})
    void refusesMalformedInput(String text) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse(text));
        assertTrue(e.getMessage().startsWith("JSON: ") && e.getMessage().contains("at offset"), e.getMessage());
    }

    @Test
    void namesTheDuplicateKey() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Json.parse("{\"x\":1,\"x\":2}"));
        assertTrue(e.getMessage().contains("duplicate key \"x\""), e.getMessage());
    }

    /** Python's json module (and so transformers' config.json) writes bare NaN and Infinity; the config reader takes them. */
    @Test
    void readsTheNonFiniteNumbersPythonWrites() {
        Object v = Json.parseAsPythonWrites("{\"time_step_limit\": [0.0, Infinity], \"low\": -Infinity, \"x\": NaN, \"n\": -1}");
        assertEquals(java.util.Map.of("time_step_limit", java.util.List.of(0.0, Double.POSITIVE_INFINITY), "low", Double.NEGATIVE_INFINITY,
                "x", Double.NaN, "n", -1L), v);
        for (String bad : new String[] {"Inf", "-Inf", "nan", "-NaN", "Infinityx"})
            assertThrows(IllegalArgumentException.class, () -> Json.parseAsPythonWrites(bad), bad);
    }
}
