package dev.isthmus.io;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/** Assembles GGUF bytes by hand, field by field, so that a test can forge any one of them. */
final class GgufBytes {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    GgufBytes u8(int v) {
        out.write(v);
        return this;
    }

    GgufBytes u32(long v) {
        return put(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt((int) v).array());
    }

    GgufBytes u64(long v) {
        return put(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array());
    }

    GgufBytes string(String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        return u64(b.length).put(b);
    }

    GgufBytes put(byte[] b) {
        out.writeBytes(b);
        return this;
    }

    /** Magic, version and the two counts. */
    GgufBytes header(int version, long tensors, long metadata) {
        return u32(GgufReader.MAGIC).u32(version).u64(tensors).u64(metadata);
    }

    /** A tensor info: name, dims (fastest first), type id, offset. */
    GgufBytes tensor(String name, long[] dims, int type, long offset) {
        string(name).u32(dims.length);
        for (long d : dims) u64(d);
        return u32(type).u64(offset);
    }

    /** Zeros up to the next multiple of {@code alignment}. */
    GgufBytes pad(int alignment) {
        while (out.size() % alignment != 0) out.write(0);
        return this;
    }

    int size() {
        return out.size();
    }

    byte[] bytes() {
        return out.toByteArray();
    }
}
