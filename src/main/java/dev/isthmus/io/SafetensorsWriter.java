package dev.isthmus.io;

import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Writes host tensors to a safetensors file, in the map's iteration order, packed one after the
 * other. The header is padded with spaces so that the data buffer starts at a multiple of 8
 * bytes, as the reference implementation does, which keeps every tensor of an 8-byte dtype
 * aligned when the file is mapped.
 */
public final class SafetensorsWriter {
    private SafetensorsWriter() {}

    public static void write(Path path, Map<String, Tensor> tensors) throws IOException {
        write(path, tensors, Map.of());
    }

    /** Writes {@code tensors} (host tensors, any layout) and the string {@code metadata} to {@code path}. */
    public static void write(Path path, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        StringJoiner header = new StringJoiner(",", "{", "}");
        if (!metadata.isEmpty()) {
            StringJoiner meta = new StringJoiner(",", "{", "}");
            metadata.forEach((k, v) -> meta.add(Json.quote(k) + ":" + Json.quote(v)));
            header.add(Json.quote(SafetensorsFormat.METADATA_KEY) + ":" + meta);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = e.getKey();
            Tensor t = e.getValue();
            if (name.equals(SafetensorsFormat.METADATA_KEY)) throw new IllegalArgumentException("a tensor cannot be named " + name);
            if (t == null || t.isClosed() || !t.isHost())
                throw new IllegalArgumentException("tensor '" + name + "' must be an open host tensor, got " + t);
            StringJoiner shape = new StringJoiner(",", "[", "]");
            for (long d : t.shape()) shape.add(Long.toString(d));
            header.add(Json.quote(name) + ":{\"dtype\":\"" + SafetensorsFormat.name(t.dtype()) + "\",\"shape\":" + shape
                    + ",\"data_offsets\":[" + offset + "," + (offset + t.byteSize()) + "]}");
            offset += t.byteSize();
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();
        try (FileChannel out = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                StandardOpenOption.TRUNCATE_EXISTING)) {
            writeFully(out, head);
            for (Tensor t : tensors.values()) {
                if (t.isContiguous()) {
                    writeFully(out, t.segment().asByteBuffer());
                } else {
                    try (Tensor packed = t.to(t.dtype())) { // a contiguous copy
                        writeFully(out, packed.segment().asByteBuffer());
                    }
                }
            }
        }
    }

    private static void writeFully(FileChannel out, ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) out.write(bytes);
    }
}
