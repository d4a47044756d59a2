package dev.isthmus.io;

import dev.isthmus.tensor.DType;

/**
 * What the safetensors format fixes and both the reader and the writer use: the dtype names of
 * the header and the limit on the header's size. A file is an 8-byte little-endian header length
 * N, N bytes of UTF-8 JSON
 * <code>{name: {"dtype": ..., "shape": [...], "data_offsets": [begin, end]}, "__metadata__": {...}}</code>,
 * then the data buffer; offsets count from the buffer's start.
 */
final class SafetensorsFormat {
    private SafetensorsFormat() {}

    /** The key of the optional string-to-string metadata object in the header. */
    static final String METADATA_KEY = "__metadata__";

    /** The reference implementation refuses headers above 100 MB; a larger one is a corrupt length. */
    static final long MAX_HEADER_BYTES = 100_000_000;

    /** The header's dtype name of {@code dtype}: "F32", "BF16", ... */
    static String name(DType dtype) {
        return dtype.name();
    }

    /**
     * The DType of a header dtype name. Names of the format that Isthmus has no tensor type for
     * (F64, BOOL, U8, F8_E4M3, ...) are refused by name.
     */
    static DType dtype(String name, String tensor) {
        for (DType t : DType.values()) if (t.name().equals(name)) return t;
        throw new IllegalArgumentException("tensor '" + tensor + "' has dtype " + name
                + ", which is not supported (supported: F32, F16, BF16, I32, I64, I8)");
    }
}
