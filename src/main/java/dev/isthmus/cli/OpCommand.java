package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.io.SafetensorsWriter;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * `isthmus op NAME`: runs one op on the tensors of a safetensors file, writes its outputs to
 * another, and optionally checks them against the CPU reference and times the op.
 *
 * <p>Exit status: 0 done (and within bounds with --check), 1 a --check output out of bounds,
 * 2 the request could not be carried out (unknown op or option, missing tensor, wrong shape or
 * dtype, unreadable file, backend unavailable), said in one line on stderr.
 */
@Command(name = "op", description = "Run an op on tensors from a safetensors file; check it against the CPU reference; time it.")
final class OpCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Parameters(index = "0", arity = "0..1", paramLabel = "NAME", description = "the op (`isthmus op --help` lists them)")
    String opName;

    @Option(names = "--in", paramLabel = "INPUT.safetensors", description = "the input tensors, by name")
    Path in;

    @Option(names = "--out", paramLabel = "OUTPUT.safetensors", description = "where the outputs are written, by name")
    Path out;

    @Option(names = "--backend", paramLabel = "cpu|cuda|best", defaultValue = "best", description = "default: ${DEFAULT-VALUE}")
    String backendName;

    @Option(names = "--set", paramLabel = "NAME=VALUE", description = "an option of the op (repeatable)")
    List<String> settings = new ArrayList<>();

    @Option(names = "--check", description = "also run the CPU reference and print each output's relative error and bound")
    boolean check;

    @Option(names = "--bench", paramLabel = "N", defaultValue = "0", description = "time N runs after warm-up")
    int benchRuns;

    @Option(names = "--warmup", paramLabel = "W", defaultValue = "10", description = "warm-up runs before --bench (default ${DEFAULT-VALUE})")
    int warmupRuns;

    @Option(names = {"--verbose", "--debug"}, description = "print the stack trace of an error")
    boolean verbose;

    @Option(names = {"-h", "--help"}, description = "the op's tensors, shapes and options; without NAME, the list of ops")
    boolean help;

    @Override
    public Integer call() {
        PrintWriter stdout = spec.commandLine().getOut(), stderr = spec.commandLine().getErr();
        try {
            if (opName == null) {
                (help ? stdout : stderr).print(OpHelp.overview(spec));
                return help ? 0 : 2;
            }
            Op op = Ops.find(opName);
            if (help) {
                stdout.print(OpHelp.of(op));
                return 0;
            }
            return run(op, stdout, stderr);
        } catch (Exception | StackOverflowError | OutOfMemoryError e) { // the last two: a one-line error, not a trace
            stderr.println("isthmus op" + (opName == null ? "" : " " + opName) + ": " + oneLine(e));
            if (verbose) e.printStackTrace(stderr);
            return 2;
        } finally {
            stdout.flush();
            stderr.flush();
        }
    }

    private int run(Op op, PrintWriter stdout, PrintWriter stderr) throws IOException {
        if (in == null) throw new IllegalArgumentException("--in INPUT.safetensors is required");
        if (benchRuns < 0 || warmupRuns < 0) throw new IllegalArgumentException("--bench and --warmup must be >= 0");
        OpOptions options = OpOptions.parse(op, settings);
        if (out != null && Files.exists(out) && Files.exists(in) && Files.isSameFile(in, out))
            throw new IllegalArgumentException("--out is the input file " + in + "; write the outputs elsewhere");
        try (SafetensorsFile file = open(in); Backend backend = Main.backend(backendName); Owned owned = new Owned()) {
            Map<String, Tensor> hostInputs = readInputs(op, file, owned, stderr);
            Op.Call call = op.prepare(hostInputs, options);
            try (Op.Kernel kernel = call.kernel()) {
                return run(call, backend, hostInputs, owned, stdout, op);
            }
        }
    }

    /** The run on the backend, the output file, --check and --bench, for one prepared call. */
    private int run(Op.Call call, Backend backend, Map<String, Tensor> hostInputs, Owned owned, PrintWriter stdout, Op op) {
        Map<String, Tensor> inputs = new LinkedHashMap<>();
        hostInputs.forEach((name, t) -> inputs.put(name, backend.device().isHost() ? t : owned.add(backend.copyOf(t))));
        Map<String, Tensor> outputs = allocateOutputs(call, backend, inputs, owned);
        call.kernel().run(backend, inputs, outputs);
        Map<String, Tensor> results = new LinkedHashMap<>();
        outputs.forEach((name, t) -> results.put(name, backend.device().isHost() ? t : owned.add(backend.toHost(t))));
        if (out != null) write(out, results, op, backend);

        boolean withinBounds = true;
        if (check || benchRuns > 0) stdout.println("backend: " + backend.describe());
        if (check) {
            Backend cpu = Backend.cpu();
            Map<String, Tensor> expected = allocateOutputs(call, cpu, hostInputs, owned);
            call.kernel().run(cpu, hostInputs, expected);
            withinBounds = compare(call.outputs(), results, expected, stdout);
        }
        if (benchRuns > 0) bench(call, backend, inputs, outputs, owned, stdout);
        return withinBounds ? 0 : 1;
    }

    /** One line per output: its relative error against the reference and its bound; true if all are within. */
    static boolean compare(List<Op.Output> outputs, Map<String, Tensor> results, Map<String, Tensor> expected, PrintWriter stdout) {
        boolean withinBounds = true;
        for (Op.Output o : outputs) {
            Compare.Result r = Compare.check(o.name(), results.get(o.name()), expected.get(o.name()), o.bound());
            stdout.println("check " + r);
            withinBounds &= r.withinBound();
        }
        return withinBounds;
    }

    /**
     * The op's inputs from the file, in the dtypes its kernel needs: a missing required tensor or a
     * dtype the op does not take is an error naming the tensor; a conversion and a tensor the op
     * does not read are said on stderr.
     */
    private static Map<String, Tensor> readInputs(Op op, SafetensorsFile file, Owned owned, PrintWriter stderr) {
        Map<String, Tensor> found = new LinkedHashMap<>();
        Map<String, DType> given = new HashMap<>();
        for (Op.TensorSpec s : op.inputs()) {
            if (!file.contains(s.name())) {
                if (s.optional()) continue;
                throw new IllegalArgumentException("missing tensor '" + s.name() + "' in " + file.path() + " (" + op.name() + " reads "
                        + describeInputs(op) + "; the file has " + (file.names().isEmpty() ? "none" : String.join(", ", file.names())) + ")");
            }
            Tensor t = file.tensor(s.name());
            if (!s.dtypes().contains(t.dtype()))
                throw new IllegalArgumentException("tensor '" + s.name() + "' has dtype " + t.dtype().label() + "; " + op.name() + " takes "
                        + labels(s) + " for it");
            found.put(s.name(), t);
            given.put(s.name(), t.dtype());
        }
        List<String> inputNames = op.inputs().stream().map(Op.TensorSpec::name).toList();
        for (String name : file.names())
            if (!inputNames.contains(name))
                stderr.println("isthmus op " + op.name() + ": note: tensor '" + name + "' is not an input of " + op.name() + "; ignored");
        Map<String, DType> needed = op.kernelDtypes(given);
        for (Map.Entry<String, Tensor> e : found.entrySet()) {
            DType from = e.getValue().dtype(), to = needed.get(e.getKey());
            if (to == from) continue;
            stderr.println("isthmus op " + op.name() + ": note: converting '" + e.getKey() + "' from " + from.label() + " to " + to.label());
            try {
                e.setValue(owned.add(e.getValue().to(to)));
            } catch (IllegalArgumentException x) {
                throw new IllegalArgumentException("converting tensor '" + e.getKey() + "' from " + from.label() + " to " + to.label() + ": "
                        + x.getMessage());
            }
        }
        return found;
    }

    /** Outputs on {@code backend}: copies of the input they start from, else poisoned so an unwritten element shows. */
    private static Map<String, Tensor> allocateOutputs(Op.Call call, Backend backend, Map<String, Tensor> inputs, Owned owned) {
        Map<String, Tensor> outputs = new LinkedHashMap<>();
        for (Op.Output o : call.outputs()) {
            Tensor t = owned.add(backend.allocate(o.dtype(), o.shape()));
            if (o.initialFrom() != null) backend.copy(t, inputs.get(o.initialFrom()));
            else backend.poison(t);
            outputs.put(o.name(), t);
        }
        return outputs;
    }

    /**
     * Median and spread of N timed runs after warm-up (CUDA events on the GPU, wall clock on the
     * CPU), as the GPU benchmark prints them, then the row in its raw.csv format. On the GPU the L2
     * cache is flushed before each run, as there, so every run reads from memory. The outputs
     * were written to --out before this, so the timed runs cannot change them.
     */
    private void bench(Op.Call call, Backend backend, Map<String, Tensor> inputs, Map<String, Tensor> outputs, Owned owned, PrintWriter stdout) {
        // Outside the timed span: an output that starts as an input (gemm's c with beta != 0) is reset,
        // so every run does the same work on the same values; then, on the GPU, the L2 is flushed.
        Runnable reset = () -> {
            for (Op.Output o : call.outputs())
                if (o.initialFrom() != null) backend.copy(outputs.get(o.name()), inputs.get(o.initialFrom()));
        };
        Runnable before = reset;
        if (backend instanceof CudaBackend cuda) {
            Tensor flush = owned.add(cuda.allocate(DType.I8, 2L * Math.max(cuda.properties().l2CacheSize(), 1 << 20)));
            before = () -> {
                reset.run();
                cuda.poison(flush);
            };
        }
        Timing.Stats t = Timing.measure(backend, warmupRuns, benchRuns, before, () -> call.kernel().run(backend, inputs, outputs));
        String what = call.benchKernel() + " " + call.benchShape() + " " + call.benchDtype().label();
        double bytes = call.kernel().bytesMoved(backend, call.bytes());
        String rate = String.format(Locale.ROOT, "%.1f GB/s", bytes / t.medianMicros() / 1e3);
        if (call.flops() > 0) rate += String.format(Locale.ROOT, "  %.2f TFLOP/s", call.flops() / t.medianMicros() / 1e6);
        stdout.printf(Locale.ROOT, "%-34s %s  %s%n", what, t, rate);
        stdout.println("kernel,shape,dtype,time_us,bytes,flops");
        stdout.printf(Locale.ROOT, "%s,%s,%s,%.3f,%.0f,%.0f%n", call.benchKernel(), call.benchShape(), call.benchDtype().label(),
                t.medianMicros(), bytes, call.flops());
    }

    private static SafetensorsFile open(Path path) {
        try {
            return SafetensorsFile.open(path);
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot read " + path + ": " + ioReason(e));
        }
    }

    private static void write(Path path, Map<String, Tensor> results, Op op, Backend backend) {
        try {
            SafetensorsWriter.write(path, results, Map.of("isthmus_op", op.name(), "backend", backend.describe()));
        } catch (IOException e) {
            throw new IllegalArgumentException("cannot write " + path + ": " + ioReason(e));
        }
    }

    private static String ioReason(IOException e) {
        if (e instanceof NoSuchFileException) return "no such file";
        if (e instanceof AccessDeniedException) return "permission denied";
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    static String oneLine(Throwable e) {
        String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return message.replace('\n', ' ');
    }

    static String describeInputs(Op op) {
        return op.inputs().stream().map(s -> s.optional() ? s.name() + "?" : s.name()).collect(Collectors.joining(", "));
    }

    static String labels(Op.TensorSpec s) {
        return s.dtypes().stream().sorted().map(DType::label).collect(Collectors.joining(", "));
    }

    /** Tensors made during one run, closed in reverse order when it ends. */
    private static final class Owned implements AutoCloseable {
        private final Deque<Tensor> tensors = new ArrayDeque<>();

        Tensor add(Tensor t) {
            tensors.push(t);
            return t;
        }

        @Override
        public void close() {
            while (!tensors.isEmpty()) tensors.pop().close();
        }
    }
}
