package dev.isthmus.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.isthmus.quant.Dequantize;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.quant.Quantize;
import dev.isthmus.testing.TestResources;
import dev.isthmus.testing.Tries;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The GGUF reader and the CPU dequantization against files written by the `gguf` package
 * (src/test/resources/gguf/make_gguf_fixtures.py): every supported type dequantizes bit for bit as
 * gguf does; every forged header field is refused by name.
 */
class GgufFileTest {
    static Path TYPES;

    @BeforeAll
    static void fixture() throws IOException {
        TYPES = TestResources.file("gguf/types.gguf", "run src/test/resources/gguf/make_gguf_fixtures.py and commit what it writes");
    }

    @TempDir
    Path dir;

    @Test
    void readsEveryMetadataTypeTheWriterWrote() throws IOException {
        try (GgufFile f = GgufFile.open(TYPES)) {
            assertEquals(3, f.version());
            assertEquals("fixture", f.string("general.architecture"));
            assertEquals(200, f.integer("fixture.u8"));
            assertEquals(-100, f.integer("fixture.i8"));
            assertEquals(60000, f.integer("fixture.u16"));
            assertEquals(-30000, f.integer("fixture.i16"));
            assertEquals(4_000_000_000L, f.integer("fixture.u32"));
            assertEquals(-2_000_000_000L, f.integer("fixture.i32"));
            assertEquals(0.1f, (float) f.number("fixture.f32"));
            assertTrue(f.bool("fixture.bool"));
            assertEquals("grüße, ggml", f.string("fixture.string"));
            assertEquals(1L << 40, f.integer("fixture.u64"));
            assertEquals(-(1L << 40), f.integer("fixture.i64"));
            assertEquals(0.1, f.number("fixture.f64"));
            assertEquals(List.of(1L, -2L, 3L), f.array("fixture.ints"));
            assertEquals(List.of("a", "", "ü"), f.array("fixture.strings"));
            assertEquals(List.of(List.of(1L, 2L), List.of(3L)), f.array("fixture.nested"));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.string("fixture.u8"));
            assertTrue(e.getMessage().contains("'fixture.u8' is not a string"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> f.integer("fixture.missing"));
            assertTrue(e.getMessage().contains("no metadata 'fixture.missing'"), e.getMessage());
        }
    }

    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q5_K", "Q6_K"})
    void dequantizesBitForBitAsGgufDoes(GgmlType type) throws IOException {
        String name = "t_" + type.name().toLowerCase(java.util.Locale.ROOT);
        try (GgufFile f = GgufFile.open(TYPES)) {
            GgufFile.TensorInfo info = f.info(name), expected = f.info(name + ".dequantized");
            assertEquals(type, info.type());
            assertEquals(GgmlType.F32, expected.type());
            assertArrayEquals(expected.shape(), info.shape(), "shape of " + name);
            float[] got = new float[(int) info.elements()];
            Dequantize.toFloat(got, type, f.bytes(name));
            MemorySegment want = f.bytes(name + ".dequantized");
            int nonzero = 0;
            for (int i = 0; i < got.length; i++) {
                int wantBits = want.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
                if (Float.floatToRawIntBits(got[i]) != wantBits)
                    fail(name + " element " + i + ": " + got[i] + ", gguf gives " + Float.intBitsToFloat(wantBits));
                if (got[i] != 0) nonzero++;
            }
            assertTrue(nonzero > got.length / 2, name + " is mostly zeros: the fixture does not exercise the format");
        }
    }

    /** Q8_0, Q4_0 and Q4_1 quantize bit for bit as gguf's quantizers (ggml's reference ones) did the fixture's values. */
    @ParameterizedTest
    @EnumSource(value = GgmlType.class, names = {"Q8_0", "Q4_0", "Q4_1"})
    void quantizesBitForBitAsGgufDoes(GgmlType type) throws IOException {
        String name = "t_" + type.name().toLowerCase(java.util.Locale.ROOT);
        try (GgufFile f = GgufFile.open(TYPES)) {
            MemorySegment source = f.bytes(name + ".source");
            float[] values = new float[(int) f.info(name + ".source").elements()];
            for (int i = 0; i < values.length; i++) values[i] = source.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
            assertArrayEquals(f.bytes(name).toArray(ValueLayout.JAVA_BYTE), Quantize.fromFloat(type, values), name);
        }
    }

    @Test
    void shapesAreRowMajorAndBytesAreReadOnly() throws IOException {
        try (GgufFile f = GgufFile.open(TYPES)) {
            GgufFile.TensorInfo q = f.info("t_q4_k");
            assertArrayEquals(new long[] {512, 3}, q.dims());
            assertArrayEquals(new long[] {3, 512}, q.shape());
            assertEquals(3L * 2 * 144, q.byteSize());
            assertThrows(IllegalArgumentException.class, () -> f.bytes("t_q4_k").set(ValueLayout.JAVA_BYTE, 0, (byte) 1));
            assertTrue(f.names().contains("t_q6_k.dequantized"));
        }
    }

    @Test
    void bytesAreUnusableAfterClose() throws IOException {
        GgufFile f = GgufFile.open(TYPES);
        MemorySegment bytes = f.bytes("t_q8_0");
        f.close();
        f.close();
        assertThrows(IllegalStateException.class, () -> bytes.get(ValueLayout.JAVA_BYTE, 0));
        assertThrows(IllegalArgumentException.class, () -> f.bytes("t_q8_0"));
    }

    /** A valid one-tensor file (a 2 x 32 Q8_0 matrix) with its fields overridable by the tests. */
    private static GgufBytes oneTensor(int version, int type, long[] dims, long offset, long alignment) {
        GgufBytes b = new GgufBytes().header(version, 1, alignment > 0 ? 2 : 1);
        b.string("general.architecture").u32(GgufReader.STRING).string("llama");
        if (alignment > 0) b.string("general.alignment").u32(GgufReader.UINT32).u32(alignment);
        b.tensor("w", dims, type, offset).pad(alignment > 0 ? (int) alignment : 32);
        return b.put(new byte[2 * 34]);
    }

    private static GgufBytes valid() {
        return oneTensor(3, GgmlType.Q8_0.id(), new long[] {32, 2}, 0, 0);
    }

    @Test
    void theHandBuiltFileIsValid() throws IOException {
        try (GgufFile f = GgufFile.open(write(valid().bytes()))) {
            assertEquals(GgmlType.Q8_0, f.info("w").type());
            assertEquals(68, f.bytes("w").byteSize());
        }
        try (GgufFile f = GgufFile.open(write(oneTensor(2, GgmlType.Q8_0.id(), new long[] {32, 2}, 0, 64).bytes()))) {
            assertEquals(2, f.version());
        }
    }

    @Test
    void refusesForgedHeaders() throws IOException {
        assertRefused(new GgufBytes().put("GGML".getBytes()).u32(3).bytes(), "not a GGUF file");
        assertRefused(oneTensor(1, 8, new long[] {32, 2}, 0, 0).bytes(), "version 1 is not supported");
        assertRefused(oneTensor(4, 8, new long[] {32, 2}, 0, 0).bytes(), "version 4 is not supported");
        assertRefused(oneTensor(Integer.reverseBytes(3), 8, new long[] {32, 2}, 0, 0).bytes(), "big-endian");
        assertRefused(oneTensor(3, 77, new long[] {32, 2}, 0, 0).bytes(), "unknown GGML tensor type 77");
        assertRefused(oneTensor(3, GgmlType.Q5_0.id(), new long[] {32, 2}, 0, 0).bytes(), "type Q5_0, which Isthmus does not read");
        assertRefused(oneTensor(3, 8, new long[] {33, 2}, 0, 0).bytes(), "rows of 33 elements, not a multiple of the 32-element blocks of Q8_0");
        assertRefused(oneTensor(3, 8, new long[] {32, 2}, 8, 0).bytes(), "offset 8, not a multiple of the alignment 32");
        assertRefused(oneTensor(3, 8, new long[] {32, 2}, 32, 0).bytes(), "runs past the end of the tensor data");
        assertRefused(oneTensor(3, 8, new long[] {32, 1L << 62}, 0, 0).bytes(), "too large");
        assertRefused(oneTensor(3, 8, new long[] {32, 1, 1, 1, 1}, 0, 0).bytes(), "5 dimensions");
        assertRefused(oneTensor(3, 8, new long[] {}, 0, 0).bytes(), "0 dimensions");
        assertRefused(oneTensor(3, 8, new long[] {32, 2}, 0, 48).bytes(), "general.alignment 48 is not a power of two");
        assertRefused(new GgufBytes().header(3, 0, 1).string("k").u32(13).bytes(), "unknown value type 13");
        assertRefused(new GgufBytes().header(3, 0, 1).string("k").u32(GgufReader.BOOL).u8(2).bytes(), "neither 0 nor 1");
        assertRefused(new GgufBytes().header(3, 0, 1).string("k").u32(GgufReader.STRING).u64(1L << 40).bytes(), "has length");
        assertRefused(new GgufBytes().header(3, 0, 1).string("k").u32(GgufReader.ARRAY).u32(GgufReader.UINT32).u64(1L << 40).bytes(),
                "cannot fit");
        assertRefused(new GgufBytes().header(3, 1L << 50, 0).bytes(), "tensor count");
        assertRefused(new GgufBytes().header(3, 0, 2).string("k").u32(GgufReader.UINT8).u8(1).string("k").u32(GgufReader.UINT8).u8(1).bytes(),
                "'k' appears twice");
        GgufBytes nested = new GgufBytes().header(3, 0, 1).string("k");
        nested.u32(GgufReader.ARRAY);
        for (int i = 0; i < 6; i++) nested.u32(GgufReader.ARRAY).u64(1);
        assertRefused(nested.put(new byte[64]).bytes(), "nests arrays deeper");
        GgufBytes twice = new GgufBytes().header(3, 2, 0).tensor("w", new long[] {32}, 8, 0).tensor("w", new long[] {32}, 8, 64).pad(32);
        assertRefused(twice.put(new byte[128]).bytes(), "tensor 'w' appears twice");
        GgufBytes overlap = new GgufBytes().header(3, 2, 0).tensor("a", new long[] {64}, 8, 0).tensor("b", new long[] {32}, 8, 32).pad(32);
        assertRefused(overlap.put(new byte[128]).bytes(), "'a' and 'b' overlap");
        byte[] badUtf8 = new GgufBytes().header(3, 0, 1).u64(2).put(new byte[] {(byte) 0xc3, (byte) 0x28}).u32(0).u8(0).bytes();
        assertRefused(badUtf8, "not valid UTF-8");
    }

    /** Every prefix of a valid file is refused as truncated (or, before the magic, as not GGUF). */
    @Test
    void refusesEveryTruncation() throws IOException {
        byte[] whole = valid().bytes();
        for (int n = 0; n < whole.length; n++) {
            byte[] cut = java.util.Arrays.copyOf(whole, n);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GgufFile.open(write(cut)).close(), "prefix " + n);
            assertTrue(e.getMessage().contains("truncated") || e.getMessage().contains("not a GGUF file")
                    || e.getMessage().contains("past the end"), "prefix " + n + ": " + e.getMessage());
        }
    }

    /** Random byte changes to the fixture: the reader accepts the file or refuses it, never anything else. */
    @Test
    void mutatedFilesAreAcceptedOrRefusedNeverCrash() throws IOException {
        byte[] original = Files.readAllBytes(TYPES);
        int header = headerBytes(original);
        Tries.run("GGUF mutation", 0x66757a7aL, "isthmus.fuzz.tries", 300, draw -> {
            byte[] bytes = original.clone();
            int changes = draw.intIn("changes", 1, 4);
            for (int i = 0; i < changes; i++) bytes[draw.intIn("at", 0, header - 1)] = (byte) draw.intIn("byte", 0, 255);
            try (GgufFile f = GgufFile.open(write(bytes))) {
                for (String name : f.names()) {
                    GgufFile.TensorInfo info = f.info(name);
                    if (info.elements() <= 1 << 20) Dequantize.toFloat(new float[(int) info.elements()], info.type(), f.bytes(name));
                }
            } catch (IllegalArgumentException refused) {
                // the contract: a named refusal
            }
        });
    }

    /** Where the fixture's tensor data starts (mutations past it change values, not structure). */
    private static int headerBytes(byte[] file) throws IOException {
        try (GgufFile f = GgufFile.open(TYPES)) {
            long end = 0;
            for (String n : f.names()) end = Math.max(end, f.info(n).offset() + f.info(n).byteSize());
            return (int) (file.length - end);
        }
    }

    private Path write(byte[] bytes) throws IOException {
        Path p = Files.createTempFile(dir, "forged", ".gguf");
        Files.write(p, bytes);
        return p;
    }

    private void assertRefused(byte[] bytes, String fragment) throws IOException {
        Path p = write(bytes);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> GgufFile.open(p).close(), fragment);
        assertTrue(e.getMessage().contains(fragment), "'" + fragment + "' not in: " + e.getMessage());
    }
}
