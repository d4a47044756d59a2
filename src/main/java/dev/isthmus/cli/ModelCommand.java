package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.tensor.DType;
import java.io.PrintWriter;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * What `generate` and `validate` share: the checkpoint option, and errors reported as one line on
 * stderr with exit status 2 (a stack trace only with --verbose).
 */
abstract class ModelCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, description = "checkpoint directory (config.json, *.safetensors, tokenizer.json) or a GGUF file")
    Path model;

    @Option(names = "--quantize", description = "quantize the checkpoint's matrices on load: q8_0, q4_0, q4_1 or q4_k")
    String quantizeName;

    /** The --quantize type, or null for none. */
    GgmlType quantize() {
        if (quantizeName == null) return null;
        GgmlType type;
        try {
            type = GgmlType.parse(quantizeName);
        } catch (IllegalArgumentException e) {
            type = null;
        }
        if (type != GgmlType.Q8_0 && type != GgmlType.Q4_0 && type != GgmlType.Q4_1 && type != GgmlType.Q4_K)
            throw new IllegalArgumentException("--quantize must be q8_0, q4_0, q4_1 or q4_k, got '" + quantizeName + "'");
        return type;
    }

    @Option(names = "--verbose", description = "print stack traces of errors")
    boolean verbose;

    /** The command's work; its exit status. */
    abstract int run(PrintWriter out, PrintWriter err) throws Exception;

    @Override
    public final Integer call() {
        PrintWriter out = spec.commandLine().getOut(), err = spec.commandLine().getErr();
        try {
            return run(out, err);
        } catch (Exception | StackOverflowError | OutOfMemoryError e) { // the last two: a one-line error, not a trace
            err.println("isthmus " + spec.name() + ": " + (e instanceof NoSuchFileException ? "no such file: " : "") + OpCommand.oneLine(e));
            if (verbose) e.printStackTrace(err);
            return 2;
        } finally {
            out.flush();
            err.flush();
        }
    }

    /** The --dtype value, or bf16 on CUDA and f32 on the CPU when it is not given. */
    static DType dtype(String name, Backend backend) {
        if (name == null) return backend instanceof CpuBackend ? DType.F32 : DType.BF16;
        DType dtype;
        try {
            dtype = DType.parse(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--dtype must be f32, bf16 or f16, got '" + name + "'");
        }
        if (!dtype.isFloatingPoint()) throw new IllegalArgumentException("--dtype must be f32, bf16 or f16, got '" + name + "'");
        return dtype;
    }
}
