package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.tensor.DType;
import java.io.PrintWriter;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * What the model commands share: the checkpoint option, and errors reported as one line on stderr
 * with exit status 2 (a stack trace only with --verbose).
 */
abstract class ModelCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--model", required = true, description = "checkpoint directory (config.json, *.safetensors, tokenizer.json) or a GGUF file")
    Path model;

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
