package dev.isthmus.cli;

import dev.isthmus.quant.GgmlType;
import picocli.CommandLine.Option;

/** The --quantize option of `generate` and `validate`. */
final class QuantizeOption {
    @Option(names = "--quantize", description = "quantize the checkpoint's matrices on load: q8_0, q4_0, q4_1 or q4_k")
    String name;

    /** The --quantize type, or null for none. */
    GgmlType type() {
        if (name == null) return null;
        GgmlType type;
        try {
            type = GgmlType.parse(name);
        } catch (IllegalArgumentException e) {
            type = null;
        }
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0 && type != GgmlType.Q4_1 && type != GgmlType.Q4_K)
            throw new IllegalArgumentException("--quantize must be q8_0, q4_0, q4_1 or q4_k, got '" + name + "'");
        return type;
    }
}
