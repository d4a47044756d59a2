package dev.isthmus.io;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A safetensors file, memory-mapped read-only. The header is parsed and checked when the file is
 * opened (dtypes, shapes, offsets inside the buffer and of the size the shape needs, no two tensors
 * overlapping); {@link #tensor} then hands out host tensors that borrow the mapped bytes, so
 * opening a multi-gigabyte checkpoint reads nothing but the header.
 *
 * <p>The tensors live as long as the file: {@link #close()} unmaps it and closes every tensor
 * handed out, so a later use of one is an IllegalArgumentException rather than a read of unmapped
 * memory. The mapping is read-only; copy a tensor before writing to it.
 */
public final class SafetensorsFile implements AutoCloseable {
    /** One tensor's header entry; offsets are relative to the start of the data buffer. */
    public record Entry(String name, DType dtype, long[] shape, long begin, long end) {
        public Entry {
            shape = shape.clone();
        }

        @Override
        public long[] shape() {
            return shape.clone();
        }

        public long byteSize() {
            return end - begin;
        }
    }

    private final Path path;
    private final Arena arena;
    private final MemorySegment buffer;
    private final Map<String, Entry> entries;
    private final Map<String, String> metadata;
    private final List<Tensor> handedOut = new ArrayList<>();

    private SafetensorsFile(Path path, Arena arena, MemorySegment buffer, Map<String, Entry> entries, Map<String, String> metadata) {
        this.path = path;
        this.arena = arena;
        this.buffer = buffer;
        this.entries = entries;
        this.metadata = metadata;
    }

    /**
     * Maps and checks {@code path}. An unreadable file is an IOException; a file that is not valid
     * safetensors is an IllegalArgumentException saying what is wrong (and naming the tensor).
     */
    public static SafetensorsFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) throw new IllegalArgumentException(path + " is not a safetensors file: " + fileSize + " bytes, shorter than the 8-byte header length");
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            long headerBytes = file.get(ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), 0);
            if (headerBytes < 2 || headerBytes > Math.min(fileSize - 8, SafetensorsFormat.MAX_HEADER_BYTES))
                throw new IllegalArgumentException(path + " is not a safetensors file: header length " + Long.toUnsignedString(headerBytes)
                        + " does not fit in the file of " + fileSize + " bytes");
            String header = utf8(file.asSlice(8, headerBytes), path);
            MemorySegment buffer = file.asSlice(8 + headerBytes);
            Map<String, String> metadata = new LinkedHashMap<>();
            Map<String, Entry> entries = parseHeader(header, buffer.byteSize(), metadata, path);
            return new SafetensorsFile(path, arena, buffer, entries, metadata);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** Tensor names in the header's order. */
    public List<String> names() {
        return List.copyOf(entries.keySet());
    }

    public boolean contains(String name) {
        return entries.containsKey(name);
    }

    /** The header entry of {@code name}; an IllegalArgumentException naming it if there is none. */
    public Entry entry(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new IllegalArgumentException("no tensor '" + name + "' in " + path);
        return e;
    }

    /** The header's "__metadata__" (empty if it has none). */
    public Map<String, String> metadata() {
        return Collections.unmodifiableMap(metadata);
    }

    /** A host tensor borrowing the mapped bytes of {@code name} (read-only; closed with the file). */
    public synchronized Tensor tensor(String name) {
        if (!arena.scope().isAlive()) throw new IllegalArgumentException(path + " is closed");
        Entry e = entry(name);
        Tensor t = Tensor.wrapHost(buffer.asSlice(e.begin, e.byteSize()), e.dtype, e.shape);
        handedOut.add(t);
        return t;
    }

    /** Closes every tensor handed out, then unmaps the file. Idempotent. */
    @Override
    public synchronized void close() {
        if (!arena.scope().isAlive()) return;
        for (Tensor t : handedOut) t.close(); // marks them closed; the borrowed bytes are not freed by them
        handedOut.clear();
        arena.close();
    }

    private static String utf8(MemorySegment bytes, Path path) {
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes.asByteBuffer()).toString();
        } catch (CharacterCodingException e) {
            throw new IllegalArgumentException(path + ": the safetensors header is not valid UTF-8");
        }
    }

    private static Map<String, Entry> parseHeader(String header, long bufferBytes, Map<String, String> metadata, Path path) {
        Object root;
        try {
            root = Json.parse(header);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": bad safetensors header: " + e.getMessage());
        }
        if (!(root instanceof Map<?, ?> map)) throw new IllegalArgumentException(path + ": the safetensors header is not a JSON object");
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (Map.Entry<?, ?> kv : map.entrySet()) {
            String name = (String) kv.getKey();
            if (name.equals(SafetensorsFormat.METADATA_KEY)) {
                readMetadata(kv.getValue(), metadata, path);
                continue;
            }
            entries.put(name, readEntry(name, kv.getValue(), bufferBytes, path));
        }
        checkNoOverlap(entries.values(), path);
        return entries;
    }

    private static void readMetadata(Object value, Map<String, String> metadata, Path path) {
        if (!(value instanceof Map<?, ?> map)) throw new IllegalArgumentException(path + ": __metadata__ is not a JSON object");
        for (Map.Entry<?, ?> kv : map.entrySet()) {
            if (!(kv.getValue() instanceof String s))
                throw new IllegalArgumentException(path + ": __metadata__ value of '" + kv.getKey() + "' is not a string");
            metadata.put((String) kv.getKey(), s);
        }
    }

    private static Entry readEntry(String name, Object value, long bufferBytes, Path path) {
        String where = path + ": tensor '" + name + "'";
        if (!(value instanceof Map<?, ?> fields)) throw new IllegalArgumentException(where + " is not a JSON object");
        if (!(fields.get("dtype") instanceof String dtypeName)) throw new IllegalArgumentException(where + " has no string \"dtype\"");
        DType dtype;
        try {
            dtype = SafetensorsFormat.dtype(dtypeName, name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": " + e.getMessage());
        }
        long[] shape = longs(fields.get("shape"), where, "shape", -1);
        long[] offsets = longs(fields.get("data_offsets"), where, "data_offsets", 2);
        long elements = 1;
        for (long d : shape) {
            if (d < 0) throw new IllegalArgumentException(where + " has a negative dimension in shape " + Arrays.toString(shape));
            elements = multiply(elements, d, where);
        }
        long needed = multiply(elements, dtype.byteSize(), where);
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin || end > bufferBytes)
            throw new IllegalArgumentException(where + " has data_offsets [" + begin + ", " + end + "] outside the data buffer of "
                    + bufferBytes + " bytes");
        if (end - begin != needed)
            throw new IllegalArgumentException(where + " has " + (end - begin) + " bytes of data, but shape " + Arrays.toString(shape)
                    + " of " + dtypeName + " needs " + needed);
        return new Entry(name, dtype, shape, begin, end);
    }

    private static long[] longs(Object value, String where, String field, int length) {
        if (!(value instanceof List<?> list)) throw new IllegalArgumentException(where + " has no \"" + field + "\" list");
        if (length >= 0 && list.size() != length)
            throw new IllegalArgumentException(where + " has " + list.size() + " entries in \"" + field + "\", expected " + length);
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Long v)) throw new IllegalArgumentException(where + " has a non-integer in \"" + field + "\": " + list.get(i));
            out[i] = v;
        }
        return out;
    }

    private static long multiply(long a, long b, String where) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException(where + " is too large (size overflows 64 bits)");
        }
    }

    private static void checkNoOverlap(Collection<Entry> entries, Path path) {
        List<Entry> sorted = new ArrayList<>(entries);
        sorted.removeIf(e -> e.byteSize() == 0); // empty tensors occupy nothing
        sorted.sort(Comparator.comparingLong(Entry::begin));
        for (int i = 1; i < sorted.size(); i++)
            if (sorted.get(i).begin < sorted.get(i - 1).end)
                throw new IllegalArgumentException(path + ": tensors '" + sorted.get(i - 1).name + "' and '" + sorted.get(i).name
                        + "' overlap in the data buffer");
    }
}
