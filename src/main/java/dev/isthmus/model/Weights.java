package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.quant.QuantizedMatrix;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;

/**
 * Moves a model's tensors (from a checkpoint or random) onto a backend, converted to the compute dtype (or to f32 for the
 * parameters the scan keeps in fp32), and owns them until the model closes. Every tensor is
 * checked against the shape the config implies; errors name the tensor.
 */
final class Weights implements AutoCloseable {
    private final WeightSource source;
    private final Backend backend;
    private final DType dtype;
    private final List<Tensor> owned = new ArrayList<>();
    /** The loaded tensors' bytes in the source's storage format ({@link WeightSource#storedBytes}). */
    private long storedBytes;

    Weights(WeightSource source, Backend backend, DType dtype) {
        this.source = source;
        this.backend = backend;
        this.dtype = dtype;
    }

    boolean contains(String name) {
        return source.contains(name);
    }

    /** {@code name} of {@code shape}, in the compute dtype, on the backend. */
    Tensor load(String name, long... shape) {
        return load(name, dtype, shape);
    }

    /**
     * The projection weight {@code name} of {@code rows x cols}: kept quantized when the source
     * offers it so for this backend (see {@link WeightSource#quantized}), else dense in the compute dtype.
     */
    Linear linear(String name, long rows, long cols) {
        QuantizedMatrix q = source.quantized(backend, name, rows, cols);
        if (q == null) return Linear.dense(load(name, rows, cols));
        storedBytes += source.storedBytes(name, dtype, new long[] {rows, cols});
        own(q.bytes());
        return Linear.quantized(q);
    }

    /**
     * A fused projection {@code name} of {@code sum(rows) x cols} (Phi-3's qkv_proj, gate_up_proj),
     * loaded once and returned as one dense {@link Linear} per consecutive block of {@code rows}: row
     * slices of the one tensor, so nothing is copied.
     */
    Linear[] fused(String name, long cols, long... rows) {
        Tensor whole = load(name, java.util.Arrays.stream(rows).sum(), cols);
        Linear[] parts = new Linear[rows.length];
        for (int i = 0, start = 0; i < rows.length; start += (int) rows[i], i++) parts[i] = Linear.dense(whole.slice(0, start, start + rows[i]));
        return parts;
    }

    /** The stacked experts {@code name} kept quantized when the source offers them so for this backend and dtype, else null. */
    QuantizedExperts quantizedExperts(String name, long experts, long rows, long cols) {
        QuantizedExperts q = source.quantizedExperts(backend, dtype, name, experts, rows, cols);
        if (q == null) return null;
        storedBytes += source.storedBytes(name, dtype, new long[] {experts, rows, cols});
        own(q.bytes());
        return q;
    }

    /** {@code name} of {@code shape}, in f32, on the backend. */
    Tensor loadF32(String name, long... shape) {
        return load(name, DType.F32, shape);
    }

    /** The compute-dtype bias {@code name} when the checkpoint has it and {@code expected}, else null. */
    Tensor optional(String name, boolean expected, long... shape) {
        return expected ? load(name, shape) : null;
    }

    private Tensor load(String name, DType target, long... shape) {
        Tensor t = own(source.onBackend(backend, name, target, shape));
        storedBytes += source.storedBytes(name, target, shape);
        return t;
    }

    /** Takes ownership of a host tensor built from checkpoint tensors (stacked experts, -exp(A_log)): uploads it and closes it. */
    Tensor upload(Tensor host) {
        try (host) {
            return own(backend.copyOf(host));
        }
    }

    /** A host tensor of {@code name} converted to {@code target}, for building derived weights. */
    Tensor host(String name, DType target, long... shape) {
        storedBytes += source.storedBytes(name, target, shape);
        return source.tensor(name, target, shape);
    }

    Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    /** What the weights loaded so far take in their storage format (quantized where the source quantizes). */
    long storedBytes() {
        return storedBytes;
    }

    /** What the weights take on the backend: the tensors this object owns. */
    long heldBytes() {
        return owned.stream().mapToLong(Tensor::byteSize).sum();
    }

    DType dtype() {
        return dtype;
    }

    Backend backend() {
        return backend;
    }

    @Override
    public void close() {
        owned.forEach(Tensor::close);
        owned.clear();
    }
}
