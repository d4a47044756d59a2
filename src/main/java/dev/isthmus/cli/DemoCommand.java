package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.Timing;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * The demo: RMSNorm (with and without the fused residual add) on the best backend, each result
 * checked against the CPU reference, with the time per call and the bandwidth it reached.
 */
@Command(name = "demo", description = "Run RMSNorm on the best backend, check it against the CPU reference, time it.")
final class DemoCommand implements Callable<Integer> {
    @Option(names = "--backend", description = "cpu, cuda or best (default: ${DEFAULT-VALUE})", defaultValue = "best")
    String backendName;

    @Option(names = "--rows", description = "rows (tokens), default ${DEFAULT-VALUE}", defaultValue = "2048")
    int rows;

    @Option(names = "--cols", description = "columns (hidden size), default ${DEFAULT-VALUE}", defaultValue = "4096")
    int cols;

    @Override
    public Integer call() {
        if (rows < 1 || cols < 1) throw new IllegalArgumentException("--rows and --cols must be positive");
        boolean allOk = true;
        try (Backend backend = Main.backend(backendName)) {
            System.out.println("backend: " + backend.describe());
            System.out.printf("RMSNorm over (%d, %d), checked against the CPU reference (double accumulation)%n", rows, cols);
            System.out.printf("%-6s %-9s %-12s %-7s %-6s %12s %10s%n", "dtype", "residual", "rel. error", "bound", "check", "time", "GB/s");
            Random random = new Random(42);
            for (DType dtype : new DType[] {DType.F32, DType.BF16, DType.F16})
                for (boolean residual : new boolean[] {false, true})
                    allOk &= runOne(backend, random, dtype, residual);
        }
        System.out.println(allOk ? "all results within bounds" : "SOME RESULTS OUT OF BOUNDS");
        return allOk ? 0 : 1;
    }

    private boolean runOne(Backend backend, Random random, DType dtype, boolean withResidual) {
        try (Tensor x = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor r = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, dtype, 1f, cols);
             Tensor expected = Tensor.allocateHost(dtype, rows, cols);
             Tensor expectedResidual = Tensor.allocateHost(dtype, rows, cols);
             Tensor dx = backend.copyOf(x); Tensor dr = backend.copyOf(r); Tensor dw = backend.copyOf(w);
             Tensor out = backend.allocate(dtype, rows, cols);
             Tensor residualOut = backend.allocate(dtype, rows, cols)) {
            Backend cpu = Backend.cpu();
            Runnable op;
            if (withResidual) {
                RmsNorm.applyWithResidual(cpu, expected, expectedResidual, x, r, w, 1e-6f);
                op = () -> RmsNorm.applyWithResidual(backend, out, residualOut, dx, dr, dw, 1e-6f);
            } else {
                RmsNorm.apply(cpu, expected, x, w, 1e-6f);
                op = () -> RmsNorm.apply(backend, out, dx, dw, 1e-6f);
            }
            backend.poison(out);
            op.run();
            Compare.Result check;
            try (Tensor actual = backend.toHost(out)) {
                check = Compare.check("out", actual, expected);
            }
            Timing.Stats time = Timing.measure(backend, 3, backend.device().isHost() ? 5 : 50, op);
            // Bytes that must move: x read and out written, plus the residual read and written.
            double bytes = (double) rows * cols * dtype.byteSize() * (withResidual ? 4 : 2);
            System.out.printf("%-6s %-9s %-12.3e %-7.0e %-6s %9.1f us %10.1f%n", dtype.label(), withResidual ? "fused" : "none",
                    check.error(), check.bound(), check.withinBound() ? "ok" : "FAIL", time.medianMicros(),
                    bytes / time.medianMicros() / 1e3);
            return check.withinBound();
        }
    }
}
