package dev.isthmus.attention;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaGraph;
import dev.isthmus.cuda.HostEmulation;
import dev.isthmus.cuda.NativeLibrary;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuTest;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.stream.IntStream;

/**
 * The tensor-core prefill (f16, 40 new tokens, head_dim 128: more than the default 48 KiB of
 * shared memory) captured in a CUDA graph replays what a direct launch gives; the launcher reads
 * the device's shared-memory limit and opts the kernel in once per device, so neither a replay nor
 * a later launch calls cudaDeviceGetAttribute or cudaFuncSetAttribute again (counted by the host
 * emulation; on a GPU only the replay is checked).
 */
class PrefillGraphGpuTest {
    @GpuTest
    void aCapturedPrefillReplaysTheDirectLaunchAndSetsItsAttributesOnce() throws Throwable {
        Random random = new Random(45);
        int d = 128, qHeads = 4, kvHeads = 2, n = 40, block = 16, blocks = 3;
        DType dtype = DType.F16;
        try (CudaBackend gpu = Backend.cuda(0);
             Tensor keys = RandomTensors.normal(random, dtype, 1f, blocks, block, kvHeads, d);
             Tensor values = RandomTensors.normal(random, dtype, 1f, blocks, block, kvHeads, d);
             Tensor hq = RandomTensors.normal(random, dtype, 1f, n, qHeads, d);
             Tensor dKeys = gpu.copyOf(keys); Tensor dValues = gpu.copyOf(values); Tensor q = gpu.copyOf(hq);
             Tensor direct = gpu.allocate(dtype, n, qHeads, d); Tensor replayed = gpu.allocate(dtype, n, qHeads, d);
             KvBatch batch = KvBatch.of(gpu, dKeys, dValues, new int[][] {IntStream.range(0, blocks).toArray()},
                     new int[] {0}, new int[] {n})) {
            AttentionOptions options = AttentionOptions.decoder();
            Attention.attend(gpu, batch, q, direct, null, options, null); // the first launch on the device sets up
            long before = attributeCalls();
            gpu.poison(replayed);
            try (CudaGraph graph = CudaGraph.capture(gpu.stream(), () -> Attention.attend(gpu, batch, q, replayed, null, options, null))) {
                graph.launch();
                graph.launch();
            }
            Attention.attend(gpu, batch, q, direct, null, options, null);
            float[] expected = floats(gpu, direct), actual = floats(gpu, replayed);
            for (float v : actual) assertTrue(Float.isFinite(v), "the replay wrote every output");
            assertArrayEquals(expected, actual, "the replay gives the direct launch's output");
            assertEquals(before, attributeCalls(), "attribute calls after the first launch on the device");
        }
    }

    private static float[] floats(CudaBackend gpu, Tensor t) {
        try (Tensor host = gpu.toHost(t)) {
            return host.toFloatArray();
        }
    }

    /** The emulated runtime's count of attribute calls; 0 on a GPU, where they cannot be counted. */
    private static long attributeCalls() throws Throwable {
        if (!HostEmulation.enabled()) return 0;
        return (long) NativeLibrary.downcall("isthmus_emulation_attribute_calls", FunctionDescriptor.of(ValueLayout.JAVA_LONG))
                .invokeExact();
    }
}
