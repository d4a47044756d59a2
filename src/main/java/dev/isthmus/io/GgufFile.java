package dev.isthmus.io;

import dev.isthmus.quant.GgmlType;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A GGUF file (format versions 2 and 3), memory-mapped read-only. The layout, all little-endian:
 * <pre>
 *   "GGUF"  u32 version  u64 tensor_count  u64 metadata_count
 *   metadata_count x (string key, u32 value_type, value)
 *   tensor_count   x (string name, u32 n_dims, u64 dims[n_dims], u32 ggml_type, u64 offset)
 *   padding to general.alignment (default 32), then the tensor data; offsets count from its start
 * </pre>
 * A string is a u64 byte length and UTF-8 bytes; an array a u32 element type, a u64 count and the
 * elements. {@code dims[0]} varies fastest: a matrix of {@code rows x cols} is stored with
 * {@code dims = [cols, rows]}, and {@link TensorInfo#shape()} gives it back row-major ({@code [rows, cols]}).
 *
 * <p>Everything is checked when the file is opened (truncation, unknown value and tensor types,
 * offsets off the alignment, tensors past the end or overlapping, sizes that overflow); the tensor
 * data is only mapped, so opening a large model reads nothing but the header. Metadata values are
 * Long (every integer type), Double (f32, f64), Boolean, String or List of those.
 */
public final class GgufFile implements AutoCloseable {
    /** One tensor's info; {@code offset} counts from the start of the tensor data. */
    public record TensorInfo(String name, GgmlType type, long[] dims, long offset, long byteSize) {
        public TensorInfo {
            dims = dims.clone();
        }

        @Override
        public long[] dims() {
            return dims.clone();
        }

        /** The shape row-major (the slowest dimension first), as safetensors and numpy give it. */
        public long[] shape() {
            long[] shape = new long[dims.length];
            for (int i = 0; i < dims.length; i++) shape[i] = dims[dims.length - 1 - i];
            return shape;
        }

        public long elements() {
            long n = 1;
            for (long d : dims) n *= d; // checked not to overflow when the file was opened
            return n;
        }
    }

    public static final int DEFAULT_ALIGNMENT = 32;
    /** ggml's GGML_MAX_DIMS. */
    static final int MAX_DIMS = 4;

    private final Path path;
    private final int version;
    private final Arena arena;
    private final MemorySegment data;
    private final Map<String, Object> metadata;
    private final Map<String, TensorInfo> tensors;

    private GgufFile(Path path, int version, Arena arena, MemorySegment data, Map<String, Object> metadata,
                     Map<String, TensorInfo> tensors) {
        this.path = path;
        this.version = version;
        this.arena = arena;
        this.data = data;
        this.metadata = metadata;
        this.tensors = tensors;
    }

    /**
     * Maps and checks {@code path}. An unreadable file is an IOException; a file that is not valid
     * GGUF, or uses a version or tensor type Isthmus does not read, is an IllegalArgumentException
     * saying what is wrong and where.
     */
    public static GgufFile open(Path path) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            MemorySegment file = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
            GgufReader in = new GgufReader(file, path);
            int version = GgufReader.checkMagicAndVersion(in);
            long tensorCount = in.count("tensor count", 8 + 8 + 4 + 8 + 4 + 8);
            long metadataCount = in.count("metadata count", 8 + 4 + 1);
            Map<String, Object> metadata = new LinkedHashMap<>();
            for (long i = 0; i < metadataCount; i++) {
                String key = in.string("metadata key");
                if (metadata.containsKey(key)) throw in.error("metadata key '" + key + "' appears twice");
                metadata.put(key, in.value(key));
            }
            int alignment = alignment(metadata, path);
            List<TensorInfo> infos = new ArrayList<>();
            for (long i = 0; i < tensorCount; i++) infos.add(tensorInfo(in, alignment));
            long dataStart = alignUp(in.position(), alignment);
            if (dataStart > file.byteSize() && !infos.isEmpty())
                throw new IllegalArgumentException(path + ": truncated: the tensor data would start at byte " + dataStart
                        + " of a " + file.byteSize() + "-byte file");
            MemorySegment data = file.asSlice(Math.min(dataStart, file.byteSize()));
            return new GgufFile(path, version, arena, data, metadata, checkTensors(infos, data.byteSize(), path));
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    /** The file's format version (2 or 3). */
    public int version() {
        return version;
    }

    /** Every metadata key and value in the file's order. */
    public Map<String, Object> metadata() {
        return Collections.unmodifiableMap(metadata);
    }

    public boolean has(String key) {
        return metadata.containsKey(key);
    }

    /** A string value; an IllegalArgumentException naming the key when it is missing or not a string. */
    public String string(String key) {
        return typed(key, String.class, "a string");
    }

    /** An integer value of any width. */
    public long integer(String key) {
        return typed(key, Long.class, "an integer");
    }

    /** A floating-point value (an integer one is accepted too). */
    public double number(String key) {
        Object v = require(key);
        if (v instanceof Double d) return d;
        if (v instanceof Long l) return l;
        throw new IllegalArgumentException(path + ": metadata '" + key + "' is not a number");
    }

    public boolean bool(String key) {
        return typed(key, Boolean.class, "a boolean");
    }

    /** An array value. */
    public List<?> array(String key) {
        return typed(key, List.class, "an array");
    }

    /** Tensor names in the file's order. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) throw new IllegalArgumentException("no tensor '" + name + "' in " + path);
        return t;
    }

    /** The mapped bytes of {@code name} (read-only; valid until the file is closed). */
    public MemorySegment bytes(String name) {
        if (!arena.scope().isAlive()) throw new IllegalArgumentException(path + " is closed");
        TensorInfo t = info(name);
        return data.asSlice(t.offset, t.byteSize).asReadOnly();
    }

    /** Unmaps the file; every segment {@link #bytes} handed out becomes unusable. Idempotent. */
    @Override
    public synchronized void close() {
        if (arena.scope().isAlive()) arena.close();
    }

    private Object require(String key) {
        Object v = metadata.get(key);
        if (v == null) throw new IllegalArgumentException(path + " has no metadata '" + key + "'");
        return v;
    }

    private <V> V typed(String key, Class<V> type, String what) {
        Object v = require(key);
        if (!type.isInstance(v)) throw new IllegalArgumentException(path + ": metadata '" + key + "' is not " + what);
        return type.cast(v);
    }

    private static int alignment(Map<String, Object> metadata, Path path) {
        Object a = metadata.get("general.alignment");
        if (a == null) return DEFAULT_ALIGNMENT;
        if (!(a instanceof Long v) || v <= 0 || v > (1 << 20) || Long.bitCount(v) != 1)
            throw new IllegalArgumentException(path + ": general.alignment " + a + " is not a power of two up to 2^20");
        return (int) (long) v;
    }

    private static TensorInfo tensorInfo(GgufReader in, int alignment) {
        String name = in.string("tensor name");
        long nDims = in.u32("dimension count of '" + name + "'");
        if (nDims < 1 || nDims > MAX_DIMS)
            throw in.error("tensor '" + name + "' has " + nDims + " dimensions (1 to " + MAX_DIMS + " allowed)");
        long[] dims = new long[(int) nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++) {
            dims[d] = in.u64("dimension " + d + " of '" + name + "'");
            if (dims[d] < 0) throw in.error("tensor '" + name + "' has dimension " + Long.toUnsignedString(dims[d]));
            elements = multiply(elements, dims[d], in, name);
        }
        int typeId = (int) in.u32("type of '" + name + "'");
        GgmlType type;
        try {
            type = GgmlType.of(typeId);
        } catch (IllegalArgumentException e) {
            throw in.error("tensor '" + name + "': " + e.getMessage());
        }
        if (!type.supported())
            throw in.error("tensor '" + name + "' has type " + type + ", which Isthmus does not read (it reads "
                    + supportedTypes() + ")");
        if (dims[0] % type.blockElements() != 0)
            throw in.error("tensor '" + name + "' has rows of " + dims[0] + " elements, not a multiple of the "
                    + type.blockElements() + "-element blocks of " + type);
        long offset = in.u64("offset of '" + name + "'");
        if (offset < 0 || offset % alignment != 0)
            throw in.error("tensor '" + name + "' has offset " + Long.toUnsignedString(offset) + ", not a multiple of the alignment "
                    + alignment);
        long bytes;
        try {
            bytes = type.bytes(elements);
        } catch (ArithmeticException e) {
            throw in.error("tensor '" + name + "' is too large (its size overflows 64 bits)");
        }
        return new TensorInfo(name, type, dims, offset, bytes);
    }

    private static Map<String, TensorInfo> checkTensors(List<TensorInfo> infos, long dataBytes, Path path) {
        Map<String, TensorInfo> byName = new LinkedHashMap<>();
        for (TensorInfo t : infos) {
            if (byName.put(t.name, t) != null) throw new IllegalArgumentException(path + ": tensor '" + t.name + "' appears twice");
            if (t.offset > dataBytes || t.byteSize > dataBytes - t.offset)
                throw new IllegalArgumentException(path + ": tensor '" + t.name + "' (" + t.byteSize + " bytes at offset " + t.offset
                        + ") runs past the end of the tensor data (" + dataBytes + " bytes): the file is truncated or the offset forged");
        }
        List<TensorInfo> sorted = new ArrayList<>(infos);
        sorted.removeIf(t -> t.byteSize == 0);
        sorted.sort(Comparator.comparingLong(TensorInfo::offset));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo a = sorted.get(i - 1), b = sorted.get(i);
            if (b.offset < a.offset + a.byteSize)
                throw new IllegalArgumentException(path + ": tensors '" + a.name + "' and '" + b.name + "' overlap in the tensor data");
        }
        return byName;
    }

    private static String supportedTypes() {
        return Arrays.stream(GgmlType.values()).filter(GgmlType::supported).map(Enum::name).toList().toString();
    }

    private static long multiply(long a, long b, GgufReader in, String name) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw in.error("tensor '" + name + "' is too large (its element count overflows 64 bits)");
        }
    }

    static long alignUp(long position, int alignment) {
        return (position + alignment - 1) / alignment * alignment;
    }
}
