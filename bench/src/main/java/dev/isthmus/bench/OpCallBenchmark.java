package dev.isthmus.bench;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The host cost of one operation call on the CUDA backend: argument checks, the FFM downcall and
 * the kernel launch, on a tiny RMSNorm whose kernel takes less time than the call. {@code launch}
 * returns as soon as the kernel is queued (what an engine pays per op); {@code launchAndWait}
 * adds a stream synchronization (a full round trip).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class OpCallBenchmark {
    private CudaBackend gpu;
    private Tensor x, w, out;
    private int calls;

    @Setup
    public void setUp() {
        gpu = Backend.cuda(0);
        Random random = new Random(1);
        try (Tensor hx = RandomTensors.normal(random, DType.BF16, 1f, 1, 64);
             Tensor hw = RandomTensors.normal(random, DType.BF16, 1f, 64)) {
            x = gpu.copyOf(hx);
            w = gpu.copyOf(hw);
        }
        out = gpu.allocate(DType.BF16, 1, 64);
    }

    @Benchmark
    public void launch() {
        RmsNorm.apply(gpu, out, x, w, 1e-6f);
        // Keep the queue short so the measurement is the call, not back-pressure from a full queue.
        if (++calls % 256 == 0) gpu.synchronize();
    }

    @Benchmark
    public void launchAndWait() {
        RmsNorm.apply(gpu, out, x, w, 1e-6f);
        gpu.synchronize();
    }

    @TearDown
    public void tearDown() {
        out.close();
        w.close();
        x.close();
        gpu.close();
    }
}
