package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.cuda.Nvml;
import dev.isthmus.random.RandomFill;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.List;
import java.util.Locale;

/**
 * What every GPU benchmark suite shares: the device, the L2 flush before each timed run, inputs
 * drawn on the device, the energy meter, and the rows written as they are measured. {@code tiny}
 * selects sizes small enough for the host emulation (the dry run), where a suite proves that it
 * runs and writes its rows, not how fast anything is.
 */
final class Bench implements AutoCloseable {
    /** Header of raw.csv: the work each row must do (bytes, FLOPs, tokens; 0 = not applicable) and the energy of a window of back-to-back runs. */
    static final List<String> HEADER = List.of("kernel", "shape", "dtype", "time_us", "runs", "bytes", "flops", "tokens",
            "energy_j_per_run", "avg_watts", "sm_clock_mhz", "energy_note");

    /** Shortest window the energy is read over: NVML's counter moves in steps of a few milliseconds. */
    private static final double ENERGY_SECONDS = 0.1;

    final CudaBackend gpu;
    final boolean tiny;
    private final Tensor flush;
    private final Nvml.EnergyMeter meter;
    private final CsvRows raw, shapes;
    private long seed = 1;
    /** Bytes per microsecond of the device-to-device copy, once the device-copy suite has run (for the printed floors). */
    double copyBytesPerUs = Double.NaN;

    Bench(CudaBackend gpu, boolean tiny, Nvml.EnergyMeter meter, CsvRows raw, CsvRows shapes) {
        this.gpu = gpu;
        this.tiny = tiny;
        this.meter = meter;
        this.raw = raw;
        this.shapes = shapes;
        // Twice the L2, so that overwriting it evicts every input of the previous run.
        this.flush = gpu.allocate(DType.I8, 2 * Math.max(gpu.properties().l2CacheSize(), 1 << 20));
    }

    /** Median device time of {@code runs} launches after {@code warmup}, the L2 flushed before each. */
    Timing.Stats time(int warmup, int runs, Runnable op) {
        return Timing.measure(gpu, warmup, runs, () -> gpu.poison(flush), op);
    }

    /**
     * Writes one measured row (and its entry in shapes.csv for the peers), after reading the
     * energy of {@code op} run back to back for at least {@value #ENERGY_SECONDS} s (no flush in
     * between: the joules of the kernel itself, with the L2 warm where its data fits).
     */
    void record(String kernel, String shape, DType dtype, Timing.Stats t, double bytes, double flops, long tokens, Runnable op) {
        recordWithEnergy(kernel, shape, dtype, t, bytes, flops, tokens,
                meter.available() ? meter.measure(op, gpu::synchronize, ENERGY_SECONDS) : null);
    }

    /** As above with the energy already read ({@link #energyOfSteps}), or null where NVML does not answer. */
    void recordWithEnergy(String kernel, String shape, DType dtype, Timing.Stats t, double bytes, double flops, long tokens, Nvml.Reading e) {
        boolean energy = e != null && e.available();
        String note = e == null ? meter.unavailableReason()
                : energy ? e.method() + ", " + e.repetitions() + " runs in " + num(e.seconds()) + " s" : e.unavailableReason();
        raw.write(List.of(kernel, shape, dtype.label(), num(t.medianMicros()), Integer.toString(t.runs()), num(bytes), num(flops),
                Long.toString(tokens), energy ? num(e.joulesPerRepetition()) : "", energy ? num(e.averageWatts()) : "",
                energy ? num(e.smClockMhz()) : "", note));
        if (!kernel.equals("device-copy")) shapes.write(List.of(kernel, shape, dtype.label()));
    }

    /**
     * The energy of {@code step} run until {@value #ENERGY_SECONDS} s have passed or {@code maxRuns}
     * ran (for work that uses up a capacity, such as a session's decode steps); null where NVML
     * does not answer.
     */
    Nvml.Reading energyOfSteps(Runnable step, int maxRuns) {
        return meter.available() ? meter.measure(step, gpu::synchronize, ENERGY_SECONDS, maxRuns) : null;
    }

    /** A device tensor of normal values, mean 0, standard deviation {@code std}; a fresh seed each call. */
    Tensor normal(DType dtype, float std, long... shape) {
        return RandomFill.normal(gpu, dtype, seed++, std, shape);
    }

    /** A device tensor of values uniform in [low, high); a fresh seed each call. */
    Tensor uniform(DType dtype, float low, float high, long... shape) {
        return RandomFill.uniform(gpu, dtype, seed++, low, high, shape);
    }

    /** Nine significant digits, never a locale's comma. */
    static String num(double v) {
        return Double.isFinite(v) ? String.format(Locale.ROOT, "%.9g", v) : "";
    }

    @Override
    public void close() {
        flush.close();
    }
}
