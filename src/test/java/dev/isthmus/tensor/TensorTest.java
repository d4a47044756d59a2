package dev.isthmus.tensor;

import static dev.isthmus.testing.Expect.illegalArgument;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

/** Shapes, strides, views, ownership, element access and conversions of host tensors. */
class TensorTest {

    @Test
    void allocationIsZeroedContiguousAndDescribesItself() {
        try (Tensor t = Tensor.allocateHost(DType.BF16, 2, 3, 4)) {
            assertArrayEquals(new long[] {2, 3, 4}, t.shape());
            assertArrayEquals(new long[] {12, 4, 1}, t.strides());
            assertEquals(24, t.elementCount());
            assertEquals(48, t.byteSize());
            assertEquals(3, t.rank());
            assertEquals(4, t.dim(-1));
            assertTrue(t.isContiguous() && t.isOwner() && t.isHost());
            for (float v : t.toFloatArray()) assertEquals(0f, v);
            assertEquals("Tensor[bf16, (2, 3, 4), cpu, [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, ...]]", t.toString());
        }
    }

    @Test
    void sliceIsAStridedViewOfTheSameStorage() {
        try (Tensor t = Tensor.fromFloats(DType.F32, range(12), 3, 4)) {
            Tensor columns = t.slice(1, 1, 3);
            assertArrayEquals(new long[] {3, 2}, columns.shape());
            assertFalse(columns.isContiguous());
            assertFalse(columns.isOwner());
            assertArrayEquals(new float[] {1, 2, 5, 6, 9, 10}, columns.toFloatArray());
            columns.setFloat(-7f, 2, 1);
            assertEquals(-7f, t.getFloat(2, 2), "a view writes through to its storage");
            assertTrue(columns.toString().contains("strides=[4, 1]") && columns.toString().contains("view"), columns.toString());
            Tensor rows = t.slice(0, 1, 2);
            assertTrue(rows.isContiguous());
            assertEquals(t.address() + 16, rows.address());
            illegalArgument("out of range", () -> t.slice(1, 2, 5));
            illegalArgument("out of range", () -> t.slice(2, 0, 1));
        }
    }

    @Test
    void reshapeInfersOneDimensionAndNeedsContiguousData() {
        try (Tensor t = Tensor.fromFloats(DType.F16, range(24), 2, 3, 4)) {
            Tensor r = t.reshape(6, -1);
            assertArrayEquals(new long[] {6, 4}, r.shape());
            assertArrayEquals(t.toFloatArray(), r.toFloatArray());
            illegalArgument("only one dimension may be -1", () -> t.reshape(-1, -1));
            illegalArgument("has 24 elements", () -> t.reshape(5, 5));
            illegalArgument("cannot infer", () -> t.reshape(7, -1));
            illegalArgument("contiguous", () -> t.slice(2, 0, 2).reshape(12));
        }
    }

    @Test
    void aViewNeverFreesAndAClosedTensorIsRejectedNotACrash() {
        Tensor owner = Tensor.fromFloats(DType.F32, range(8), 8);
        Tensor view = owner.slice(0, 2, 6);
        view.close();
        assertFalse(owner.isClosed(), "closing a view must not free the storage");
        assertEquals(3f, owner.getFloat(3));
        owner.close();
        owner.close(); // idempotent
        assertTrue(view.isClosed());
        illegalArgument("closed", () -> view.getFloat(0));
        illegalArgument("closed", owner::toFloatArray);
        illegalArgument("closed", owner::address);
        illegalArgument("closed", owner::segment);
        assertTrue(owner.toString().endsWith("closed]"), owner.toString());
    }

    @Test
    void wrappedHostMemoryIsBorrowed() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment memory = arena.allocate(4 * 6, 64);
            Tensor t = Tensor.wrapHost(memory, DType.I32, 2, 3);
            t.setLong(41, 1, 2);
            t.close();
            assertEquals(41, memory.getAtIndex(java.lang.foreign.ValueLayout.JAVA_INT, 5), "still readable: not freed");
            illegalArgument("needs", () -> Tensor.wrapHost(memory, DType.I64, 2, 3));
        }
        illegalArgument("native", () -> Tensor.wrapHost(MemorySegment.ofArray(new byte[8]), DType.I8, 8));
    }

    @Test
    void elementAccessChecksIndexAndDtype() {
        try (Tensor f = Tensor.allocateHost(DType.BF16, 2, 2); Tensor i = Tensor.allocateHost(DType.I8, 3)) {
            f.setFloat(1.00390625f, 0, 1); // 1 + 2^-8: a tie between bf16 1 and 1 + 2^-7, to even
            assertEquals(1f, f.getFloat(0, 1));
            illegalArgument("out of bounds", () -> f.getFloat(2, 0));
            illegalArgument("rank", () -> f.getFloat(0));
            illegalArgument("use getFloat", () -> f.getLong(0, 0));
            illegalArgument("use setLong", () -> i.setFloat(1f, 0));
            illegalArgument("does not fit in i8", () -> i.setLong(200, 0));
            illegalArgument("4 values for 3", () -> i.copyFrom(new long[4]));
        }
        illegalArgument("negative dimension", () -> Tensor.allocateHost(DType.F32, 2, -1));
        illegalArgument("unknown dtype", () -> DType.parse("f8"));
    }

    @Test
    void conversionBetweenFloatTypesRoundsOnceAndIntegersStayExact() {
        float[] values = {1.1f, -2.5f, 65504f, 1e-8f, 3.14159f};
        try (Tensor f32 = Tensor.fromFloats(DType.F32, values, 5);
             Tensor bf16 = f32.to(DType.BF16);
             Tensor f16 = f32.to(DType.F16);
             Tensor ints = Tensor.fromLongs(DType.I64, new long[] {-3, 1L << 40}, 2);
             Tensor small = Tensor.fromLongs(DType.I64, new long[] {-3, 7}, 2);
             Tensor narrowed = small.to(DType.I32)) {
            for (int k = 0; k < values.length; k++) {
                assertEquals(FloatFormats.roundTo(DType.BF16, values[k]), bf16.getFloat(k));
                assertEquals(FloatFormats.roundTo(DType.F16, values[k]), f16.getFloat(k));
            }
            assertArrayEquals(new long[] {-3, 1L << 40}, ints.toLongArray());
            assertArrayEquals(new long[] {-3, 7}, narrowed.toLongArray());
            illegalArgument("does not fit in i32", () -> ints.to(DType.I32));
            illegalArgument("no conversion", () -> ints.to(DType.F32));
        }
    }

    private static float[] range(int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = i;
        return v;
    }
}
