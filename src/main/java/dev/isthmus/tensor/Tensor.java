package dev.isthmus.tensor;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.StringJoiner;

/**
 * An n-dimensional array: a dtype, a shape, strides (in elements) and an offset into a
 * {@link Storage} on the host or on a CUDA device.
 *
 * <p>Ownership is explicit. A tensor made by an allocation or a wrap owns its storage and
 * closes it on {@link #close()}; a view ({@link #slice}, {@link #reshape}) shares the storage
 * and never frees it. Using any tensor whose storage is closed is an
 * {@link IllegalArgumentException}, never a crash.
 *
 * <p>Bytes are little-endian, as in safetensors files and on every CUDA device.
 */
public final class Tensor implements AutoCloseable {
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort I16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt I32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong I64 = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Storage storage;
    private final boolean owner;
    private final DType dtype;
    private final long[] shape;
    private final long[] strides;
    private final long offset;

    private Tensor(Storage storage, boolean owner, DType dtype, long[] shape, long[] strides, long offset) {
        this.storage = storage;
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
    }

    // ---- creation ------------------------------------------------------------------------------

    /** A zero-filled contiguous host tensor. */
    public static Tensor allocateHost(DType dtype, long... shape) {
        long[] s = checkShape(shape);
        return new Tensor(Storage.allocateHost(byteSize(dtype, s)), true, dtype, s, contiguousStrides(s), 0);
    }

    /**
     * A contiguous tensor over {@code storage}, taking ownership of it: closing the tensor closes
     * the storage (which frees the memory only if the storage owns it).
     */
    public static Tensor of(Storage storage, DType dtype, long... shape) {
        Checks.notNull("storage", storage);
        long[] s = checkShape(shape);
        long bytes = byteSize(dtype, s);
        if (bytes > storage.byteSize())
            throw new IllegalArgumentException("shape " + Arrays.toString(s) + " of " + dtype.label() + " needs " + bytes
                    + " bytes, storage has " + storage.byteSize());
        return new Tensor(storage, true, dtype, s, contiguousStrides(s), 0);
    }

    /** Borrows a native host segment (for example a memory-mapped file) as a contiguous tensor. */
    public static Tensor wrapHost(MemorySegment segment, DType dtype, long... shape) {
        Checks.notNull("segment", segment);
        return of(Storage.wrapHost(segment), dtype, shape);
    }

    /** A host tensor holding {@code values} rounded to {@code dtype} (round-to-nearest-even). */
    public static Tensor fromFloats(DType dtype, float[] values, long... shape) {
        Checks.notNull("values", values);
        Tensor t = allocateHost(dtype, shape);
        t.copyFrom(values);
        return t;
    }

    /** A host tensor of an integer dtype holding {@code values}. */
    public static Tensor fromLongs(DType dtype, long[] values, long... shape) {
        Checks.notNull("values", values);
        Tensor t = allocateHost(dtype, shape);
        t.copyFrom(values);
        return t;
    }

    // ---- description ---------------------------------------------------------------------------

    public DType dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    /** Size of dimension {@code d}; negative d counts from the end. */
    public long dim(int d) {
        return shape[axis(d)];
    }

    public int rank() {
        return shape.length;
    }

    /** Strides in elements. */
    public long[] strides() {
        return strides.clone();
    }

    public long elementCount() {
        return count(shape);
    }

    /** Bytes the elements occupy when contiguous: elementCount * dtype size. */
    public long byteSize() {
        return elementCount() * dtype.byteSize();
    }

    public Device device() {
        return storage.device();
    }

    public boolean isHost() {
        return storage.device().isHost();
    }

    public Storage storage() {
        return storage;
    }

    /** True for a tensor that frees its storage on close; false for a view. */
    public boolean isOwner() {
        return owner;
    }

    public boolean isClosed() {
        return storage.isClosed();
    }

    /** True when the elements are laid out row-major with no gaps. */
    public boolean isContiguous() {
        if (elementCount() == 0) return true; // nothing to lay out
        long expected = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            if (shape[d] != 1 && strides[d] != expected) return false;
            expected *= shape[d];
        }
        return true;
    }

    /** Address of the first element (host or device), for handing to native code. */
    public long address() {
        requireOpen();
        return storage.address() + offset * dtype.byteSize();
    }

    /** The host bytes of a contiguous host tensor, exactly {@link #byteSize()} long. */
    public MemorySegment segment() {
        requireOpen();
        requireHost("segment()");
        if (!isContiguous()) throw new IllegalArgumentException("segment() needs a contiguous tensor, this one has strides " + Arrays.toString(strides));
        return storage.hostSegment().asSlice(offset * dtype.byteSize(), byteSize());
    }

    // ---- views ---------------------------------------------------------------------------------

    /** The elements with index in [start, end) along {@code dim}; shares storage. */
    public Tensor slice(int dim, long start, long end) {
        requireOpen();
        int d = axis(dim);
        if (start < 0 || end > shape[d] || start > end)
            throw new IllegalArgumentException("slice [" + start + ", " + end + ") out of range for dimension " + d + " of size " + shape[d]);
        long[] s = shape.clone();
        s[d] = end - start;
        return new Tensor(storage, false, dtype, s, strides.clone(), offset + start * strides[d]);
    }

    /** The same contiguous elements under another shape (one entry may be -1); shares storage. */
    public Tensor reshape(long... newShape) {
        requireOpen();
        Checks.notNull("newShape", newShape);
        if (!isContiguous()) throw new IllegalArgumentException("reshape needs a contiguous tensor, this one has strides " + Arrays.toString(strides));
        long[] s = newShape.clone();
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < s.length; i++) {
            if (s[i] == -1) {
                if (inferred >= 0) throw new IllegalArgumentException("reshape: only one dimension may be -1");
                inferred = i;
            } else {
                if (s[i] < 0) throw new IllegalArgumentException("reshape: negative dimension " + s[i]);
                known = multiply(known, s[i], newShape);
            }
        }
        if (inferred >= 0) {
            if (known == 0 || elementCount() % known != 0)
                throw new IllegalArgumentException("reshape: cannot infer -1 for " + elementCount() + " elements into " + Arrays.toString(newShape));
            s[inferred] = elementCount() / known;
        }
        if (count(s) != elementCount())
            throw new IllegalArgumentException("reshape: " + Arrays.toString(shape) + " has " + elementCount() + " elements, "
                    + Arrays.toString(s) + " has " + count(s));
        return new Tensor(storage, false, dtype, s, contiguousStrides(s), offset);
    }

    // ---- host element access -------------------------------------------------------------------

    /** One element as a float (any float dtype; integer dtypes converted). Host only. */
    public float getFloat(long... index) {
        return readFloat(byteOffsetOf(index));
    }

    /** Stores {@code value}, rounded to the dtype (nearest-even), at {@code index}. Host only. */
    public void setFloat(float value, long... index) {
        writeFloat(byteOffsetOf(index), value);
    }

    /** One element of an integer dtype. Host only. */
    public long getLong(long... index) {
        return readLong(byteOffsetOf(index));
    }

    public void setLong(long value, long... index) {
        writeLong(byteOffsetOf(index), value);
    }

    /** All elements in row-major order of the shape (strides respected). Host only. */
    public float[] toFloatArray() {
        float[] out = new float[arrayLength()];
        if (isContiguous() && dtype == DType.F32) { // the CPU references' common case: one bulk copy
            MemorySegment.copy(storage.hostSegment(), F32, offset * 4, out, 0, out.length);
            return out;
        }
        if (isContiguous() && (dtype == DType.BF16 || dtype == DType.F16)) {
            short[] bits = new short[out.length];
            MemorySegment.copy(storage.hostSegment(), I16, offset * 2, bits, 0, bits.length);
            for (int i = 0; i < bits.length; i++)
                out[i] = dtype == DType.BF16 ? FloatFormats.bf16ToFloat(bits[i]) : FloatFormats.f16ToFloat(bits[i]);
            return out;
        }
        forEachByteOffset((i, byteOffset) -> out[i] = readFloat(byteOffset));
        return out;
    }

    /** Writes {@code values} (row-major order of the shape), rounding to the dtype. Host only. */
    public void copyFrom(float[] values) {
        Checks.notNull("values", values);
        if (values.length != elementCount())
            throw new IllegalArgumentException("copyFrom: " + values.length + " values for " + elementCount() + " elements");
        if (arrayLength() > 0 && isContiguous() && dtype == DType.F32) {
            MemorySegment.copy(values, 0, storage.hostSegment(), F32, offset * 4, values.length);
            return;
        }
        forEachByteOffset((i, byteOffset) -> writeFloat(byteOffset, values[i]));
    }

    public long[] toLongArray() {
        long[] out = new long[arrayLength()];
        forEachByteOffset((i, byteOffset) -> out[i] = readLong(byteOffset));
        return out;
    }

    public void copyFrom(long[] values) {
        Checks.notNull("values", values);
        if (values.length != elementCount())
            throw new IllegalArgumentException("copyFrom: " + values.length + " values for " + elementCount() + " elements");
        forEachByteOffset((i, byteOffset) -> writeLong(byteOffset, values[i]));
    }

    /** A new contiguous host tensor with the values converted to {@code target}. Host only. */
    public Tensor to(DType target) {
        Checks.notNull("target", target);
        requireHost("to(" + target.label() + ")");
        if (target.isFloatingPoint() && dtype.isFloatingPoint()) return fromFloats(target, toFloatArray(), shape);
        if (!target.isFloatingPoint() && !dtype.isFloatingPoint()) return fromLongs(target, toLongArray(), shape);
        throw new IllegalArgumentException("to: no conversion between " + dtype.label() + " and " + target.label());
    }

    // ---- lifetime ------------------------------------------------------------------------------

    /** Frees the storage if this tensor owns it; a view's close does nothing. Idempotent. */
    @Override
    public void close() {
        if (owner) storage.close();
    }

    /** Throws a clear exception if the storage has been freed. */
    public void requireOpen() {
        if (storage.isClosed()) throw new IllegalArgumentException("tensor " + describe() + " is closed");
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("Tensor[").append(describe());
        if (!isContiguous()) sb.append(", strides=").append(Arrays.toString(strides));
        if (!owner) sb.append(", view");
        if (isClosed()) return sb.append(", closed]").toString();
        if (isHost()) {
            StringJoiner values = new StringJoiner(", ", ", [", "]");
            long n = Math.min(elementCount(), 6);
            long[] index = new long[shape.length];
            for (long i = 0; i < n; i++) {
                values.add(dtype.isFloatingPoint() ? Float.toString(readFloat(byteOffsetOfUnchecked(index)))
                                                   : Long.toString(readLong(byteOffsetOfUnchecked(index))));
                increment(index);
            }
            if (elementCount() > n) values.add("...");
            sb.append(values);
        }
        return sb.append(']').toString();
    }

    private String describe() {
        StringJoiner dims = new StringJoiner(", ", "(", ")");
        for (long s : shape) dims.add(Long.toString(s));
        return dtype.label() + ", " + dims + ", " + device();
    }

    // ---- internals -----------------------------------------------------------------------------

    private int axis(int d) {
        int a = d < 0 ? d + shape.length : d;
        if (a < 0 || a >= shape.length) throw new IllegalArgumentException("dimension " + d + " out of range for rank " + shape.length);
        return a;
    }

    private void requireHost(String what) {
        if (!isHost()) throw new IllegalArgumentException(what + " needs a host tensor; this one is on " + device() + " (copy it to the host first)");
    }

    private int arrayLength() {
        requireOpen();
        requireHost("element access");
        if (elementCount() > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException(elementCount() + " elements do not fit in a Java array");
        return (int) elementCount();
    }

    private long byteOffsetOf(long[] index) {
        Checks.notNull("index", index);
        requireOpen();
        requireHost("element access");
        if (index.length != shape.length)
            throw new IllegalArgumentException("index of rank " + index.length + " for a tensor of rank " + shape.length);
        for (int d = 0; d < shape.length; d++)
            if (index[d] < 0 || index[d] >= shape[d])
                throw new IllegalArgumentException("index " + Arrays.toString(index) + " out of bounds for shape " + Arrays.toString(shape));
        return byteOffsetOfUnchecked(index);
    }

    private long byteOffsetOfUnchecked(long[] index) {
        long e = offset;
        for (int d = 0; d < shape.length; d++) e += index[d] * strides[d];
        return e * dtype.byteSize();
    }

    private interface ElementVisitor {
        void visit(int i, long byteOffset);
    }

    /** Visits every element in row-major order of the shape; the caller has checked open + host. */
    private void forEachByteOffset(ElementVisitor visitor) {
        int n = arrayLength();
        if (isContiguous()) {
            long base = offset * dtype.byteSize();
            for (int i = 0; i < n; i++) visitor.visit(i, base + (long) i * dtype.byteSize());
            return;
        }
        long[] index = new long[shape.length];
        for (int i = 0; i < n; i++) {
            visitor.visit(i, byteOffsetOfUnchecked(index));
            increment(index);
        }
    }

    private void increment(long[] index) {
        for (int d = shape.length - 1; d >= 0; d--) {
            if (++index[d] < shape[d]) return;
            index[d] = 0;
        }
    }

    private float readFloat(long byteOffset) {
        MemorySegment m = storage.hostSegment();
        return switch (dtype) {
            case F32 -> m.get(F32, byteOffset);
            case F16 -> FloatFormats.f16ToFloat(m.get(I16, byteOffset));
            case BF16 -> FloatFormats.bf16ToFloat(m.get(I16, byteOffset));
            case I32 -> m.get(I32, byteOffset);
            case I64 -> m.get(I64, byteOffset);
            case I8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset);
        };
    }

    private void writeFloat(long byteOffset, float value) {
        MemorySegment m = storage.hostSegment();
        switch (dtype) {
            case F32 -> m.set(F32, byteOffset, value);
            case F16 -> m.set(I16, byteOffset, FloatFormats.floatToF16(value));
            case BF16 -> m.set(I16, byteOffset, FloatFormats.floatToBf16(value));
            default -> throw new IllegalArgumentException("setFloat on an integer tensor (" + dtype.label() + "); use setLong");
        }
    }

    private long readLong(long byteOffset) {
        MemorySegment m = storage.hostSegment();
        return switch (dtype) {
            case I32 -> m.get(I32, byteOffset);
            case I64 -> m.get(I64, byteOffset);
            case I8 -> m.get(ValueLayout.JAVA_BYTE, byteOffset);
            default -> throw new IllegalArgumentException("getLong on a floating-point tensor (" + dtype.label() + "); use getFloat");
        };
    }

    private void writeLong(long byteOffset, long value) {
        MemorySegment m = storage.hostSegment();
        switch (dtype) {
            case I32 -> {
                if (value < Integer.MIN_VALUE || value > Integer.MAX_VALUE) throw new IllegalArgumentException(value + " does not fit in i32");
                m.set(I32, byteOffset, (int) value);
            }
            case I64 -> m.set(I64, byteOffset, value);
            case I8 -> {
                if (value < Byte.MIN_VALUE || value > Byte.MAX_VALUE) throw new IllegalArgumentException(value + " does not fit in i8");
                m.set(ValueLayout.JAVA_BYTE, byteOffset, (byte) value);
            }
            default -> throw new IllegalArgumentException("setLong on a floating-point tensor (" + dtype.label() + "); use setFloat");
        }
    }

    private static long[] checkShape(long[] shape) {
        Checks.notNull("shape", shape);
        for (long s : shape)
            if (s < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
        count(shape); // overflow check
        return shape.clone();
    }

    /**
     * Bytes a contiguous tensor of {@code dtype} and {@code shape} needs; a shape whose size
     * does not fit in a long is an IllegalArgumentException (a wrapped size would let a kernel
     * run past its memory).
     */
    public static long byteSize(DType dtype, long... shape) {
        Checks.notNull("dtype", dtype);
        long[] s = checkShape(shape);
        return multiply(count(s), dtype.byteSize(), s);
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long s : shape) n = multiply(n, s, shape);
        return n;
    }

    private static long multiply(long a, long b, long[] shape) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " has more bytes than a long can count");
        }
    }

    static long[] contiguousStrides(long[] shape) {
        long[] strides = new long[shape.length];
        long stride = 1;
        for (int d = shape.length - 1; d >= 0; d--) {
            strides[d] = stride;
            stride *= Math.max(shape[d], 1);
        }
        return strides;
    }
}
