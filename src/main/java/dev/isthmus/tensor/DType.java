package dev.isthmus.tensor;

/**
 * Element types. {@link #code()} is the number native/isthmus.h gives the same type
 * ({@code isthmus_dtype}); it is part of the ABI.
 */
public enum DType {
    F32(4, 0, true),
    F16(2, 1, true),
    BF16(2, 2, true),
    I32(4, 3, false),
    I64(8, 4, false),
    I8(1, 5, false);

    private final int byteSize;
    private final int code;
    private final boolean floatingPoint;

    DType(int byteSize, int code, boolean floatingPoint) {
        this.byteSize = byteSize;
        this.code = code;
        this.floatingPoint = floatingPoint;
    }

    /** Bytes per element. */
    public int byteSize() {
        return byteSize;
    }

    /** The isthmus_dtype value of native/isthmus.h. */
    public int code() {
        return code;
    }

    public boolean isFloatingPoint() {
        return floatingPoint;
    }

    /** Lower-case name as used in shapes, files and tables: "f32", "bf16", ... */
    public String label() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Parses a {@link #label()} (case-insensitive). */
    public static DType parse(String label) {
        for (DType t : values()) if (t.label().equalsIgnoreCase(label)) return t;
        throw new IllegalArgumentException("unknown dtype '" + label + "' (expected one of f32, f16, bf16, i32, i64, i8)");
    }
}
