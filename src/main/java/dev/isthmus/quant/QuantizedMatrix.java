package dev.isthmus.quant;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A weight matrix of {@code rows x cols} kept quantized on a backend, in the layout the quantized
 * kernels read (cuda/quant_gemv.cuh): for Q8_0 and Q4_0 every row's values (int8, or the format's
 * nibbles) then every block's f16 scale; for Q4_K the format's own 144-byte blocks. The byte count is
 * the format's (padded to a multiple of 16), only the order differs, so {@link #toGgml()} gives the
 * format's bytes back exactly.
 * Closing it frees the bytes.
 */
public final class QuantizedMatrix implements AutoCloseable {
    private final GgmlType type;
    private final long rows, cols;
    private final Tensor bytes;

    private QuantizedMatrix(GgmlType type, long rows, long cols, Tensor bytes) {
        this.type = type;
        this.rows = rows;
        this.cols = cols;
        this.bytes = bytes;
    }

    /** The formats the quantized kernels take. */
    public static boolean kernelFormat(GgmlType type) {
        return type == GgmlType.Q8_0 || type == GgmlType.Q4_0 || type == GgmlType.Q4_K;
    }

    /** Quantizes {@code values} (rows x cols, row-major) to {@code type} on {@code backend}. */
    public static QuantizedMatrix quantize(Backend backend, GgmlType type, float[] values, long rows, long cols) {
        if (values == null) throw new IllegalArgumentException("values is null");
        if (rows * cols != values.length)
            throw new IllegalArgumentException(values.length + " values are not a " + rows + " x " + cols + " matrix");
        return fromGgml(backend, type, rows, cols, MemorySegment.ofArray(Quantize.fromFloat(checked(type, rows, cols), values)));
    }

    /** A matrix from the format's own bytes ({@code rows} rows of {@code cols / blockElements} blocks, as GGUF stores it). */
    public static QuantizedMatrix fromGgml(Backend backend, GgmlType type, long rows, long cols, MemorySegment ggml) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        checked(type, rows, cols);
        long size = type.bytes(rows * cols);
        if (ggml == null || ggml.byteSize() != size)
            throw new IllegalArgumentException("a " + rows + " x " + cols + " " + type + " matrix has " + size + " bytes, got "
                    + (ggml == null ? "null" : ggml.byteSize()));
        try (Tensor host = Tensor.allocateHost(DType.I8, paddedBytes(type, rows * cols))) {
            host.segment().fill((byte) 0);
            kernelLayout(type, rows * cols, ggml, host.segment());
            return new QuantizedMatrix(type, rows, cols, backend.copyOf(host));
        }
    }

    /**
     * The kernels' byte count of {@code elements} values: the format's, padded to 16 bytes, so that an
     * allocation starts 16-byte aligned even where it ends on a page boundary (the host emulation's
     * guard pages), the kernels' 16-byte loads stay inside it, and stacked matrices stay aligned.
     */
    static long paddedBytes(GgmlType type, long elements) {
        return (type.bytes(elements) + 15) / 16 * 16;
    }

    /** The format's bytes of {@code elements} values into the kernels' layout at the start of {@code out}. */
    static void kernelLayout(GgmlType type, long elements, MemorySegment ggml, MemorySegment out) {
        if (type == GgmlType.Q4_K) MemorySegment.copy(ggml, 0, out, 0, type.bytes(elements));
        else split(type, ggml, out, elements / 32);
    }

    static GgmlType checked(GgmlType type, long rows, long cols) {
        if (type == null || !kernelFormat(type)) throw new IllegalArgumentException("quantized matrices are Q8_0, Q4_0 or Q4_K, got " + type);
        if (rows < 1 || cols < 1) throw new IllegalArgumentException("a quantized matrix needs rows and cols >= 1, got " + rows + " x " + cols);
        if (cols % type.blockElements() != 0)
            throw new IllegalArgumentException("cols " + cols + " is not a multiple of the " + type.blockElements() + "-element blocks of " + type);
        if (rows > Integer.MAX_VALUE || cols > Integer.MAX_VALUE) throw new IllegalArgumentException("matrix of " + rows + " x " + cols + " is too large");
        return type;
    }

    /** Q8_0 / Q4_0 blocks (f16 d, then the values) to values first, scales after. */
    private static void split(GgmlType type, MemorySegment ggml, MemorySegment out, long blocks) {
        int valueBytes = type.blockBytes() - 2;
        long scales = blocks * valueBytes;
        for (long b = 0; b < blocks; b++) {
            long at = b * type.blockBytes();
            out.set(ValueLayout.JAVA_SHORT_UNALIGNED, scales + 2 * b, ggml.get(ValueLayout.JAVA_SHORT_UNALIGNED, at));
            MemorySegment.copy(ggml, at + 2, out, b * valueBytes, valueBytes);
        }
    }

    /** The format's bytes (host), as a GGUF file would hold them. */
    public byte[] toGgml() {
        try (Tensor host = bytes.isHost() ? null : Backend.cpu().copyOf(bytes)) {
            return ggmlOf(type, rows * cols, (host == null ? bytes : host).segment());
        }
    }

    /** The format's bytes of {@code elements} values held in the kernels' layout at the start of {@code layout} (host). */
    static byte[] ggmlOf(GgmlType type, long elements, MemorySegment layout) {
        byte[] device = layout.asSlice(0, type.bytes(elements)).toArray(ValueLayout.JAVA_BYTE);
        if (type == GgmlType.Q4_K) return device;
        MemorySegment in = MemorySegment.ofArray(device);
        byte[] ggml = new byte[device.length];
        MemorySegment out = MemorySegment.ofArray(ggml);
        long blocks = elements / 32;
        int valueBytes = type.blockBytes() - 2;
        for (long b = 0; b < blocks; b++) {
            long at = b * type.blockBytes();
            out.set(ValueLayout.JAVA_SHORT_UNALIGNED, at, in.get(ValueLayout.JAVA_SHORT_UNALIGNED, blocks * valueBytes + 2 * b));
            MemorySegment.copy(in, b * valueBytes, out, at + 2, valueBytes);
        }
        return ggml;
    }

    /** The dequantized values (rows x cols, row-major), by the format's CPU reference. */
    public float[] dequantize() {
        float[] values = new float[Math.toIntExact(rows * cols)];
        Dequantize.toFloat(values, type, MemorySegment.ofArray(toGgml()));
        return values;
    }

    public GgmlType type() {
        return type;
    }

    public long rows() {
        return rows;
    }

    public long cols() {
        return cols;
    }

    /** The bytes in the kernels' layout (I8, one dimension, padded to a multiple of 16), on the backend the matrix was made for. */
    public Tensor bytes() {
        return bytes;
    }

    @Override
    public void close() {
        bytes.close();
    }
}
