package dev.isthmus.backend;

import dev.isthmus.cuda.CudaEvent;
import java.util.Arrays;

/**
 * Times an operation on a backend: each run separately, after warm-up, reporting the median and
 * the spread. On CUDA the time is the device's, between two events around each launch; on the
 * CPU it is wall-clock time.
 */
public final class Timing {
    private Timing() {}

    /** Microseconds per run: median, fastest and slowest of {@code runs}. */
    public record Stats(double medianMicros, double minMicros, double maxMicros, int runs) {
        @Override
        public String toString() {
            return String.format("%.2f us (min %.2f, max %.2f, %d runs)", medianMicros, minMicros, maxMicros, runs);
        }
    }

    public static Stats measure(Backend backend, int warmup, int runs, Runnable operation) {
        return measure(backend, warmup, runs, () -> {}, operation);
    }

    /**
     * As {@link #measure(Backend, int, int, Runnable)}, running {@code beforeEach} ahead of every
     * timed run, outside the timed span (benchmarks flush the L2 cache there).
     */
    public static Stats measure(Backend backend, int warmup, int runs, Runnable beforeEach, Runnable operation) {
        if (runs < 1) throw new IllegalArgumentException("runs must be >= 1");
        for (int i = 0; i < warmup; i++) operation.run();
        backend.synchronize();
        double[] micros = switch (backend) {
            case CpuBackend cpu -> wallClock(runs, beforeEach, operation);
            case CudaBackend cuda -> deviceTime(cuda, runs, beforeEach, operation);
        };
        Arrays.sort(micros);
        return new Stats(micros[runs / 2], micros[0], micros[runs - 1], runs);
    }

    private static double[] wallClock(int runs, Runnable beforeEach, Runnable operation) {
        double[] micros = new double[runs];
        for (int i = 0; i < runs; i++) {
            beforeEach.run();
            long start = System.nanoTime();
            operation.run();
            micros[i] = (System.nanoTime() - start) / 1e3;
        }
        return micros;
    }

    private static double[] deviceTime(CudaBackend backend, int runs, Runnable beforeEach, Runnable operation) {
        double[] micros = new double[runs];
        CudaEvent[] starts = new CudaEvent[runs], ends = new CudaEvent[runs];
        try {
            for (int i = 0; i < runs; i++) {
                starts[i] = new CudaEvent(backend.ordinal());
                ends[i] = new CudaEvent(backend.ordinal());
            }
            for (int i = 0; i < runs; i++) {
                beforeEach.run();
                starts[i].record(backend.stream());
                operation.run();
                ends[i].record(backend.stream());
            }
            backend.synchronize();
            for (int i = 0; i < runs; i++) micros[i] = ends[i].millisSince(starts[i]) * 1e3;
            return micros;
        } finally {
            for (int i = 0; i < runs; i++) {
                if (starts[i] != null) starts[i].close();
                if (ends[i] != null) ends[i].close();
            }
        }
    }
}
