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
