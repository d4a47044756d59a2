package dev.isthmus.cuda;

import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;

/** What a kernel launcher needs to know about a device (isthmus_device_properties in isthmus.h). */
public record DeviceProperties(int ordinal, String name, int computeMajor, int computeMinor, int multiprocessorCount,
                               int maxThreadsPerBlock, long totalGlobalMemory, long sharedMemoryPerBlockOptin,
                               long l2CacheSize, int warpSize, int memoryBusWidth) {

    static final StructLayout LAYOUT = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(256, ValueLayout.JAVA_BYTE).withName("name"),
            ValueLayout.JAVA_INT.withName("compute_major"),
            ValueLayout.JAVA_INT.withName("compute_minor"),
            ValueLayout.JAVA_INT.withName("multiprocessor_count"),
            ValueLayout.JAVA_INT.withName("max_threads_per_block"),
            ValueLayout.JAVA_LONG.withName("total_global_memory"),
            ValueLayout.JAVA_LONG.withName("shared_memory_per_block_optin"),
            ValueLayout.JAVA_LONG.withName("l2_cache_size"),
            ValueLayout.JAVA_INT.withName("warp_size"),
            ValueLayout.JAVA_INT.withName("memory_bus_width"));

    static DeviceProperties read(MemorySegment s, int ordinal) {
        return new DeviceProperties(ordinal, s.getString(0),
                s.get(ValueLayout.JAVA_INT, offset("compute_major")),
                s.get(ValueLayout.JAVA_INT, offset("compute_minor")),
                s.get(ValueLayout.JAVA_INT, offset("multiprocessor_count")),
                s.get(ValueLayout.JAVA_INT, offset("max_threads_per_block")),
                s.get(ValueLayout.JAVA_LONG, offset("total_global_memory")),
                s.get(ValueLayout.JAVA_LONG, offset("shared_memory_per_block_optin")),
                s.get(ValueLayout.JAVA_LONG, offset("l2_cache_size")),
                s.get(ValueLayout.JAVA_INT, offset("warp_size")),
                s.get(ValueLayout.JAVA_INT, offset("memory_bus_width")));
    }

    private static long offset(String field) {
        return LAYOUT.byteOffset(MemoryLayout.PathElement.groupElement(field));
    }

    /** "sm_90" style name of the compute capability. */
    public String smName() {
        return "sm_" + computeMajor + computeMinor;
    }

    @Override
    public String toString() {
        return String.format("cuda:%d %s (%s, %d SMs, %.1f GiB, L2 %d MiB, %d KiB shared/block)", ordinal, name, smName(),
                multiprocessorCount, totalGlobalMemory / (double) (1L << 30), l2CacheSize >> 20, sharedMemoryPerBlockOptin >> 10);
    }
}
