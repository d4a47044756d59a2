package dev.isthmus.model;

import static dev.isthmus.testing.DeviceAssert.assertClose;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.util.Random;

/** The CUDA element-wise kernels against their CPU references, on awkward sizes, outputs poisoned first. */
class ElementwiseGpuTest {
    static final DType[] DTYPES = {DType.F32, DType.F16, DType.BF16};

    @GpuTest
    void embeddingMatchesTheReference() {
        Random random = new Random(3);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : DTYPES)
                for (int[] shape : new int[][] {{1, 1, 1}, {7, 33, 5}, {70_001, 1000, 129}}) {
                    long[] ids = random.longs(shape[0], 0, shape[1]).toArray();
                    try (Tensor table = RandomTensors.normal(random, dtype, 1f, shape[1], shape[2]);
                         Tensor hostIds = Tensor.fromLongs(DType.I32, ids, shape[0]);
                         Tensor expected = Tensor.allocateHost(dtype, shape[0], shape[2]);
                         Tensor dTable = gpu.copyOf(table); Tensor dIds = gpu.copyOf(hostIds);
                         Tensor out = gpu.allocate(dtype, shape[0], shape[2])) {
                        Elementwise.embedding(Backend.cpu(), expected, table, hostIds);
                        gpu.poison(out);
                        Elementwise.embedding(gpu, out, dTable, dIds);
                        assertClose("embedding " + dtype, gpu, out, expected, 0);
                    }
                }
        }
    }

    /** Rows with a planted tie at the maximum (the later copy must lose), NaNs, and widths around the block's 256 threads. */
    @GpuTest
    void argmaxMatchesTheHostSamplerExactly() {
        Random random = new Random(5);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (int[] shape : new int[][] {{1, 1}, {3, 255}, {4, 257}, {2, 50_257}, {33, 1000}}) {
                int rows = shape[0], cols = shape[1];
                float[] values = new float[rows * cols];
                for (int i = 0; i < values.length; i++) values[i] = (float) random.nextGaussian();
                for (int r = 0; r < rows; r++) {
                    int a = random.nextInt(cols), b = random.nextInt(cols);
                    values[r * cols + a] = values[r * cols + b] = 9f + r;
                    if (cols > 2) values[r * cols + random.nextInt(cols)] = Float.NaN;
                }
                try (Tensor logits = Tensor.fromFloats(DType.F32, values, rows, cols);
                     Tensor expected = Tensor.allocateHost(DType.I32, rows);
                     Tensor dLogits = gpu.copyOf(logits); Tensor out = gpu.allocate(DType.I32, rows)) {
                    Elementwise.argmax(Backend.cpu(), expected, logits);
                    gpu.poison(out);
                    Elementwise.argmax(gpu, out, dLogits);
                    try (Tensor actual = gpu.toHost(out)) {
                        org.junit.jupiter.api.Assertions.assertArrayEquals(expected.toLongArray(), actual.toLongArray(),
                                "argmax " + rows + " x " + cols);
                    }
                }
            }
        }
    }

    @GpuTest
    void addBiasAndSiluMulMatchTheReference() {
        Random random = new Random(4);
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : DTYPES)
                for (int[] shape : new int[][] {{1, 1}, {3, 7}, {33, 5121}}) {
                    try (Tensor x = RandomTensors.normal(random, dtype, 2f, shape[0], shape[1]);
                         Tensor y = RandomTensors.normal(random, dtype, 2f, shape[0], shape[1]);
                         Tensor bias = RandomTensors.normal(random, dtype, 1f, shape[1]);
                         Tensor expected = Tensor.allocateHost(dtype, shape[0], shape[1]);
                         Tensor dx = gpu.copyOf(x); Tensor dy = gpu.copyOf(y); Tensor dBias = gpu.copyOf(bias);
                         Tensor out = gpu.allocate(dtype, shape[0], shape[1])) {
                        Elementwise.addBias(Backend.cpu(), expected, x, bias);
                        gpu.poison(out);
                        Elementwise.addBias(gpu, out, dx, dBias);
                        assertClose("addBias " + dtype, gpu, out, expected, Compare.boundFor(dtype));
                        Elementwise.siluMul(Backend.cpu(), expected, x, y);
                        gpu.poison(out);
                        Elementwise.siluMul(gpu, out, dx, dy);
                        assertClose("siluMul " + dtype, gpu, out, expected, Compare.boundFor(dtype));
                    }
                }
        }
    }
}
