package dev.isthmus.scan;

import java.util.HashSet;
import java.util.Set;

/** The host-side checks of packed sequence starts and of state slots, shared by the Mamba-1 and Mamba-2 scans. */
public final class SequenceChecks {
    private SequenceChecks() {}

    /** seqStarts begins at 0, ends at L and never decreases (empty sequences allowed). */
    public static void starts(long[] starts, long length) {
        if (starts[0] != 0) throw new IllegalArgumentException("seqStarts must begin at 0, begins at " + starts[0]);
        if (starts[starts.length - 1] != length)
            throw new IllegalArgumentException("seqStarts must end at L = " + length + ", ends at " + starts[starts.length - 1]);
        for (int i = 1; i < starts.length; i++)
            if (starts[i] < starts[i - 1])
                throw new IllegalArgumentException("seqStarts must not decrease: seqStarts[" + i + "] = " + starts[i] + " < " + starts[i - 1]);
    }

    /** Each non-negative slot is below the pool and named once (a negative one is a padding row). */
    public static void slots(long[] slots, long pool) {
        Set<Long> used = new HashSet<>(); // by value: the pool may be larger than an array
        for (int r = 0; r < slots.length; r++) {
            long slot = slots[r];
            if (slot < 0) continue;
            if (slot >= pool) throw new IllegalArgumentException("slots[" + r + "] = " + slot + " is out of range for a state pool of " + pool);
            if (!used.add(slot)) throw new IllegalArgumentException("slots has slot " + slot + " twice (at row " + r + ")");
        }
    }
}
