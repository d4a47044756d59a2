package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.model.QuantizeReport;
import dev.isthmus.model.Tokenizer;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** Prints and plots what each weight precision costs and saves on one checkpoint ({@link QuantizeReport}). */
@Command(name = "quantize-report", description = "Compare f32, bf16, q8_0, q4_0 and q4_k weights of a checkpoint: bytes, logits error, "
        + "greedy agreement and decode time.")
final class QuantizeReportCommand extends ModelCommand {
    @Option(names = "--prompt", defaultValue = "The quick brown fox jumps over the lazy dog.", description = "prompt (default: ${DEFAULT-VALUE})")
    String prompt;

    @Option(names = "--tokens", defaultValue = "16", description = "greedy tokens generated and timed per precision (default ${DEFAULT-VALUE})")
    int tokens;

    @Option(names = "--backend", defaultValue = "best", description = "cpu, cuda or best (default ${DEFAULT-VALUE})")
    String backendName;

    @Option(names = "--plot", defaultValue = "quantize-report.png", description = "the PNG written (default ${DEFAULT-VALUE})")
    Path plot;

    @Override
    int run(PrintWriter out, PrintWriter err) throws Exception {
        try (Backend backend = Main.backend(backendName); Tokenizer tokenizer = Tokenizer.load(model)) {
            int[] ids = tokenizer.encode(prompt);
            List<QuantizeReport.Row> rows = QuantizeReport.run(backend, model, ids, tokens, QuantizeReport.precisions(backend));
            out.println("quantize-report of " + model + " on " + backend.describe() + ", a prompt of " + ids.length + " tokens, " + tokens
                    + " greedy tokens; errors and agreement against the f32 model on the same backend");
            out.println("| weights | computes in | KV cache | weight MiB | held MiB | KV bytes/token | logits rel. error | greedy agree | decode ms/token |");
            out.println("|---|---|---|---:|---:|---:|---:|---:|---:|");
            for (QuantizeReport.Row r : rows)
                out.printf(Locale.ROOT, "| %s | %s | %s | %.3f | %.3f | %d | %.3e | %d/%d | %.3f |%n", r.precision().label(),
                        r.precision().dtype().label(), r.kvCache(), mebibytes(r.weightBytes()), mebibytes(r.heldBytes()), r.kvBytesPerToken(),
                        r.logitsRelativeError(), r.greedyAgreeing(), r.greedyTokens(), r.decodeMillisPerToken());
            writePlot(rows);
            out.println("wrote " + plot);
            return 0;
        }
    }

    private void writePlot(List<QuantizeReport.Row> rows) throws IOException {
        List<String> groups = new ArrayList<>(), caches = new ArrayList<>();
        for (QuantizeReport.Row r : rows) {
            if (!groups.contains(r.precision().label())) groups.add(r.precision().label());
            if (!caches.contains(cacheSeries(r))) caches.add(cacheSeries(r));
        }
        double[][] size = new double[groups.size()][caches.size()], error = new double[groups.size()][caches.size()],
                time = new double[groups.size()][caches.size()];
        for (double[][] a : new double[][][] {size, error, time}) for (double[] row : a) Arrays.fill(row, Double.NaN);
        for (QuantizeReport.Row r : rows) {
            int g = groups.indexOf(r.precision().label()), c = caches.indexOf(cacheSeries(r));
            size[g][c] = mebibytes(r.weightBytes());
            error[g][c] = r.logitsRelativeError();
            time[g][c] = r.decodeMillisPerToken();
        }
        Path parent = plot.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        BarPlot.write(plot, groups, caches,
                List.of(new BarPlot.Panel("weights", "MiB", size), new BarPlot.Panel("logits error vs f32", "relative error", error),
                        new BarPlot.Panel("decode time", "ms per token", time)));
    }

    /** The plot's series of a row: its KV cache type, the compute dtype's caches all one series. */
    private static String cacheSeries(QuantizeReport.Row r) {
        return r.kvCache().equals(r.precision().dtype().label()) ? "KV cache in the compute dtype" : "KV cache " + r.kvCache();
    }

    private static double mebibytes(long bytes) {
        return bytes / (1024.0 * 1024.0);
    }
}
