package dev.isthmus.bench;

import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
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
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Throughput of the CPU references (the CPU backend), so CPU tests and CPU demos can be sized:
 * RMSNorm over (rows, 4096) and a square GEMM, per call.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class CpuReferenceBenchmark {
    @Param({"64", "1024"})
    public int size;

    private Tensor x, w, out, a, b, c;

    @Setup
    public void setUp() {
        Random random = new Random(2);
        x = RandomTensors.normal(random, DType.BF16, 1f, size, 4096);
        w = RandomTensors.normal(random, DType.BF16, 1f, 4096);
        out = Tensor.allocateHost(DType.BF16, size, 4096);
        int n = Math.min(size, 256);
        a = RandomTensors.normal(random, DType.F32, 1f, n, n);
        b = RandomTensors.normal(random, DType.F32, 1f, n, n);
        c = Tensor.allocateHost(DType.F32, n, n);
    }

    @Benchmark
    public Tensor rmsnorm() {
        RmsNorm.apply(Backend.cpu(), out, x, w, 1e-6f);
        return out;
    }

    @Benchmark
    public Tensor gemm() {
        Gemm.matmul(Backend.cpu(), c, a, b, 1f, 0f);
        return c;
    }

    @TearDown
    public void tearDown() {
        for (Tensor t : new Tensor[] {x, w, out, a, b, c}) t.close();
    }
}
