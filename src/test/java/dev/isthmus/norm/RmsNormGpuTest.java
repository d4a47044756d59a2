package dev.isthmus.norm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/**
 * The CUDA kernel against the CPU reference: fresh random inputs of awkward sizes, outputs
 * poisoned with NaN before each launch, relative error within the dtype's bound.
 */
class RmsNormGpuTest {
    private static final DType[] FLOATS = {DType.F32, DType.F16, DType.BF16};
    // Columns below, at and above the 16-byte vector width, odd, prime, and longer than one block covers.
    private static final int[] COLS = {1, 7, 8, 33, 1000, 4096, 5121, 70_000};
    private static final int[] ROWS = {1, 3, 17, 130};

    @GpuTest
    void matchesTheReferenceOnAwkwardShapes() {
        Random random = new Random(11);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS)
                for (int cols : COLS)
                    for (int rows : ROWS) {
                        if ((long) rows * cols > 3_000_000) continue;
                        for (boolean residual : new boolean[] {false, true}) check(gpu, random, dtype, rows, cols, residual);
                    }
        }
    }

    /**
     * Widths at the edges of the register-resident kernel (a row in one warp up to 128 vectors,
     * four vectors a thread up to 1,024 threads) and just past them, into the two-pass kernel:
     * 16-byte vectors (8 elements for f16/bf16, 4 for f32) and element-wise (odd widths).
     */
    /**
     * Enough rows that a block takes several of them in turn, keeping its slice of the weight (on
     * a device of up to 132 SMs: up to 8 rows a block at 8,451 block-wide rows, 4 at 8,451 rows
     * of one warp, four rows a block), the last block short of its rows; under the host
     * emulation, whose device has one SM, the shapes above take several rows a block too.
     */
    @GpuTest
    void blocksOfSeveralRowsKeepingTheWeight() {
        Random random = new Random(15);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16})
                for (int cols : new int[] {100, 520})
                    for (boolean residual : new boolean[] {false, true}) check(gpu, random, dtype, 8451, cols, residual);
        }
    }

    @GpuTest
    void registerTileEdgesAndTheTwoPassFallback() {
        Random random = new Random(14);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : FLOATS) {
                int n = 16 / dtype.byteSize();
                int[] cols = {128 * n, 129 * n, 4096 * n, 4097 * n, 127, 129, 4095, 4097};
                for (int c : cols)
                    for (int rows : new int[] {1, 6})
                        for (boolean residual : new boolean[] {false, true}) check(gpu, random, dtype, rows, c, residual);
            }
        }
    }

    private static void check(CudaBackend gpu, Random random, DType dtype, int rows, int cols, boolean residual) {
        String what = dtype.label() + " (" + rows + ", " + cols + ")" + (residual ? " + residual" : "");
        try (Tensor x = RandomTensors.normal(random, dtype, 2f, rows, cols);
             Tensor r = RandomTensors.normal(random, dtype, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, dtype, 1f, cols);
             Tensor expected = Tensor.allocateHost(dtype, rows, cols);
             Tensor expectedSum = Tensor.allocateHost(dtype, rows, cols);
             Tensor dx = gpu.copyOf(x); Tensor dr = gpu.copyOf(r); Tensor dw = gpu.copyOf(w);
             Tensor out = gpu.allocate(dtype, rows, cols);
             Tensor sum = gpu.allocate(dtype, rows, cols)) {
            gpu.poison(out);
            gpu.poison(sum);
            if (residual) {
                RmsNorm.applyWithResidual(Backend.cpu(), expected, expectedSum, x, r, w, 1e-5f);
                RmsNorm.applyWithResidual(gpu, out, sum, dx, dr, dw, 1e-5f);
            } else {
                RmsNorm.apply(Backend.cpu(), expected, x, w, 1e-5f);
                RmsNorm.apply(gpu, out, dx, dw, 1e-5f);
            }
            try (Tensor actual = gpu.toHost(out)) {
                Compare.Result result = Compare.check(what, actual, expected);
                assertTrue(result.withinBound(), result.toString());
            }
            if (residual) {
                // x + residual is one fp32 add rounded to the dtype on both sides: bit-identical.
                try (Tensor actualSum = gpu.toHost(sum)) {
                    assertArrayEquals(expectedSum.toFloatArray(), actualSum.toFloatArray(), what + ": residualOut");
                }
            }
        }
    }

    @GpuTest
    void inPlaceOnTheDevice() {
        // A warp per row, a block per row, and the two-pass kernel.
        for (int cols : new int[] {264, 4104, 32776}) inPlace(cols);
    }

    private static void inPlace(int cols) {
        Random random = new Random(12);
        int rows = 9;
        try (CudaBackend gpu = Backend.cuda(0);
             Tensor x = RandomTensors.normal(random, DType.BF16, 1f, rows, cols);
             Tensor r = RandomTensors.normal(random, DType.BF16, 1f, rows, cols);
             Tensor w = RandomTensors.normal(random, DType.BF16, 1f, cols);
             Tensor expected = Tensor.allocateHost(DType.BF16, rows, cols);
             Tensor expectedSum = Tensor.allocateHost(DType.BF16, rows, cols);
             Tensor dx = gpu.copyOf(x); Tensor dr = gpu.copyOf(r); Tensor dw = gpu.copyOf(w)) {
            RmsNorm.applyWithResidual(Backend.cpu(), expected, expectedSum, x, r, w, 1e-6f);
            RmsNorm.applyWithResidual(gpu, dx, dr, dx, dr, dw, 1e-6f);
            try (Tensor out = gpu.toHost(dx); Tensor sum = gpu.toHost(dr)) {
                Compare.Result result = Compare.check("in place, cols " + cols, out, expected);
                assertTrue(result.withinBound(), result.toString());
                assertArrayEquals(expectedSum.toFloatArray(), sum.toFloatArray());
            }
        }
    }

    @GpuTest
    void misalignedViewsTakeTheScalarPath() {
        // A view starting one element into its storage is not 16-byte aligned: the launcher must
        // notice and fall back to element-wise access instead of faulting or reading wrong data.
        Random random = new Random(13);
        int rows = 5, cols = 64;
        for (DType dtype : FLOATS) {
            try (CudaBackend gpu = Backend.cuda(0);
                 Tensor x = RandomTensors.normal(random, dtype, 1f, rows, cols);
                 Tensor w = RandomTensors.normal(random, dtype, 1f, cols);
                 Tensor expected = Tensor.allocateHost(dtype, rows, cols);
                 Tensor backing = gpu.allocate(dtype, rows * cols + 1);
                 Tensor outBacking = gpu.allocate(dtype, rows * cols + 1);
                 Tensor dw = gpu.copyOf(w)) {
                Tensor dx = backing.slice(0, 1, rows * cols + 1).reshape(rows, cols);
                Tensor out = outBacking.slice(0, 1, rows * cols + 1).reshape(rows, cols);
                gpu.copy(dx, x);
                gpu.poison(outBacking);
                RmsNorm.apply(Backend.cpu(), expected, x, w, 1e-6f);
                RmsNorm.apply(gpu, out, dx, dw, 1e-6f);
                try (Tensor actual = gpu.toHost(out)) {
                    Compare.Result result = Compare.check(dtype.label() + " misaligned", actual, expected);
                    assertTrue(result.withinBound(), result.toString());
                }
            }
        }
    }
}
