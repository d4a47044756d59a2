package dev.isthmus.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A bounds-checked cursor over a GGUF header: every read names what it reads, and running past
 * the end of the file is an IllegalArgumentException saying where, never an out-of-bounds access.
 */
final class GgufReader {
    /** "GGUF" as a little-endian u32. */
    static final int MAGIC = 0x46554747;
    /** Metadata value types of the format. */
    static final int UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7, STRING = 8,
            ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12;
    /** Arrays of arrays are allowed; deeper than this is a forged header. */
    static final int MAX_ARRAY_DEPTH = 4;
    /** Longer than any key or vocabulary entry a real file has. */
    static final long MAX_STRING_BYTES = 1 << 26;

    private static final ValueLayout.OfInt U32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment file;
    private final Path path;
    private long position;

    GgufReader(MemorySegment file, Path path) {
        this.file = file;
        this.path = path;
    }

    long position() {
        return position;
    }

    IllegalArgumentException error(String message) {
        return new IllegalArgumentException(path + ": " + message + " (header byte " + position + ")");
    }

    /** Checks the magic and returns the version; versions other than 2 and 3 are refused by number. */
    static int checkMagicAndVersion(GgufReader in) {
        if (in.file.byteSize() < 8 || in.file.get(U32, 0) != MAGIC)
            throw new IllegalArgumentException(in.path + " is not a GGUF file (no \"GGUF\" magic)");
        in.position = 4;
        int version = (int) in.u32("version");
        if (version == 2 || version == 3) return version;
        if (Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3)
            throw in.error("a big-endian GGUF file, which Isthmus does not read");
        throw in.error("GGUF version " + Integer.toUnsignedString(version) + " is not supported (versions 2 and 3 are)");
    }

    private void need(long bytes, String what) {
        if (bytes < 0 || bytes > file.byteSize() - position)
            throw error("truncated: " + what + " needs " + bytes + " bytes, " + (file.byteSize() - position) + " are left");
    }

    long u32(String what) {
        need(4, what);
        long v = Integer.toUnsignedLong(file.get(U32, position));
        position += 4;
        return v;
    }

    long u64(String what) {
        need(8, what);
        long v = file.get(U64, position);
        position += 8;
        return v;
    }

    /** A u64 count of items each at least {@code minItemBytes} long, checked against the bytes left. */
    long count(String what, long minItemBytes) {
        long n = u64(what);
        if (n < 0 || n > (file.byteSize() - position) / minItemBytes)
            throw error("truncated or forged: " + what + " " + Long.toUnsignedString(n) + " cannot fit in the " + (file.byteSize() - position) + " bytes left");
        return n;
    }

    String string(String what) {
        long length = u64("length of " + what);
        if (length < 0 || length > MAX_STRING_BYTES) throw error(what + " has length " + Long.toUnsignedString(length));
        need(length, what);
        try {
            String s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(file.asSlice(position, length).asByteBuffer()).toString();
            position += length;
            return s;
        } catch (CharacterCodingException e) {
            throw error(what + " is not valid UTF-8");
        }
    }

    /** A metadata value of the type read first. */
    Object value(String key) {
        return value((int) u32("value type of '" + key + "'"), key, 0);
    }

    private Object value(int type, String key, int depth) {
        String what = "value of '" + key + "'";
        switch (type) {
            case UINT8, INT8, BOOL -> {
                need(1, what);
                byte b = file.get(ValueLayout.JAVA_BYTE, position++);
                if (type == BOOL) {
                    if (b != 0 && b != 1) throw error("boolean " + what + " is " + b + ", neither 0 nor 1");
                    return b == 1;
                }
                return type == UINT8 ? (long) (b & 0xff) : (long) b;
            }
            case UINT16, INT16 -> {
                need(2, what);
                short s = file.get(U16, position);
                position += 2;
                return type == UINT16 ? (long) (s & 0xffff) : (long) s;
            }
            case UINT32 -> {
                return u32(what);
            }
            case INT32 -> {
                return (long) (int) u32(what);
            }
            case FLOAT32 -> {
                return (double) Float.intBitsToFloat((int) u32(what));
            }
            case UINT64, INT64 -> {
                long v = u64(what);
                if (type == UINT64 && v < 0) throw error(what + " " + Long.toUnsignedString(v) + " does not fit in 63 bits");
                return v;
            }
            case FLOAT64 -> {
                return Double.longBitsToDouble(u64(what));
            }
            case STRING -> {
                return string(what);
            }
            case ARRAY -> {
                if (depth >= MAX_ARRAY_DEPTH) throw error(what + " nests arrays deeper than " + MAX_ARRAY_DEPTH);
                int elementType = (int) u32("element type of '" + key + "'");
                long n = count("element count of '" + key + "'", minBytes(elementType, key));
                List<Object> list = new ArrayList<>((int) Math.min(n, 1 << 16));
                for (long i = 0; i < n; i++) list.add(value(elementType, key, depth + 1));
                return List.copyOf(list);
            }
            default -> throw error("metadata '" + key + "' has unknown value type " + Integer.toUnsignedString(type));
        }
    }

    private long minBytes(int type, String key) {
        return switch (type) {
            case UINT8, INT8, BOOL -> 1;
            case UINT16, INT16 -> 2;
            case UINT32, INT32, FLOAT32 -> 4;
            case UINT64, INT64, FLOAT64, STRING -> 8;
            case ARRAY -> 12;
            default -> throw error("metadata '" + key + "' has arrays of unknown value type " + Integer.toUnsignedString(type));
        };
    }
}
