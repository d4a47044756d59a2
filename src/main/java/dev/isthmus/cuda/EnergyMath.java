package dev.isthmus.cuda;

/**
 * The arithmetic of an energy measurement, kept apart from NVML so that it can be checked on
 * made-up numbers: NVML's unsigned counters as Java values, the difference of the energy counter,
 * and the trapezoid integral of sampled power.
 */
final class EnergyMath {
    private EnergyMath() {}

    /** An unsigned 32-bit value (NVML's {@code unsigned int}) as a non-negative long. */
    static long unsigned(int value) {
        return Integer.toUnsignedLong(value);
    }

    /** An unsigned 64-bit value (NVML's {@code unsigned long long}) as the nearest double. */
    static double unsignedToDouble(long value) {
        if (value >= 0) return value;
        // Above 2^63: halve it, keeping the lowest bit so the rounding to 53 bits stays correct,
        // convert the now non-negative long, and double it back (exact).
        return ((value >>> 1) | (value & 1)) * 2.0;
    }

    /**
     * Joules between two readings of NVML's energy counter (millijoules since the driver loaded,
     * unsigned); NaN when the counter went backwards, which means the driver was reloaded between
     * the two readings and the difference says nothing.
     */
    static double counterJoules(long startMillijoules, long stopMillijoules) {
        if (Long.compareUnsigned(stopMillijoules, startMillijoules) < 0) return Double.NaN;
        return unsignedToDouble(stopMillijoules - startMillijoules) / 1000.0;
    }

    /**
     * Power samples folded into a running trapezoid integral as they arrive, so a long window
     * costs no memory. Not thread-safe: one thread adds at a time, hand-overs need a
     * happens-before (a thread start or join).
     */
    static final class PowerTrace {
        private int count;
        private long firstNanos, lastNanos;
        private double lastWatts;
        private double joules;
        private double clockSum;
        private int clockCount;

        /**
         * Adds one sample: when it was taken ({@link System#nanoTime()}), the power in milliwatts
         * exactly as NVML wrote it (an unsigned int), and the SM clock in MHz (NaN when it could
         * not be read, it is then left out of the average). A sample older than the last one
         * is dropped and false returned: it cannot be placed on the trapezoid.
         */
        boolean add(long nanos, int milliwatts, double smClockMhz) {
            if (count > 0 && nanos - lastNanos < 0) return false;
            double watts = unsigned(milliwatts) / 1000.0;
            if (count == 0) firstNanos = nanos;
            else joules += (nanos - lastNanos) * 1e-9 * (watts + lastWatts) / 2;
            lastNanos = nanos;
            lastWatts = watts;
            count++;
            if (!Double.isNaN(smClockMhz)) {
                clockSum += smClockMhz;
                clockCount++;
            }
            return true;
        }

        int count() {
            return count;
        }

        /** Seconds from the first sample to the last; NaN before two samples. */
        double seconds() {
            return count < 2 ? Double.NaN : (lastNanos - firstNanos) * 1e-9;
        }

        /** The trapezoid integral of power over the samples; NaN before two samples. */
        double joules() {
            return count < 2 ? Double.NaN : joules;
        }

        /** The integral over the time it spans; NaN before two samples or when they share one instant. */
        double averageWatts() {
            double s = seconds();
            return s > 0 ? joules / s : Double.NaN;
        }

        /** The mean of the clocks that could be read; NaN when none could. */
        double averageClockMhz() {
            return clockCount == 0 ? Double.NaN : clockSum / clockCount;
        }
    }
}
