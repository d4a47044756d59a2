package dev.isthmus.quant;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.lang.foreign.MemorySegment;

/**
 * The stacked matrices of a mixture of experts kept quantized on a backend: {@code experts} matrices of
 * {@code rows x cols} in one format, expert e's in {@link QuantizedMatrix}'s layout starting at byte
 * {@code e * expertBytes()} of {@link #bytes()}, where {@link #expertBytes()} is one matrix's byte
 * count padded to 16 (so every expert starts 16-byte aligned). The grouped expert GEMMs
 * (dev.isthmus.moe.ExpertGemm) read them as they lie. Closing it frees the bytes.
 */
public final class QuantizedExperts implements AutoCloseable {
    private final GgmlType type;
    private final long experts, rows, cols;
    private final Tensor bytes;

    private QuantizedExperts(GgmlType type, long experts, long rows, long cols, Tensor bytes) {
        this.type = type;
        this.experts = experts;
        this.rows = rows;
        this.cols = cols;
        this.bytes = bytes;
    }

    /** From the format's bytes of the experts' matrices one after another, as GGUF stores an (E, rows, cols) tensor. */
    public static QuantizedExperts fromGgml(Backend backend, GgmlType type, long experts, long rows, long cols, MemorySegment ggml) {
        long size = checked(backend, type, experts, rows, cols);
        requireBytes("ggml", ggml, experts * size);
        return build(backend, type, experts, rows, cols, e -> ggml.asSlice(e * size, size));
    }

    /**
     * Two (E, rows, cols) stacks as GGUF stores them (a MoE layer's gate and up projections) as one of
     * (E, 2 rows, cols): each expert's {@code first} rows, then its {@code second} rows.
     */
    public static QuantizedExperts fromGgmlPair(Backend backend, GgmlType type, long experts, long rows, long cols, MemorySegment first,
                                                MemorySegment second) {
        long half = checked(backend, type, experts, rows, cols);
        requireBytes("first", first, experts * half);
        requireBytes("second", second, experts * half);
        return build(backend, type, experts, 2 * rows, cols, e -> {
            MemorySegment both = MemorySegment.ofArray(new byte[Math.toIntExact(2 * half)]);
            MemorySegment.copy(first, e * half, both, 0, half);
            MemorySegment.copy(second, e * half, both, half, half);
            return both;
        });
    }

    private static long checked(Backend backend, GgmlType type, long experts, long rows, long cols) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (experts < 1) throw new IllegalArgumentException("experts must be positive, got " + experts);
        QuantizedMatrix.checked(type, rows, cols);
        return type.bytes(rows * cols);
    }

    private static void requireBytes(String what, MemorySegment ggml, long size) {
        if (ggml == null || ggml.byteSize() != size)
            throw new IllegalArgumentException(what + ": the experts' matrices have " + size + " bytes, got " + (ggml == null ? "null" : ggml.byteSize()));
    }

    private interface ExpertBytes {
        MemorySegment of(long expert);
    }

    private static QuantizedExperts build(Backend backend, GgmlType type, long experts, long rows, long cols, ExpertBytes ggml) {
        long stride = QuantizedMatrix.paddedBytes(type, rows * cols);
        try (Tensor host = Tensor.allocateHost(DType.I8, experts * stride)) {
            host.segment().fill((byte) 0);
            for (long e = 0; e < experts; e++)
                QuantizedMatrix.kernelLayout(type, rows * cols, ggml.of(e), host.segment().asSlice(e * stride, stride));
            return new QuantizedExperts(type, experts, rows, cols, backend.copyOf(host));
        }
    }

    /** Every expert's values dequantized by the format's CPU reference: (E, rows, cols) row-major. */
    public float[] dequantize() {
        long elements = rows * cols;
        float[] values = new float[Math.toIntExact(experts * elements)];
        float[] one = new float[Math.toIntExact(elements)];
        try (Tensor host = bytes.isHost() ? null : Backend.cpu().copyOf(bytes)) {
            MemorySegment all = (host == null ? bytes : host).segment();
            for (long e = 0; e < experts; e++) {
                byte[] ggml = QuantizedMatrix.ggmlOf(type, elements, all.asSlice(e * expertBytes()));
                Dequantize.toFloat(one, type, MemorySegment.ofArray(ggml));
                System.arraycopy(one, 0, values, Math.toIntExact(e * elements), one.length);
            }
        }
        return values;
    }

    public GgmlType type() {
        return type;
    }

    public long experts() {
        return experts;
    }

    public long rows() {
        return rows;
    }

    public long cols() {
        return cols;
    }

    /** The distance in bytes between two experts' matrices in {@link #bytes()}. */
    public long expertBytes() {
        return QuantizedMatrix.paddedBytes(type, rows * cols);
    }

    /** The bytes in the kernels' layout (I8, one dimension), on the backend the experts were made for. */
    public Tensor bytes() {
        return bytes;
    }

    @Override
    public void close() {
        bytes.close();
    }
}
