package dev.isthmus.quant;

/**
 * The tensor types a GGUF file may declare (ggml's {@code ggml_type}): the number the file stores,
 * how many elements one block holds and how many bytes it takes. Isthmus reads the {@link #supported}
 * ones; the others are known by name so that a file using them is refused by name.
 */
public enum GgmlType {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 18, true),
    Q4_1(3, 32, 20, true),
    Q5_0(6, 32, 22, false),
    Q5_1(7, 32, 24, false),
    Q8_0(8, 32, 34, true),
    Q8_1(9, 32, 40, false),
    Q2_K(10, 256, 84, false),
    Q3_K(11, 256, 110, false),
    Q4_K(12, 256, 144, true),
    Q5_K(13, 256, 176, true),
    Q6_K(14, 256, 210, true),
    Q8_K(15, 256, 292, false),
    IQ2_XXS(16, 256, 66, false),
    IQ2_XS(17, 256, 74, false),
    IQ3_XXS(18, 256, 98, false),
    IQ1_S(19, 256, 50, false),
    IQ4_NL(20, 32, 18, false),
    IQ3_S(21, 256, 110, false),
    IQ2_S(22, 256, 82, false),
    IQ4_XS(23, 256, 136, false),
    I8(24, 1, 1, false),
    I16(25, 1, 2, false),
    I32(26, 1, 4, false),
    I64(27, 1, 8, false),
    F64(28, 1, 8, false),
    IQ1_M(29, 256, 56, false),
    BF16(30, 1, 2, true),
    TQ1_0(34, 256, 54, false),
    TQ2_0(35, 256, 66, false),
    MXFP4(39, 32, 17, false);

    private final int id;
    private final int blockElements;
    private final int blockBytes;
    private final boolean supported;

    GgmlType(int id, int blockElements, int blockBytes, boolean supported) {
        this.id = id;
        this.blockElements = blockElements;
        this.blockBytes = blockBytes;
        this.supported = supported;
    }

    /** The number a GGUF tensor info stores for this type. */
    public int id() {
        return id;
    }

    /** Elements per block (1 for the plain types); a row's length must be a multiple of it. */
    public int blockElements() {
        return blockElements;
    }

    public int blockBytes() {
        return blockBytes;
    }

    /** Whether Isthmus can read tensors of this type. */
    public boolean supported() {
        return supported;
    }

    public boolean quantized() {
        return blockElements > 1;
    }

    /** Bytes of {@code elements} elements, which must be a whole number of blocks. */
    public long bytes(long elements) {
        if (elements % blockElements != 0)
            throw new IllegalArgumentException(name() + " stores blocks of " + blockElements + " elements; " + elements + " is not a multiple");
        return Math.multiplyExact(elements / blockElements, (long) blockBytes);
    }

    /** The type a file's number names; an IllegalArgumentException for a number ggml does not define. */
    public static GgmlType of(int id) {
        for (GgmlType t : values()) if (t.id == id) return t;
        throw new IllegalArgumentException("unknown GGML tensor type " + Integer.toUnsignedString(id));
    }

    /** Parses a name such as "q8_0" (case-insensitive). */
    public static GgmlType parse(String name) {
        for (GgmlType t : values()) if (t.name().equalsIgnoreCase(name)) return t;
        throw new IllegalArgumentException("unknown GGML tensor type '" + name + "'");
    }
}
