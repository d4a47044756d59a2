package dev.isthmus.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The safetensors reader and writer: round trips, a file assembled by hand, and every refusal. */
class SafetensorsTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(DType.class)
    void writerThenReaderGivesTheSameBytesShapeAndDtype(DType dtype) throws IOException {
        Random random = new Random(dtype.ordinal());
        Path file = dir.resolve("t.safetensors");
        try (Tensor a = random(random, dtype, 3, 5, 7); Tensor scalar = random(random, dtype); Tensor empty = Tensor.allocateHost(dtype, 0, 4);
             Tensor b = random(random, dtype, 13)) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("a", a);
            tensors.put("scalar", scalar);
            tensors.put("empty", empty);
            tensors.put("b.weight", b);
            SafetensorsWriter.write(file, tensors, Map.of("format", "pt", "note", "quote \" and \u00e9"));
            assertEquals(0, (8 + headerLength(file)) % 8, "the data buffer starts 8-byte aligned");
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(List.of("a", "scalar", "empty", "b.weight"), f.names());
                assertEquals(Map.of("format", "pt", "note", "quote \" and \u00e9"), f.metadata());
                for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                    Tensor read = f.tensor(e.getKey());
                    assertEquals(dtype, read.dtype(), e.getKey());
                    assertArrayEquals(e.getValue().shape(), read.shape(), e.getKey());
                    assertArrayEquals(e.getValue().segment().toArray(ValueLayout.JAVA_BYTE),
                            read.segment().toArray(ValueLayout.JAVA_BYTE), e.getKey());
                }
            }
        }
    }

    @Test
    void writerPacksAStridedView() throws IOException {
        Path file = dir.resolve("view.safetensors");
        try (Tensor t = Tensor.fromFloats(DType.F32, new float[] {0, 1, 2, 3, 4, 5}, 2, 3)) {
            SafetensorsWriter.write(file, Map.of("col", t.slice(1, 1, 3)));
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertArrayEquals(new float[] {1, 2, 4, 5}, f.tensor("col").toFloatArray());
            }
        }
    }

    /**
     * A file not written by the project's writer: header text and buffer put together by hand,
     * with an unpadded header length, tensors stored in another order than the header lists them,
     * a gap between them, a scalar and no metadata.
     */
    @Test
    void readsAFileAssembledByHand() throws IOException {
        String header = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                + "\"ids\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[16,24]},"
                + "\"x\":{\"shape\":[1,2],\"data_offsets\":[0,8],\"dtype\":\"F32\"},"
                + "\"h\":{\"dtype\":\"F16\",\"shape\":[],\"data_offsets\":[8,10]}}";
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer bytes = ByteBuffer.allocate(8 + json.length + 24).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(json.length).put(json);
        bytes.putFloat(1.5f).putFloat(-2f);                  // x at [0, 8)
        bytes.putShort((short) 0x3C00);                      // h = 1.0 in f16 at [8, 10)
        bytes.putShort((short) 0x7777);                      // 2 bytes no tensor claims
        bytes.putShort((short) 0x4040).putShort((short) 0xBF80); // w = [3.0, -1.0] in bf16 at [12, 16)
        bytes.putLong(-5_000_000_000L);                      // ids at [16, 24)
        Path file = dir.resolve("by-hand.safetensors");
        Files.write(file, bytes.array());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("w", "ids", "x", "h"), f.names());
            assertTrue(f.metadata().isEmpty());
            Tensor x = f.tensor("x");
            assertEquals(DType.F32, x.dtype());
            assertArrayEquals(new long[] {1, 2}, x.shape());
            assertArrayEquals(new float[] {1.5f, -2f}, x.toFloatArray());
            assertArrayEquals(new float[] {1f}, f.tensor("h").toFloatArray());
            assertArrayEquals(new long[] {}, f.tensor("h").shape());
            assertArrayEquals(new float[] {3f, -1f}, f.tensor("w").toFloatArray());
            assertArrayEquals(new long[] {-5_000_000_000L}, f.tensor("ids").toLongArray());
            assertEquals(8, f.entry("x").byteSize());
        }
    }

    @Test
    void tensorsAreClosedWithTheFile() throws IOException {
        Path file = dir.resolve("c.safetensors");
        try (Tensor t = Tensor.fromFloats(DType.F32, new float[] {1, 2}, 2)) {
            SafetensorsWriter.write(file, Map.of("t", t));
        }
        SafetensorsFile f = SafetensorsFile.open(file);
        Tensor t = f.tensor("t");
        f.close();
        assertTrue(t.isClosed());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, t::toFloatArray);
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> f.tensor("t"));
        f.close(); // idempotent
    }

    @ParameterizedTest
    @ValueSource(strings = {"F64", "BOOL", "U8", "F8_E4M3", "f32"})
    void refusesAnUnsupportedDtypeByName(String dtype) throws IOException {
        Path file = handMade("{\"t\":{\"dtype\":\"" + dtype + "\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains("'t'") && e.getMessage().contains(dtype) && e.getMessage().contains("not supported"), e.getMessage());
    }

    @Test
    void refusesBadHeaders() throws IOException {
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "'t'", "needs 12");
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4), "'t'", "outside the data buffer");
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "'t'", "negative");
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "'t'", "shape");
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8), "'t'", "data_offsets");
        assertRefused(handMade("{\"t\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "'t'", "non-integer");
        assertRefused(handMade("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "'a' and 'b'", "overlap");
        assertRefused(handMade("{\"__metadata__\":{\"n\":1}}", 0), "__metadata__", "not a string");
        assertRefused(handMade("[1,2]", 0), "not a JSON object");
        assertRefused(handMade("{\"t\":{", 0), "bad safetensors header", "JSON");
    }

    @Test
    void refusesFilesThatAreNotSafetensors() throws IOException {
        Path tiny = dir.resolve("tiny");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertRefused(tiny, "shorter than the 8-byte header length");
        Path huge = dir.resolve("huge");
        Files.write(huge, ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 40).array());
        assertRefused(huge, "header length", "does not fit");
        Path text = dir.resolve("text");
        Files.writeString(text, "this is not a safetensors file at all");
        assertRefused(text, "header length");
        Path notUtf8 = dir.resolve("latin1");
        Files.write(notUtf8, ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putLong(4).put(new byte[] {'{', (byte) 0xE9, '}', ' '}).array());
        assertRefused(notUtf8, "UTF-8");
        assertThrows(NoSuchFileException.class, () -> SafetensorsFile.open(dir.resolve("missing.safetensors")));
    }

    @Test
    void writerRefusesDeviceLikeOrClosedTensorsByName() {
        Tensor closed = Tensor.allocateHost(DType.F32, 2);
        closed.close();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SafetensorsWriter.write(dir.resolve("x"), Map.of("gone", closed)));
        assertTrue(e.getMessage().contains("'gone'"), e.getMessage());
    }

    private static Tensor random(Random random, DType dtype, long... shape) {
        if (dtype.isFloatingPoint()) return RandomTensors.normal(random, dtype, 1f, shape);
        Tensor t = Tensor.allocateHost(dtype, shape);
        long[] values = new long[(int) t.elementCount()];
        for (int i = 0; i < values.length; i++) values[i] = dtype == DType.I8 ? random.nextInt(256) - 128 : dtype == DType.I32 ? random.nextInt() : random.nextLong();
        t.copyFrom(values);
        return t;
    }

    private static long headerLength(Path file) throws IOException {
        return ByteBuffer.wrap(Files.readAllBytes(file), 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }

    private Path handMade(String header, int bufferBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer bytes = ByteBuffer.allocate(8 + json.length + bufferBytes).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(json.length).put(json);
        Path file = Files.createTempFile(dir, "hand", ".safetensors");
        Files.write(file, bytes.array());
        return file;
    }

    private static void assertRefused(Path file, String... fragments) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SafetensorsFile.open(file).close());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "'" + f + "' not in: " + e.getMessage());
    }
}
