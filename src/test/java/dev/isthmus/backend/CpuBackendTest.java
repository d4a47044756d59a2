package dev.isthmus.backend;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Device;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The CPU backend's memory operations and their argument checks. */
class CpuBackendTest {
    private final CpuBackend cpu = Backend.cpu();

    @Test
    void copyOfAStridedViewIsContiguousWithTheSameValues() {
        try (Tensor t = RandomTensors.normal(new Random(3), DType.F32, 1f, 5, 6)) {
            Tensor columns = t.slice(1, 2, 5);
            try (Tensor copy = cpu.copyOf(columns); Tensor back = cpu.toHost(copy)) {
                assertTrue(copy.isContiguous() && copy.isOwner());
                assertArrayEquals(columns.toFloatArray(), back.toFloatArray());
            }
        }
    }

    @Test
    void poisonMakesEveryFloatNaNAndEveryIntegerMinusOne() {
        for (DType dtype : DType.values()) {
            try (Tensor t = cpu.allocate(dtype, 7)) {
                cpu.poison(t);
                if (dtype.isFloatingPoint()) for (float v : t.toFloatArray()) assertTrue(Float.isNaN(v), dtype.label());
                else for (long v : t.toLongArray()) assertEquals(-1, v, dtype.label());
            }
        }
    }

    @Test
    void copyRejectsMismatchesClosedTensorsAndDeviceTensors() {
        try (Tensor a = cpu.allocate(DType.F32, 4); Tensor b = cpu.allocate(DType.F16, 4); Tensor c = cpu.allocate(DType.F32, 5)) {
            illegalArgument("differ in dtype or shape", () -> cpu.copy(a, b));
            illegalArgument("differ in dtype or shape", () -> cpu.copy(a, c));
            illegalArgument("dst is null", () -> cpu.copy(null, a));
            Tensor closed = cpu.allocate(DType.F32, 4);
            closed.close();
            illegalArgument("src is closed", () -> cpu.copy(a, closed));
            illegalArgument("contiguous", () -> cpu.poison(cpu.allocate(DType.F32, 2, 2).slice(1, 0, 1)));
        }
        // Device memory that was never touched: Storage.device only records the address, so the
        // check must refuse it before anything dereferences it.
        try (Tensor onGpu = Tensor.of(dev.isthmus.tensor.Storage.device(Device.cuda(0), 4096, 16, null), DType.F32, 4);
             Tensor host = cpu.allocate(DType.F32, 4)) {
            illegalArgument("cuda:0", () -> cpu.copy(host, onGpu));
        }
    }
}
