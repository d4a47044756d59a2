package dev.isthmus.random;

import static dev.isthmus.testing.DeviceAssert.assertClose;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;

/** The CUDA random fill against the CPU one: uniform bit for bit, normal within f32 rounding; outputs poisoned first. */
class RandomFillGpuTest {
    @GpuTest
    void theDeviceDrawsWhatTheHostDraws() {
        try (CudaBackend gpu = Backend.cuda(0)) {
            for (DType dtype : new DType[] {DType.F32, DType.F16, DType.BF16})
                for (long count : new long[] {1, 255, 1_048_577 + 3}) {
                    long seed = count * 31 + dtype.code();
                    try (Tensor out = gpu.allocate(dtype, count); Tensor expected = Tensor.allocateHost(dtype, count)) {
                        gpu.poison(out);
                        RandomFill.uniform(gpu, out, seed, -2f, 0.5f);
                        RandomFill.uniform(Backend.cpu(), expected, seed, -2f, 0.5f);
                        assertClose("uniform " + dtype + " x " + count, gpu, out, expected, 0);
                        gpu.poison(out);
                        RandomFill.normal(gpu, out, seed, 1f, 3f);
                        RandomFill.normal(Backend.cpu(), expected, seed, 1f, 3f);
                        // logf and cosf on the device are within 2 ulp; a value rounding to the
                        // other side of an f16/bf16 step is one step off.
                        assertClose("normal " + dtype + " x " + count, gpu, out, expected, dtype == DType.F32 ? 1e-6 : dev.isthmus.tensor.Compare.boundFor(dtype));
                    }
                }
            try (Tensor empty = gpu.allocate(DType.F32, 0)) {
                RandomFill.normal(gpu, empty, 1, 0f, 1f);
            }
        }
    }
}
