package dev.isthmus.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.math.BigInteger;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Energy readings through NVML: without it every reading is NaN with a reason and nothing
 * throws; calls in any order are safe; and the arithmetic (trapezoid rule, counter difference,
 * NVML's unsigned values) gives known answers on made-up samples.
 */
class NvmlTest {
    private static final long MS = 1_000_000;

    // ---- the meter, with or without NVML --------------------------------------------------------

    @Test
    void withoutNvmlEveryReadingIsEmptyAndSaysWhy() {
        Nvml.Availability nvml = Nvml.availability();
        assumeFalse(nvml.available(), "NVML is usable here");
        assertTrue(nvml.reason().contains(Nvml.LIBRARY) || nvml.reason().startsWith("nvmlInit_v2: "), nvml.reason());
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            assertFalse(meter.available());
            assertEquals(nvml.reason(), meter.unavailableReason());
            assertEquals("none", meter.method());
            meter.start();
            Nvml.Reading r = meter.stop();
            assertFalse(r.available());
            assertEquals(nvml.reason(), r.unavailableReason());
            assertTrue(Double.isNaN(r.joules()) && Double.isNaN(r.averageWatts()) && Double.isNaN(r.smClockMhz()), r.toString());
            assertTrue(Double.isNaN(r.joulesPerRepetition()));
            assertTrue(r.seconds() >= 0, "the window's wall time is still known: " + r);
            assertEquals(1, r.repetitions());
        }
    }

    @Test
    void callsInAnyOrderAreSafe() {
        Nvml.EnergyMeter meter = Nvml.meter(0);
        Nvml.Reading early = meter.stop();
        assertFalse(early.available());
        assertEquals("stop() without start()", early.unavailableReason());

        meter.start();
        meter.start(); // discards the first window
        Nvml.Reading first = meter.stop();
        assertSame(first, meter.stop(), "a second stop returns the last reading again");
        assertEquals(1, first.repetitions());
        assertEquals(meter.unavailableReason(), first.unavailableReason());

        meter.start();
        meter.close(); // discards the running window
        meter.close();
        meter.start(); // nothing, once closed
        Nvml.Reading closed = meter.stop();
        assertFalse(closed.available());
        assertEquals("the meter is closed", closed.unavailableReason());
        assertNoSamplerThread();
    }

    @Test
    void aCappedWindowStopsAtItsRunCount() {
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            int[] runs = {0};
            Nvml.Reading r = meter.measure(() -> runs[0]++, () -> {}, 60, 3);
            assertEquals(3, runs[0]);
            assertEquals(3, r.repetitions());
        }
    }

    @Test
    void programmerErrorsThrow() {
        assertThrows(IllegalArgumentException.class, () -> Nvml.meter(-1));
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            assertThrows(IllegalArgumentException.class, () -> meter.measure(null, () -> {}, 0.1));
            assertThrows(IllegalArgumentException.class, () -> meter.measure(() -> {}, null, 0.1));
            assertThrows(IllegalArgumentException.class, () -> meter.measure(() -> {}, () -> {}, 0.1, 0));
            assertThrows(IllegalArgumentException.class, () -> meter.measure(() -> {}, () -> {}, -1));
            assertThrows(IllegalArgumentException.class, () -> meter.measure(() -> {}, () -> {}, Double.NaN));
            assertThrows(IllegalArgumentException.class, () -> meter.measure(() -> {}, () -> {}, Double.POSITIVE_INFINITY));
        }
    }

    @Test
    void measureRepeatsUntilTheWindowIsLongAndSynchronizesAround() {
        AtomicInteger runs = new AtomicInteger(), syncs = new AtomicInteger();
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            Nvml.Reading r = meter.measure(() -> {
                runs.incrementAndGet();
                sleep(5);
            }, syncs::incrementAndGet, 0.06);
            assertEquals(runs.get(), r.repetitions());
            assertTrue(r.repetitions() >= 2 && r.repetitions() <= 12, "runs of 5 ms in 60 ms: " + r.repetitions());
            assertTrue(r.seconds() >= 0.06, r.toString());
            assertEquals(2, syncs.get(), "once before the window, once at its end");
            assertEquals(meter.available(), r.available(), r.toString());

            runs.set(0);
            assertEquals(1, meter.measure(runs::incrementAndGet, () -> {}, 0).repetitions(), "at least one run");
            assertEquals(1, runs.get());
        }
    }

    @Test
    void aFailingOperationDiscardsTheWindowAndPassesThrough() {
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> meter.measure(() -> { throw new IllegalStateException("kernel failed"); }, () -> {}, 0.05));
            assertEquals("kernel failed", e.getMessage());
            assertNoSamplerThread();
            assertEquals("stop() without start()", meter.stop().unavailableReason());
            meter.start();
            assertEquals(meter.available(), meter.stop().available(), "usable afterwards");
        }
    }

    @Test
    void withNvmlAWindowHasPlausibleEnergy() {
        assumeTrue(Nvml.availability().available(), "no NVML: " + Nvml.availability().reason());
        try (Nvml.EnergyMeter meter = Nvml.meter(0)) {
            assumeTrue(meter.available(), "device 0: " + meter.unavailableReason());
            assertFalse(meter.device().isBlank());
            Nvml.Reading r = meter.measure(() -> sleep(20), () -> {}, 0.3);
            assertTrue(r.available(), r.unavailableReason());
            assertEquals(meter.method(), r.method());
            assertTrue(r.seconds() >= 0.3, r.toString());
            // Even an idle board draws some watts, and none draws kilowatts.
            assertTrue(r.averageWatts() > 1 && r.averageWatts() < 2000, r.toString());
            assertEquals(r.averageWatts() * r.seconds(), r.joules(), 1e-9 * r.joules() + 1e-12);
            assertTrue(Double.isNaN(r.smClockMhz()) || r.smClockMhz() >= 0, r.toString());
        }
        assertNoSamplerThread();
    }

    // ---- the arithmetic, on made-up samples ------------------------------------------------------

    @Test
    void constantPowerIntegratesToPowerTimesTime() {
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        for (int i = 0; i <= 100; i++) assertTrue(trace.add(i * 10 * MS, 250_000, 1980));
        assertEquals(101, trace.count());
        assertEquals(1.0, trace.seconds(), 1e-12);
        assertEquals(250.0, trace.joules(), 1e-9);
        assertEquals(250.0, trace.averageWatts(), 1e-9);
        assertEquals(1980.0, trace.averageClockMhz(), 1e-9);
    }

    @Test
    void aRampIsExactAtUnevenSpacing() {
        // 0 W at t = 0 rising to 100 W at t = 2 s: 100 J, whatever the sample times.
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        long[] millis = {0, 3, 17, 18, 250, 900, 901, 1500, 1999, 2000};
        for (long t : millis) trace.add(t * MS, (int) (t * 50), Double.NaN); // 50 mW per ms = 50 W per s
        assertEquals(100.0, trace.joules(), 1e-9);
        assertEquals(50.0, trace.averageWatts(), 1e-9);
        assertTrue(Double.isNaN(trace.averageClockMhz()), "no clock was read");
    }

    @Test
    void aStepIsSplitBetweenItsSamples() {
        // 100 W, then 300 W sampled 1 s later: the trapezoid credits 200 W to the second between.
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        trace.add(0, 100_000, 1000);
        trace.add(1000 * MS, 300_000, Double.NaN);
        trace.add(2000 * MS, 300_000, 2000);
        assertEquals(200.0 + 300.0, trace.joules(), 1e-9);
        assertEquals(1500.0, trace.averageClockMhz(), 1e-9, "NaN clocks are left out");
    }

    @Test
    void fewSamplesOrBackwardTimesGiveNoNumbers() {
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        assertTrue(Double.isNaN(trace.joules()) && Double.isNaN(trace.seconds()) && Double.isNaN(trace.averageWatts()));
        trace.add(50 * MS, 100_000, Double.NaN);
        assertTrue(Double.isNaN(trace.joules()), "one sample spans no time");
        assertFalse(trace.add(40 * MS, 900_000, Double.NaN), "an older sample is dropped");
        assertEquals(1, trace.count());
        trace.add(50 * MS, 100_000, Double.NaN);
        assertEquals(0.0, trace.joules());
        assertTrue(Double.isNaN(trace.averageWatts()), "two samples at one instant have no average");
    }

    @Test
    void nanoTimeMayWrapAround() {
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        trace.add(Long.MAX_VALUE - 5 * MS + 1, 100_000, Double.NaN);
        trace.add(Long.MIN_VALUE + 5 * MS, 100_000, Double.NaN); // 10 ms later
        assertEquals(0.010, trace.seconds(), 1e-12);
        assertEquals(1.0, trace.joules(), 1e-9);
    }

    @Test
    void milliwattsAbove2To31AreUnsigned() {
        int threeKilowatts = (int) 3_000_000_000L; // negative as a Java int
        assertTrue(threeKilowatts < 0);
        assertEquals(3_000_000_000L, EnergyMath.unsigned(threeKilowatts));
        assertEquals(4_294_967_295L, EnergyMath.unsigned(-1));
        EnergyMath.PowerTrace trace = new EnergyMath.PowerTrace();
        trace.add(0, threeKilowatts, Double.NaN);
        trace.add(1000 * MS, threeKilowatts, Double.NaN);
        assertEquals(3_000_000.0, trace.joules(), 1e-6);
    }

    @Test
    void unsignedLongsConvertToTheNearestDouble() {
        assertEquals(Math.pow(2, 63), EnergyMath.unsignedToDouble(Long.MIN_VALUE));
        assertEquals(Math.pow(2, 64), EnergyMath.unsignedToDouble(-1L)); // 2^64 - 1 rounds up
        assertEquals(12345.0, EnergyMath.unsignedToDouble(12345));
        Random random = new Random(7);
        for (int i = 0; i < 10_000; i++) {
            long v = random.nextLong() | Long.MIN_VALUE;
            if (i % 3 == 0) v = Long.MIN_VALUE | (v & 0xFFF); // near 2^63, where halving must keep the low bit
            double exact = new BigInteger(Long.toUnsignedString(v)).doubleValue();
            assertEquals(exact, EnergyMath.unsignedToDouble(v), Long.toUnsignedString(v));
        }
    }

    @Test
    void theEnergyCounterDifferenceIsUnsigned() {
        assertEquals(1.5, EnergyMath.counterJoules(1000, 2500), 1e-12);
        assertEquals(0.0, EnergyMath.counterJoules(7, 7));
        long start = Long.MAX_VALUE - 499; // the counter passing 2^63 during the window
        assertEquals(1.5, EnergyMath.counterJoules(start, start + 1500), 1e-12);
        assertEquals(0.002, EnergyMath.counterJoules(-3L, -1L), 1e-15); // near 2^64
        assertTrue(Double.isNaN(EnergyMath.counterJoules(-1L, 5)), "backwards: the driver was reloaded");
        assertTrue(Double.isNaN(EnergyMath.counterJoules(2500, 1000)));
        // A difference of more than 2^63 mJ stays positive.
        assertEquals(Math.pow(2, 63) / 1000, EnergyMath.counterJoules(0, Long.MIN_VALUE), 1e3);
    }

    // ---- helpers ---------------------------------------------------------------------------------

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void assertNoSamplerThread() {
        for (Thread t : Thread.getAllStackTraces().keySet())
            assertFalse(t.getName().equals("nvml-power-sampler") && t.isAlive(), "a sampler thread outlived its window");
    }
}
