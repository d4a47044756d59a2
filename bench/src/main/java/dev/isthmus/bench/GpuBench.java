package dev.isthmus.bench;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.cuda.Nvml;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The GPU kernel benchmarks: each kernel at its benchmark shapes, timed with CUDA events per launch
 * (the median of each suite's run count), the L2 flushed before each launch so every run reads
 * from memory, on random inputs drawn on the device. Writes OUTDIR/raw.csv (one row per
 * measurement, written and flushed as it is taken: the bytes, FLOPs and tokens the work must move,
 * do and produce, and its energy where NVML answers) and OUTDIR/shapes.csv, the list the peer
 * scripts time the same work at; bench/report.py joins them with the peers and the ceilings.
 *
 * <p>{@code GpuBench OUTDIR [--tiny] [--deadline-seconds S]}: a suite that throws is reported and
 * the next one runs (the exit status says a suite failed); no suite starts after the deadline.
 * {@code --tiny} uses sizes the host emulation finishes in seconds.
 */
public final class GpuBench {
    private GpuBench() {}

    private record Suite(String name, Consumer<Bench> body) {}

    public static void main(String[] args) throws IOException {
        Path outDir = null;
        boolean tiny = false;
        double deadlineSeconds = Double.POSITIVE_INFINITY;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--tiny" -> tiny = true;
                case "--deadline-seconds" -> deadlineSeconds = Double.parseDouble(args[++i]);
                default -> {
                    if (outDir != null) throw new IllegalArgumentException("usage: GpuBench OUTDIR [--tiny] [--deadline-seconds S]");
                    outDir = Path.of(args[i]);
                }
            }
        }
        if (outDir == null) throw new IllegalArgumentException("usage: GpuBench OUTDIR [--tiny] [--deadline-seconds S]");
        Files.createDirectories(outDir);
        long deadline = System.nanoTime() + (long) Math.min(deadlineSeconds * 1e9, Long.MAX_VALUE / 2.0);
        List<Suite> suites = List.of(new Suite("device-copy", GpuBench::deviceCopy), new Suite("rmsnorm", NormBench::run),
                new Suite("scan", ScanBench::run), new Suite("ssd", SsdBench::run), new Suite("attention", AttentionBench::run), new Suite("moe", MoeBench::run),
                new Suite("quant", QuantBench::run), new Suite("model", ModelBench::run),
                new Suite("speculative", SpeculativeBench::run));
        List<String> failed = new ArrayList<>(), skipped = new ArrayList<>();
        try (CudaBackend gpu = Backend.cuda(0);
             Nvml.EnergyMeter meter = Nvml.meter(gpu.ordinal());
             CsvRows raw = new CsvRows(outDir.resolve("raw.csv"), Bench.HEADER);
             CsvRows shapes = new CsvRows(outDir.resolve("shapes.csv"), List.of("kernel", "shape", "dtype"));
             Bench bench = new Bench(gpu, tiny, meter, raw, shapes)) {
            System.out.println("device: " + gpu.describe() + (tiny ? " (tiny sizes)" : ""));
            System.out.println("energy: " + (meter.available() ? "NVML, " + meter.method() : "not measured: " + meter.unavailableReason()));
            for (Suite suite : suites) {
                if (System.nanoTime() > deadline) {
                    skipped.add(suite.name());
                    continue;
                }
                try {
                    suite.body().accept(bench);
                    gpu.synchronize();
                } catch (RuntimeException | Error e) {
                    failed.add(suite.name());
                    System.out.println("SUITE FAILED " + suite.name() + ": " + e);
                    e.printStackTrace(System.out);
                }
            }
        }
        System.out.println("wrote " + outDir.resolve("raw.csv") + " and " + outDir.resolve("shapes.csv"));
        if (!skipped.isEmpty()) System.out.println("suites skipped at the deadline: " + String.join(" ", skipped));
        if (!failed.isEmpty()) {
            System.out.println("suites failed: " + String.join(" ", failed));
            System.exit(1);
        }
    }

    /** The copy ceiling as our own stack sees it: a device-to-device copy of 1 GiB (1 MiB when tiny). */
    private static void deviceCopy(Bench b) {
        long bytes = b.tiny ? 1L << 20 : 1L << 30;
        try (Tensor src = b.uniform(DType.F32, -1f, 1f, bytes / 4); Tensor dst = b.gpu.allocate(DType.F32, bytes / 4)) {
            Runnable op = () -> b.gpu.copy(dst, src);
            Timing.Stats t = Timing.measure(b.gpu, 3, 20, op);
            String shape = b.tiny ? "1MiB" : "1GiB";
            print("device-copy " + shape, t, 2.0 * bytes);
            b.copyBytesPerUs = 2.0 * bytes / t.medianMicros();
            b.record("device-copy", shape, DType.I8, t, 2.0 * bytes, 0, 0, op);
        }
    }

    static void print(String what, Timing.Stats t, double bytes) {
        System.out.printf(Locale.ROOT, "%-44s %s  %.1f GB/s%n", what, t, bytes / t.medianMicros() / 1e3);
    }
}
