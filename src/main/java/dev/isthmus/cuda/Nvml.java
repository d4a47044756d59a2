package dev.isthmus.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaError;

/**
 * Energy, average power and SM clock of one GPU around a piece of work, read through NVIDIA's
 * management library (NVML, {@value #LIBRARY}, installed with the driver).
 *
 * <pre>{@code
 * try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
 *     Nvml.Reading r = meter.measure(() -> layer.forward(x), gpu::synchronize, 0.5);
 *     if (r.available()) System.out.printf("%.3f J per call at %.0f W%n", r.joulesPerRepetition(), r.averageWatts());
 *     else System.out.println("no energy reading: " + r.unavailableReason());
 * }
 * }</pre>
 *
 * <p><b>Without NVML nothing throws.</b> Where the library is missing, nvmlInit_v2 fails, the
 * device is not found, or the board reports neither energy nor power, a meter still opens and
 * times its windows, but every reading holds NaN and says why in
 * {@link Reading#unavailableReason()}. Only programmer errors (a negative ordinal, a null
 * operation, a negative duration) throw.
 *
 * <p><b>How energy is read</b> ({@link EnergyMeter#method()} says which, per meter):
 * <ol>
 *   <li>{@code nvmlDeviceGetTotalEnergyConsumption}, the board's millijoules since the driver
 *       loaded (Volta and newer): the difference between start and stop.
 *   <li>Where that fails (typically NVML_ERROR_NOT_SUPPORTED), {@code nvmlDeviceGetPowerUsage}
 *       sampled about every {@value #SAMPLE_PERIOD_MILLIS} ms by one daemon thread that lives
 *       only between start and stop, integrated by the trapezoid rule.
 * </ol>
 * The SM clock ({@code nvmlDeviceGetClockInfo}, NVML_CLOCK_SM) is read at stop with the energy
 * counter and averaged over the samples with power sampling; NaN where it cannot be read.
 *
 * <p><b>Windows should be long.</b> The driver refreshes the energy counter only every few to
 * tens of milliseconds, and on some boards the power reading is itself an average over up to a
 * second, so a window shorter than about {@link #RECOMMENDED_MIN_SECONDS} seconds is mostly
 * quantisation. {@link EnergyMeter#measure} repeats an operation until a window is long enough
 * and reports the repetitions, so short kernels get an energy per call.
 *
 * <p><b>Lifecycle.</b> The library is loaded on first use and stays loaded for the life of the
 * JVM (unloading a driver library under running threads is not worth the risk). Each available
 * meter holds one NVML initialisation from {@link #meter} to {@link EnergyMeter#close()}:
 * nvmlInit_v2 runs when the first such meter opens and nvmlShutdown when the last one closes.
 * A meter that is not available holds nothing.
 */
public final class Nvml {
    public static final String LIBRARY = "libnvidia-ml.so.1";
    /** A measurement window shorter than this is mostly the counters' update granularity. */
    public static final double RECOMMENDED_MIN_SECONDS = 0.1;
    /** How often power is sampled where the energy counter is not supported. */
    public static final int SAMPLE_PERIOD_MILLIS = 10;

    // nvml.h
    static final int SUCCESS = 0, ERROR_NOT_SUPPORTED = 3;
    static final int CLOCK_SM = 1; // nvmlClockType_t NVML_CLOCK_SM
    private static final int PCI_BUS_ID_BUFFER_SIZE = 32; // NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE
    private static final int NAME_BUFFER_SIZE = 96; // NVML_DEVICE_NAME_V2_BUFFER_SIZE

    private static final Object LOCK = new Object();
    private static int users; // meters holding an NVML initialisation, guarded by LOCK

    private Nvml() {}

    /** Whether NVML loads and initialises here; if not, why. */
    public record Availability(boolean available, String reason) {}

    /**
     * One measurement window. Without a reading, {@code joules}, {@code averageWatts} and
     * {@code smClockMhz} are NaN and {@code unavailableReason} says why ("" when available);
     * {@code seconds} is then still the window's wall time where there was a window.
     *
     * @param repetitions how many times {@link EnergyMeter#measure} ran the operation (1 for start/stop)
     * @param method how the energy was read, or "none"
     */
    public record Reading(double joules, double seconds, double averageWatts, double smClockMhz,
                          long repetitions, String method, String unavailableReason) {
        public Reading {
            if (method == null) throw new IllegalArgumentException("method is null");
            if (unavailableReason == null) throw new IllegalArgumentException("unavailableReason is null");
        }

        static Reading unavailable(double seconds, long repetitions, String method, String reason) {
            return new Reading(Double.NaN, seconds, Double.NaN, Double.NaN, repetitions, method, reason);
        }

        public boolean available() {
            return unavailableReason.isEmpty();
        }

        /** Joules per run of the measured operation; NaN without a reading. */
        public double joulesPerRepetition() {
            return repetitions > 0 ? joules / repetitions : Double.NaN;
        }

        Reading withRepetitions(long n) {
            return new Reading(joules, seconds, averageWatts, smClockMhz, n, method, unavailableReason);
        }
    }

    /**
     * Loads NVML and initialises it to answer, then shuts it down again unless a meter holds it.
     * Never throws.
     */
    public static Availability availability() {
        String error = acquire();
        if (!error.isEmpty()) return new Availability(false, error);
        release();
        return new Availability(true, "");
    }

    /**
     * A meter for the CUDA device {@code cudaOrdinal}, found in NVML by its PCI bus id (which
     * CUDA gives through JCuda); where JCuda cannot say, NVML's device of the same index, as
     * {@link EnergyMeter#device()} then notes. Never throws for a missing NVML or device: the
     * meter is then not available and says why.
     *
     * @throws IllegalArgumentException if {@code cudaOrdinal} is negative
     */
    public static EnergyMeter meter(int cudaOrdinal) {
        if (cudaOrdinal < 0) throw new IllegalArgumentException("cudaOrdinal must be >= 0, got " + cudaOrdinal);
        String initError = acquire();
        if (!initError.isEmpty()) return EnergyMeter.unavailable(cudaOrdinal, "CUDA device " + cudaOrdinal, initError);
        boolean kept = false;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            String description;
            String busId = cudaPciBusId(cudaOrdinal);
            if (busId.startsWith("!")) {
                int rc = Lib.handleByIndex(cudaOrdinal, out);
                if (rc != SUCCESS) return EnergyMeter.unavailable(cudaOrdinal, "CUDA device " + cudaOrdinal,
                        "nvmlDeviceGetHandleByIndex_v2(" + cudaOrdinal + "): " + Lib.errorText(rc)
                                + " (CUDA gave no PCI bus id: " + busId.substring(1) + ")");
                description = "NVML index " + cudaOrdinal + ", assumed to be CUDA device " + cudaOrdinal
                        + " (CUDA gave no PCI bus id: " + busId.substring(1)
                        + "; NVML counts in PCI order and ignores CUDA_VISIBLE_DEVICES)";
            } else {
                int rc = Lib.handleByPciBusId(arena.allocateFrom(busId), out);
                if (rc != SUCCESS) return EnergyMeter.unavailable(cudaOrdinal, "CUDA device " + cudaOrdinal + " at PCI " + busId,
                        "nvmlDeviceGetHandleByPciBusId_v2(" + busId + "): " + Lib.errorText(rc));
                description = "CUDA device " + cudaOrdinal + " at PCI " + busId;
            }
            MemorySegment device = out.get(ADDRESS, 0);
            String name = Lib.name(device, arena);
            if (!name.isEmpty()) description = name + ", " + description;

            MemorySegment value = arena.allocate(JAVA_LONG);
            int energy = Lib.energy(device, value);
            if (energy == SUCCESS) {
                kept = true;
                return new EnergyMeter(cudaOrdinal, description, device, true, "nvmlDeviceGetTotalEnergyConsumption", "");
            }
            String energyError = Lib.ENERGY == null ? LIBRARY + " has no nvmlDeviceGetTotalEnergyConsumption"
                    : "nvmlDeviceGetTotalEnergyConsumption: " + Lib.errorText(energy);
            int power = Lib.power(device, value);
            if (power == SUCCESS) {
                kept = true;
                return new EnergyMeter(cudaOrdinal, description, device, false, "nvmlDeviceGetPowerUsage every "
                        + SAMPLE_PERIOD_MILLIS + " ms, trapezoid rule (" + energyError + ")", "");
            }
            String powerError = Lib.POWER == null ? LIBRARY + " has no nvmlDeviceGetPowerUsage"
                    : "nvmlDeviceGetPowerUsage: " + Lib.errorText(power);
            return EnergyMeter.unavailable(cudaOrdinal, description, energyError + "; " + powerError);
        } finally {
            if (!kept) release();
        }
    }

    /** CUDA's PCI bus id of the device, or "!" and why there is none. */
    private static String cudaPciBusId(int ordinal) {
        try {
            String[] id = {null};
            int rc = JCuda.cudaDeviceGetPCIBusId(id, PCI_BUS_ID_BUFFER_SIZE, ordinal);
            if (rc == cudaError.cudaSuccess && id[0] != null && !id[0].isBlank()) return id[0].trim();
            JCuda.cudaGetLastError(); // a failed query must not resurface in the caller's next CUDA check
            return "!cudaDeviceGetPCIBusId(" + ordinal + "): " + cudaError.stringFor(rc);
        } catch (RuntimeException | LinkageError e) {
            return "!JCuda is not usable: " + e;
        }
    }

    /** Takes one NVML initialisation (the first runs nvmlInit_v2); "" or why it failed. */
    private static String acquire() {
        String missing = Lib.missing();
        if (!missing.isEmpty()) return missing;
        synchronized (LOCK) {
            if (users == 0) {
                int rc = Lib.init();
                if (rc != SUCCESS) return "nvmlInit_v2: " + Lib.errorText(rc);
            }
            users++;
            return "";
        }
    }

    /** Gives one back; the last one runs nvmlShutdown. */
    private static void release() {
        synchronized (LOCK) {
            if (users > 0 && --users == 0) Lib.shutdown();
        }
    }

    /**
     * Energy measurements of one device, one window at a time: {@link #start()} ...
     * {@link #stop()}, or {@link #measure}. Any order of calls is safe:
     * <ul>
     *   <li>{@code start()} while a window runs discards that window and begins a new one;
     *   <li>{@code stop()} without a running window returns the last window's reading again, or,
     *       before any, an unavailable reading saying so;
     *   <li>{@code close()} discards a running window and gives NVML back; calling it again does
     *       nothing; after it {@code start()} does nothing and {@code stop()} says the meter is closed.
     * </ul>
     * Methods may be called from any thread; the windows of one meter do not overlap.
     */
    public static final class EnergyMeter implements AutoCloseable {
        private final int cudaOrdinal;
        private final String description;
        private final MemorySegment device; // nvmlDevice_t; null when not available
        private final boolean counter; // energy counter, else power samples
        private final String method;
        private final String unavailableReason;
        private boolean holdsNvml;
        private boolean closed;
        private Window window;
        private Reading last;

        private EnergyMeter(int cudaOrdinal, String description, MemorySegment device, boolean counter,
                            String method, String unavailableReason) {
            this.cudaOrdinal = cudaOrdinal;
            this.description = description;
            this.device = device;
            this.counter = counter;
            this.method = method;
            this.unavailableReason = unavailableReason;
            this.holdsNvml = device != null;
        }

        static EnergyMeter unavailable(int cudaOrdinal, String description, String reason) {
            return new EnergyMeter(cudaOrdinal, description, null, false, "none", reason);
        }

        public int cudaOrdinal() {
            return cudaOrdinal;
        }

        /** The device as NVML names it and how it was matched to the CUDA ordinal. */
        public String device() {
            return description;
        }

        public boolean available() {
            return unavailableReason.isEmpty();
        }

        /** Why readings are empty; "" when the meter is available. */
        public String unavailableReason() {
            return unavailableReason;
        }

        /** How energy is read: the NVML function and, for power sampling, why not the counter; "none" without NVML. */
        public String method() {
            return method;
        }

        /** Begins a window (discarding a running one); does nothing once closed. */
        public synchronized void start() {
            if (closed) return;
            abandon();
            last = null;
            window = new Window(System.nanoTime());
            if (device == null) return;
            if (counter) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment value = arena.allocate(JAVA_LONG);
                    int rc = Lib.energy(device, value);
                    if (rc == SUCCESS) window.startMillijoules = value.get(JAVA_LONG, 0);
                    else window.error = "nvmlDeviceGetTotalEnergyConsumption at start: " + Lib.errorText(rc);
                }
            } else {
                Sampler sampler = new Sampler(device);
                sampler.sampleOnce(); // the trace begins with the window, not one period later
                window.sampler = sampler;
                sampler.thread.start();
            }
        }

        /** Ends the window and returns its reading; see the class comment for calls out of order. */
        public synchronized Reading stop() {
            if (closed) return Reading.unavailable(Double.NaN, 0, method, "the meter is closed");
            Window w = window;
            if (w == null) return last != null ? last : Reading.unavailable(Double.NaN, 0, method, "stop() without start()");
            window = null;
            last = device == null ? Reading.unavailable(secondsSince(w.startNanos), 1, method, unavailableReason)
                    : counter ? stopCounter(w) : stopSampler(w);
            return last;
        }

        /**
         * Runs {@code op} repeatedly, at least once, until {@code minSeconds} have passed, then
         * {@code synchronize} (which must wait for all the work {@code op} queued), and returns
         * the window's reading with the number of runs. {@code synchronize} also runs once before
         * the window opens, so earlier work is not counted. Use {@code minSeconds} of at least
         * {@link Nvml#RECOMMENDED_MIN_SECONDS}. Without NVML the operation still runs and the
         * reading keeps its seconds and repetitions. If {@code op} or {@code synchronize} throws,
         * the window is discarded and the exception passes through.
         */
        public Reading measure(Runnable op, Runnable synchronize, double minSeconds) {
            return measure(op, synchronize, minSeconds, Long.MAX_VALUE);
        }

        /**
         * As {@link #measure(Runnable, Runnable, double)}, stopping after {@code maxRuns} runs even
         * before {@code minSeconds}: for work that uses up a capacity, such as a session's decode
         * steps (the reading's seconds then say how long the window really was).
         */
        public Reading measure(Runnable op, Runnable synchronize, double minSeconds, long maxRuns) {
            if (op == null) throw new IllegalArgumentException("op is null");
            if (synchronize == null) throw new IllegalArgumentException("synchronize is null");
            if (!(minSeconds >= 0) || Double.isInfinite(minSeconds))
                throw new IllegalArgumentException("minSeconds must be finite and >= 0, got " + minSeconds);
            if (maxRuns < 1) throw new IllegalArgumentException("maxRuns must be >= 1, got " + maxRuns);
            long minNanos = (long) (minSeconds * 1e9);
            synchronize.run();
            start();
            long begin = System.nanoTime();
            long runs = 0;
            boolean finished = false;
            try {
                do {
                    op.run();
                    runs++;
                } while (runs < maxRuns && System.nanoTime() - begin < minNanos);
                synchronize.run();
                finished = true;
            } finally {
                if (!finished) discard();
            }
            return stop().withRepetitions(runs);
        }

        /** Discards a running window and gives NVML back (nvmlShutdown if this was the last meter). Idempotent. */
        @Override
        public synchronized void close() {
            if (closed) return;
            closed = true;
            abandon();
            last = null;
            if (holdsNvml) {
                holdsNvml = false;
                release();
            }
        }

        private synchronized void discard() {
            abandon();
        }

        /** Ends a running window without a reading. Caller holds the lock. */
        private void abandon() {
            Window w = window;
            window = null;
            if (w != null && w.sampler != null) w.sampler.finish();
        }

        private Reading stopCounter(Window w) {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment value = arena.allocate(JAVA_LONG);
                int rc = Lib.energy(device, value);
                double seconds = secondsSince(w.startNanos);
                if (!w.error.isEmpty()) return Reading.unavailable(seconds, 1, method, w.error);
                if (rc != SUCCESS)
                    return Reading.unavailable(seconds, 1, method, "nvmlDeviceGetTotalEnergyConsumption at stop: " + Lib.errorText(rc));
                double joules = EnergyMath.counterJoules(w.startMillijoules, value.get(JAVA_LONG, 0));
                if (Double.isNaN(joules))
                    return Reading.unavailable(seconds, 1, method, "the energy counter went backwards (driver reloaded?)");
                double mhz = Lib.smClock(device, arena.allocate(JAVA_INT));
                return new Reading(joules, seconds, seconds > 0 ? joules / seconds : Double.NaN, mhz, 1, method, "");
            }
        }

        private Reading stopSampler(Window w) {
            Sampler s = w.sampler;
            s.finish();
            s.sampleOnce(); // the trace ends with the window
            double seconds = secondsSince(w.startNanos);
            double watts = s.trace.averageWatts();
            if (Double.isNaN(watts)) {
                String why = s.error.isEmpty() ? "fewer than two power samples" : s.error;
                return Reading.unavailable(seconds, 1, method, why);
            }
            // The samples span the window up to the microseconds of one read; scaling their
            // mean power to the window keeps joules right if a read at either end failed.
            return new Reading(watts * seconds, seconds, watts, s.trace.averageClockMhz(), 1, method, "");
        }

        private static double secondsSince(long startNanos) {
            return (System.nanoTime() - startNanos) * 1e-9;
        }
    }

    private static final class Window {
        final long startNanos;
        long startMillijoules;
        String error = "";
        Sampler sampler;

        Window(long startNanos) {
            this.startNanos = startNanos;
        }
    }

    /**
     * Samples power (and the SM clock) into a trace on its own daemon thread until finished. The
     * trace and error are touched by the starting thread before {@code thread.start()}, by the
     * sampling thread, and by the finishing thread after the join: one at a time, ordered by
     * start and join.
     */
    private static final class Sampler implements Runnable {
        final EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        final Thread thread = Thread.ofPlatform().daemon().name("nvml-power-sampler").unstarted(this);
        private final MemorySegment device;
        private final CountDownLatch done = new CountDownLatch(1);
        String error = "";

        Sampler(MemorySegment device) {
            this.device = device;
        }

        @Override
        public void run() {
            try {
                while (!done.await(SAMPLE_PERIOD_MILLIS, TimeUnit.MILLISECONDS)) sampleOnce();
            } catch (InterruptedException e) {
                // nobody else interrupts this thread; ending is all it can mean
            } catch (RuntimeException | Error e) {
                if (error.isEmpty()) error = "power sampling failed: " + e;
            }
        }

        void sampleOnce() {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment value = arena.allocate(JAVA_INT);
                int rc = Lib.power(device, value);
                long now = System.nanoTime();
                if (rc != SUCCESS) {
                    if (error.isEmpty()) error = "nvmlDeviceGetPowerUsage: " + Lib.errorText(rc);
                    return;
                }
                int milliwatts = value.get(JAVA_INT, 0);
                trace.add(now, milliwatts, Lib.smClock(device, value));
            }
        }

        /** Stops the thread and waits for it (if it was started), keeping the caller's interrupt. */
        void finish() {
            done.countDown();
            if (thread.getState() == Thread.State.NEW) return;
            boolean interrupted = false;
            while (true) {
                try {
                    thread.join();
                    break;
                } catch (InterruptedException e) {
                    interrupted = true; // the thread ends within one sample; wait for it regardless
                }
            }
            if (interrupted) Thread.currentThread().interrupt();
        }
    }

    /**
     * The NVML functions, resolved when first needed; a handle is null where its symbol is missing.
     * Loading a library and binding it are restricted by nature; the warnings say nothing here.
     */
    @SuppressWarnings("restricted")
    private static final class Lib {
        private static final SymbolLookup LOOKUP;
        static final String LOAD_ERROR;

        static {
            SymbolLookup lookup = null;
            String error = "";
            try {
                lookup = SymbolLookup.libraryLookup(LIBRARY, Arena.global());
            } catch (IllegalArgumentException e) {
                error = LIBRARY + " not found (no NVIDIA driver here)";
            } catch (RuntimeException e) { // e.g. native access denied to this module
                error = "loading " + LIBRARY + " failed: " + e;
            }
            LOOKUP = lookup;
            LOAD_ERROR = error;
        }

        static final MethodHandle INIT = find("nvmlInit_v2", FunctionDescriptor.of(JAVA_INT));
        static final MethodHandle SHUTDOWN = find("nvmlShutdown", FunctionDescriptor.of(JAVA_INT));
        static final MethodHandle ERROR_STRING = find("nvmlErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        static final MethodHandle HANDLE_BY_INDEX = find("nvmlDeviceGetHandleByIndex_v2",
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        static final MethodHandle HANDLE_BY_PCI = find("nvmlDeviceGetHandleByPciBusId_v2",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle NAME = find("nvmlDeviceGetName", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT));
        static final MethodHandle ENERGY = find("nvmlDeviceGetTotalEnergyConsumption",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle POWER = find("nvmlDeviceGetPowerUsage", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        static final MethodHandle CLOCK = find("nvmlDeviceGetClockInfo",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));

        private static MethodHandle find(String symbol, FunctionDescriptor descriptor) {
            if (LOOKUP == null) return null;
            return LOOKUP.find(symbol).map(address -> Linker.nativeLinker().downcallHandle(address, descriptor)).orElse(null);
        }

        /** Why NVML cannot be used at all: not loaded, or a function every meter needs is missing; "" otherwise. */
        static String missing() {
            if (!LOAD_ERROR.isEmpty()) return LOAD_ERROR;
            if (INIT == null) return LIBRARY + " has no nvmlInit_v2";
            if (SHUTDOWN == null) return LIBRARY + " has no nvmlShutdown";
            if (HANDLE_BY_INDEX == null) return LIBRARY + " has no nvmlDeviceGetHandleByIndex_v2";
            if (HANDLE_BY_PCI == null) return LIBRARY + " has no nvmlDeviceGetHandleByPciBusId_v2";
            return "";
        }

        /** NVML's text for a return code, with the code. */
        static String errorText(int rc) {
            if (ERROR_STRING == null) return "NVML error " + rc;
            try {
                MemorySegment text = (MemorySegment) ERROR_STRING.invokeExact(rc);
                if (text.equals(MemorySegment.NULL)) return "NVML error " + rc;
                return text.reinterpret(256).getString(0) + " (" + rc + ")";
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        static int init() {
            try {
                return (int) INIT.invokeExact();
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        static void shutdown() {
            try {
                int ignored = (int) SHUTDOWN.invokeExact(); // nothing useful to do if it fails
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        static int handleByIndex(int index, MemorySegment device) {
            try {
                return (int) HANDLE_BY_INDEX.invokeExact(index, device);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        static int handleByPciBusId(MemorySegment busId, MemorySegment device) {
            try {
                return (int) HANDLE_BY_PCI.invokeExact(busId, device);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        /** The device's product name; "" where NVML cannot say. */
        static String name(MemorySegment device, Arena arena) {
            if (NAME == null) return "";
            MemorySegment buffer = arena.allocate(NAME_BUFFER_SIZE);
            try {
                int rc = (int) NAME.invokeExact(device, buffer, NAME_BUFFER_SIZE);
                return rc == SUCCESS ? buffer.getString(0).trim() : "";
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        /** Millijoules into {@code value} (8 bytes); NVML_ERROR_NOT_SUPPORTED where the symbol is missing. */
        static int energy(MemorySegment device, MemorySegment value) {
            if (ENERGY == null) return ERROR_NOT_SUPPORTED;
            try {
                return (int) ENERGY.invokeExact(device, value);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        /** Milliwatts into {@code value} (4 bytes); NVML_ERROR_NOT_SUPPORTED where the symbol is missing. */
        static int power(MemorySegment device, MemorySegment value) {
            if (POWER == null) return ERROR_NOT_SUPPORTED;
            try {
                return (int) POWER.invokeExact(device, value);
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        /** The SM clock in MHz, read through {@code scratch} (4 bytes); NaN where it cannot be read. */
        static double smClock(MemorySegment device, MemorySegment scratch) {
            if (CLOCK == null) return Double.NaN;
            try {
                int rc = (int) CLOCK.invokeExact(device, CLOCK_SM, scratch);
                return rc == SUCCESS ? EnergyMath.unsigned(scratch.get(JAVA_INT, 0)) : Double.NaN;
            } catch (Throwable t) {
                throw rethrow(t);
            }
        }

        /** A downcall throws nothing checked; an Error or RuntimeException passes through as it is. */
        private static RuntimeException rethrow(Throwable t) {
            if (t instanceof RuntimeException r) return r;
            if (t instanceof Error e) throw e;
            return new IllegalStateException(t);
        }
    }
}
