package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.cuda.Nvml;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.Elementwise;
import dev.isthmus.model.ModelConfig;
import dev.isthmus.model.Session;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * The architecture comparison: small random models of equal width — attention with a KV cache
 * and a dense FFN, the same with an MoE FFN of equal active parameters, Mamba, Mamba-2, a Jamba-style
 * hybrid and a Granite-4.0-H-style one — each first checked (against the CPU backend, and decode-after-prefill against one
 * pass), then the time per generated token and the memory held per sequence measured as the
 * context grows, with the energy per token where NVML answers. Prints a table and writes
 * comparison.csv, report.md and comparison.png. With a deadline, each architecture gets an equal
 * share of the time left and stops at the last context that fits in it.
 */
@Command(name = "demo", description = "Compare attention, MoE, Mamba, Mamba-2 and two hybrids: time per token and memory per sequence against context length.")
final class DemoCommand implements Callable<Integer> {
    @Spec
    CommandSpec spec;

    @Option(names = "--backend", description = "cpu, cuda or best (default: ${DEFAULT-VALUE})", defaultValue = "best")
    String backendName;

    @Option(names = "--out", description = "folder for the table, report and plot (default: ${DEFAULT-VALUE})", defaultValue = "build/demo")
    Path outDir;

    @Option(names = "--contexts", split = ",", description = "context lengths (default: 1K..128K on a GPU, 256..4096 on the CPU)")
    int[] contexts;

    @Option(names = "--steps", description = "decode steps timed per context (default: 16 on a GPU, 8 on the CPU)")
    Integer steps;

    @Option(names = "--deadline-seconds", description = "stop measuring longer contexts when they would not finish in this time (default: none)")
    Double deadlineSeconds;

    /**
     * Untimed decode steps before the timed ones at each context (allocator, caches); the first
     * context of each architecture gets FIRST_WARMUP_STEPS, so the JIT has compiled its code
     * before anything is timed (fewer left compilation in the CPU numbers of the short contexts).
     */
    private static final int WARMUP_STEPS = 8, FIRST_WARMUP_STEPS = 48;

    /** The energy of a context is read over more decode steps, until this many seconds or ENERGY_STEPS passed. */
    private static final double ENERGY_SECONDS = 0.1;
    private static final int ENERGY_STEPS = 64;

    /** One architecture at one context: the median time per token, the memory per sequence, the energy (null: not read). */
    record Point(double millis, double mebibytes, Nvml.Reading energy) {
        static final Point SKIPPED = new Point(Double.NaN, Double.NaN, null);
    }

    /** The sizes of one run: width, depth, vocabulary, FFN width, context lengths and timed steps. */
    record Sizes(int hidden, int layers, int vocab, int kvHeads, int intermediate, int[] contexts, int steps, DType dtype) {}

    /** One architecture of the comparison. */
    record Arch(String name, ModelConfig config) {}

    @Override
    public Integer call() throws IOException {
        PrintWriter out = spec.commandLine().getOut();
        try (Backend backend = Main.backend(backendName)) {
            // The host emulation runs every CUDA thread as a fiber on the CPU: it gets the CPU's sizes.
            boolean small = backend instanceof CpuBackend || HostEmulation.enabled();
            Sizes sizes = small ? new Sizes(128, 4, 256, 1, 256, new int[] {256, 512, 1024, 2048, 4096}, 8, DType.F32)
                              : new Sizes(1024, 8, 32000, 4, 2816, new int[] {1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072}, 16, DType.BF16);
            if (contexts != null) sizes = new Sizes(sizes.hidden, sizes.layers, sizes.vocab, sizes.kvHeads, sizes.intermediate,
                    checkedContexts(contexts), sizes.steps, sizes.dtype);
            if (steps != null) {
                if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1, got " + steps);
                sizes = new Sizes(sizes.hidden, sizes.layers, sizes.vocab, sizes.kvHeads, sizes.intermediate, sizes.contexts, steps, sizes.dtype);
            }
            out.println("backend: " + backend.describe());
            out.printf("models: width %d, %d layers, vocabulary %d, %s, random weights%n", sizes.hidden, sizes.layers, sizes.vocab,
                    sizes.dtype.label());
            out.flush();
            if (deadlineSeconds != null && !(deadlineSeconds > 0))
                throw new IllegalArgumentException("--deadline-seconds must be positive, got " + deadlineSeconds);
            long deadline = System.nanoTime() + (deadlineSeconds == null ? Long.MAX_VALUE / 2 : (long) (deadlineSeconds * 1e9));
            boolean checksOk = check(backend, sizes.dtype, out);
            List<Arch> archs = architectures(sizes);
            Point[][] points = new Point[archs.size()][];
            try (Nvml.EnergyMeter meter = backend instanceof CudaBackend cuda ? Nvml.meter(cuda.ordinal()) : null) {
                out.println("energy: " + (meter == null ? "not read on the CPU backend"
                        : meter.available() ? "NVML, " + meter.method() : "not read: " + meter.unavailableReason()));
                for (int a = 0; a < archs.size(); a++) {
                    long share = (deadline - System.nanoTime()) / (archs.size() - a);
                    points[a] = measure(backend, meter, archs.get(a), sizes, System.nanoTime() + share, out);
                }
            }
            printTable(out, archs, sizes, points);
            write(backend, archs, sizes, points, out);
            out.println(checksOk ? "all checks passed" : "SOME CHECKS FAILED");
            return checksOk ? 0 : 1;
        } finally {
            out.flush();
        }
    }

    private static int[] checkedContexts(int[] values) {
        int[] sorted = values.clone();
        Arrays.sort(sorted);
        if (sorted.length == 0 || sorted[0] < 1) throw new IllegalArgumentException("--contexts must be positive lengths");
        return sorted;
    }

    /**
     * Attention + dense FFN (intermediate I), attention + MoE FFN of 8 experts of I/2 with top-2
     * (the same active FFN parameters per token), Mamba, Mamba-2, the Jamba-style hybrid (attention in one layer
     * of four, MoE of 8 x I/2 top-2 in every second layer) and the Granite-4.0-H-style one (attention without
     * positions in one layer of four, Mamba-2 elsewhere, in every layer an MoE of 8 x I/4 top-2 beside a shared
     * MLP of I/2: again I active FFN parameters per token).
     */
    static List<Arch> architectures(Sizes s) {
        return List.of(new Arch("attention + dense FFN", ModelConfig.llama(s.vocab, s.hidden, s.layers, s.kvHeads, s.intermediate)),
                new Arch("attention + MoE FFN", ModelConfig.mixtral(s.vocab, s.hidden, s.layers, s.kvHeads, s.intermediate / 2, 8, 2)),
                new Arch("Mamba", ModelConfig.mamba(s.vocab, s.hidden, s.layers, 16)),
                new Arch("Mamba-2", ModelConfig.mamba2(s.vocab, s.hidden, s.layers, 128)),
                new Arch("hybrid (Jamba-style)", ModelConfig.jamba(s.vocab, s.hidden, s.layers, s.kvHeads, s.intermediate / 2, 8, 2, 4)),
                new Arch("hybrid (Granite-style)", ModelConfig.graniteHybrid(s.vocab, s.hidden, s.layers, s.kvHeads, s.intermediate / 4, 8, 2,
                        s.intermediate / 2, 4)));
    }

    /**
     * Each architecture at a small size: prefill logits and two decode steps on the backend
     * against the CPU backend in f32 (skipped when the backend is the CPU), and one-pass logits
     * against a chunked prefill followed by decode steps on the backend itself.
     */
    private static boolean check(Backend backend, DType dtype, PrintWriter out) {
        Sizes small = new Sizes(128, 4, 256, 1, 256, new int[0], 0, dtype);
        double bound = dtype == DType.F32 ? 1e-4 : 3 * Compare.boundFor(dtype);
        int[] prompt = new int[24];
        for (int i = 0; i < prompt.length; i++) prompt[i] = (i * 37 + 11) % small.vocab;
        boolean allOk = true;
        out.println("checks at width 128, 4 layers (bound " + bound + "):");
        for (Arch arch : architectures(small)) {
            try (DecoderModel model = DecoderModel.random(backend, arch.config(), dtype, 1)) {
                double vsCpu = Double.NaN;
                if (!(backend instanceof CpuBackend)) {
                    try (DecoderModel reference = DecoderModel.random(Backend.cpu(), arch.config(), DType.F32, 1);
                         Tensor expected = logits(reference, new int[][] {prompt}); Tensor actual = logits(model, new int[][] {prompt})) {
                        vsCpu = Compare.relativeError(actual, expected);
                    }
                }
                double chunked;
                int[][] pieces = {Arrays.copyOfRange(prompt, 0, 20), {prompt[20]}, {prompt[21]}, Arrays.copyOfRange(prompt, 22, 24)};
                try (Tensor whole = logits(model, new int[][] {prompt}); Tensor split = logits(model, pieces)) {
                    chunked = Compare.relativeError(split, whole);
                }
                boolean ok = (Double.isNaN(vsCpu) || vsCpu <= bound) && chunked <= bound;
                allOk &= ok;
                out.printf(Locale.ROOT, "  %-22s %s  chunked+decode vs one pass %.1e  %s%n", arch.name(),
                        Double.isNaN(vsCpu) ? "(the CPU is the reference)" : String.format(Locale.ROOT, "vs CPU f32 %.1e", vsCpu), chunked,
                        ok ? "ok" : "FAIL");
                out.flush();
            }
        }
        return allOk;
    }

    /** Logits of every position of the pieces run one after another in one fresh sequence. */
    private static Tensor logits(DecoderModel model, int[][] pieces) {
        int total = Arrays.stream(pieces).mapToInt(p -> p.length).sum();
        Tensor all = Tensor.allocateHost(DType.F32, total, model.config().vocabSize());
        try (Session session = model.newSession(1, total)) {
            int row = 0;
            for (int[] piece : pieces) {
                try (Tensor l = model.forward(session, new int[] {0}, new int[][] {piece}, true)) {
                    Backend.cpu().copy(all.slice(0, row, row + piece.length), l);
                }
                row += piece.length;
            }
        }
        return all;
    }

    /**
     * Grows one sequence to each context length (chunked prefill) and times decode steps there,
     * then reads the energy of more steps; a context whose time, estimated from the previous one,
     * would pass {@code deadline} is skipped with the ones after it.
     */
    private static Point[] measure(Backend backend, Nvml.EnergyMeter meter, Arch arch, Sizes s, long deadline, PrintWriter out) {
        int maxContext = s.contexts[s.contexts.length - 1];
        boolean readEnergy = meter != null && meter.available();
        Point[] points = new Point[s.contexts.length];
        Arrays.fill(points, Point.SKIPPED);
        out.println(arch.name() + ":");
        out.flush();
        try (DecoderModel model = DecoderModel.random(backend, arch.config(), s.dtype, 2);
             Session session = model.newSession(1, maxContext + FIRST_WARMUP_STEPS
                     + s.contexts.length * (s.steps + WARMUP_STEPS + (readEnergy ? ENERGY_STEPS : 0)));
             Tensor picked = backend.allocate(DType.I32, 1); Tensor pickedHost = Tensor.allocateHost(DType.I32, 1)) {
            int[] token = {1};
            // A generation step as an engine runs it: the decode step (a CUDA graph on a GPU), the
            // greedy pick on the device, and only the id back to the host.
            Runnable step = () -> {
                Tensor logits = model.decodeOnDevice(session, new int[] {token[0]});
                Elementwise.argmax(backend, picked, logits);
                backend.copy(pickedHost, picked);
                token[0] = (int) pickedHost.toLongArray()[0];
            };
            long previousNanos = 0;
            for (int c = 0; c < s.contexts.length; c++) {
                long started = System.nanoTime();
                if (c > 0 && started + previousNanos * ((double) s.contexts[c] / s.contexts[c - 1]) > deadline) {
                    out.printf(Locale.ROOT, "  contexts from %d on: skipped, they would not finish before the deadline%n", s.contexts[c]);
                    break;
                }
                int missing = s.contexts[c] - session.length(0);
                // Prefill in chunks so that activations stay small at long contexts.
                for (int done = 0; done < missing; done += 8192) {
                    int[] chunk = new int[Math.min(8192, missing - done)];
                    Arrays.fill(chunk, 3);
                    model.forward(session, new int[] {0}, new int[][] {chunk}, false).close();
                }
                double[] times = new double[s.steps];
                for (int i = c == 0 ? -FIRST_WARMUP_STEPS : -WARMUP_STEPS; i < s.steps; i++) {
                    long start = System.nanoTime();
                    step.run();
                    if (i >= 0) times[i] = (System.nanoTime() - start) / 1e6;
                }
                Arrays.sort(times);
                Nvml.Reading energy = readEnergy ? meter.measure(step, backend::synchronize, ENERGY_SECONDS, ENERGY_STEPS) : null;
                points[c] = new Point(times[times.length / 2], session.bytesPerSequence(s.contexts[c]) / (1024.0 * 1024.0), energy);
                out.printf(Locale.ROOT, "  context %7d: %8.3f ms/token, %9.3f MiB/sequence%s%n", s.contexts[c], points[c].millis(),
                        points[c].mebibytes(), energy != null && energy.available()
                                ? String.format(Locale.ROOT, ", %.4f J/token at %.0f W, SM %.0f MHz", energy.joulesPerRepetition(),
                                        energy.averageWatts(), energy.smClockMhz()) : "");
                out.flush();
                previousNanos = System.nanoTime() - started;
            }
        }
        return points;
    }

    private static void printTable(PrintWriter out, List<Arch> archs, Sizes s, Point[][] points) {
        out.println();
        out.println(table(archs, s, points, false));
    }

    /** The results as a fixed-width table, or as a markdown table; J/token where NVML answered. */
    private static String table(List<Arch> archs, Sizes s, Point[][] points, boolean markdown) {
        StringBuilder sb = new StringBuilder();
        String sep = markdown ? " | " : "  ";
        sb.append(markdown ? "| " : "").append(String.format(Locale.ROOT, "%-22s", "architecture")).append(sep)
          .append(String.format(Locale.ROOT, "%-8s", "context")).append(sep).append(String.format(Locale.ROOT, "%10s", "ms/token")).append(sep)
          .append(String.format(Locale.ROOT, "%12s", "MiB/sequence")).append(sep).append(String.format(Locale.ROOT, "%9s", "J/token"))
          .append(sep).append(String.format(Locale.ROOT, "%6s", "W")).append(markdown ? " |" : "").append('\n');
        if (markdown) sb.append("|---|---:|---:|---:|---:|---:|\n");
        for (int a = 0; a < archs.size(); a++)
            for (int c = 0; c < s.contexts.length; c++) {
                Point p = points[a][c];
                boolean energy = p.energy() != null && p.energy().available();
                sb.append(markdown ? "| " : "").append(String.format(Locale.ROOT, "%-22s", archs.get(a).name())).append(sep)
                  .append(String.format(Locale.ROOT, "%-8d", s.contexts[c])).append(sep)
                  .append(String.format(Locale.ROOT, "%10.3f", p.millis())).append(sep)
                  .append(String.format(Locale.ROOT, "%12.3f", p.mebibytes())).append(sep)
                  .append(energy ? String.format(Locale.ROOT, "%9.4f", p.energy().joulesPerRepetition()) : String.format("%9s", "-")).append(sep)
                  .append(energy ? String.format(Locale.ROOT, "%6.0f", p.energy().averageWatts()) : String.format("%6s", "-"))
                  .append(markdown ? " |" : "").append('\n');
            }
        return sb.toString();
    }

    private void write(Backend backend, List<Arch> archs, Sizes s, Point[][] points, PrintWriter out) throws IOException {
        Path dir = Files.createDirectories(outDir);
        try (PrintWriter csv = new PrintWriter(Files.newBufferedWriter(dir.resolve("comparison.csv")))) {
            csv.println("architecture,context,ms_per_token,mib_per_sequence,joules_per_token,avg_watts,sm_clock_mhz,energy_note");
            for (int a = 0; a < archs.size(); a++)
                for (int c = 0; c < s.contexts.length; c++) {
                    Point p = points[a][c];
                    Nvml.Reading e = p.energy();
                    boolean energy = e != null && e.available();
                    String note = p == Point.SKIPPED ? "skipped: deadline" : e == null ? "not read" : energy
                            ? e.method() + "; " + e.repetitions() + " tokens in " + String.format(Locale.ROOT, "%.3f", e.seconds()) + " s"
                            : e.unavailableReason();
                    csv.printf(Locale.ROOT, "%s,%d,%.4f,%.4f,%s,%s,%s,%s%n", archs.get(a).name(), s.contexts[c], p.millis(), p.mebibytes(),
                            energy ? String.format(Locale.ROOT, "%.6f", e.joulesPerRepetition()) : "",
                            energy ? String.format(Locale.ROOT, "%.1f", e.averageWatts()) : "",
                            energy ? String.format(Locale.ROOT, "%.0f", e.smClockMhz()) : "", note.replace(',', ';'));
                }
        }
        double[][] millis = new double[archs.size()][], mebibytes = new double[archs.size()][];
        for (int a = 0; a < archs.size(); a++) {
            millis[a] = Arrays.stream(points[a]).mapToDouble(Point::millis).toArray();
            mebibytes[a] = Arrays.stream(points[a]).mapToDouble(Point::mebibytes).toArray();
        }
        double[] x = Arrays.stream(s.contexts).asDoubleStream().toArray();
        List<LinePlot.Series> time = new ArrayList<>(), memory = new ArrayList<>();
        for (int a = 0; a < archs.size(); a++) {
            time.add(new LinePlot.Series(archs.get(a).name(), millis[a]));
            memory.add(new LinePlot.Series(archs.get(a).name(), mebibytes[a]));
        }
        LinePlot.write(dir.resolve("comparison.png"), "context length (tokens)", x,
                List.of(new LinePlot.Panel("time per generated token", "ms per token", time),
                        new LinePlot.Panel("memory held per sequence", "MiB per sequence", memory)));
        String report = "# Architecture comparison\n\n"
                + "Run " + Instant.now() + " on " + backend.describe() + ".\n\n"
                + String.format(Locale.ROOT, "Random models of width %d, %d layers, vocabulary %d, %s weights and activations; "
                        + "attention heads of 64 with %d kv heads; dense FFN of %d, MoE of 8 experts of %d with top-2 (equal active "
                        + "parameters); Mamba with 16 states per channel and 2x expansion; Mamba-2 with 2x expansion in heads of 64 "
                        + "channels, 128 states each and one group; the Jamba-style hybrid has attention in one layer of "
                        + "four and an MoE FFN in every second layer; the Granite-style (Granite 4.0-H) one has attention without positions in "
                        + "one layer of four, Mamba-2 elsewhere, and in every layer an MoE of 8 experts of %d with top-2 beside a shared MLP of %d. Batch of one sequence; each time is the median of %d decode "
                        + "steps at that context, after " + WARMUP_STEPS + " untimed ones (" + FIRST_WARMUP_STEPS + " at an architecture's first context; a step is the decode step, the greedy pick on the device and the id copied back); memory is what the caches hold "
                        + "for the sequence (KV blocks of 32 tokens, Mamba conv and SSM states); J/token and W are NVML's energy counter (or power samples) over up to " + ENERGY_STEPS + " more steps, where NVML answers.%n%n",
                        s.hidden, s.layers, s.vocab, s.dtype.label(), s.kvHeads, s.intermediate, s.intermediate / 2,
                        s.intermediate / 4, s.intermediate / 2, s.steps)
                + table(archs, s, points, true) + "\n![time per token and memory per sequence](comparison.png)\n\n"
                + "Attention reads every cached key and value at each step, so its time and memory grow linearly with the context; "
                + "Mamba and Mamba-2 carry a fixed state, so both stay flat; the hybrids grow at a quarter of attention's rate. The MoE FFN "
                + "changes the per-token compute of the FFN, not the growth with context.\n";
        Files.writeString(dir.resolve("report.md"), report);
        out.println("wrote " + dir.resolve("comparison.csv") + ", " + dir.resolve("report.md") + " and " + dir.resolve("comparison.png"));
    }
}
