package dev.isthmus.bench;

import dev.isthmus.cuda.Cuda;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * `make bench`: the JMH benchmarks that can run here (the CUDA ones only with a device), ending
 * with JMH's result table. `gpu OUTDIR` runs the GPU kernel benchmarks instead ({@link GpuBench});
 * `speculative-cpu` prints speculative against plain decoding on the CPU backend ({@link SpeculativeBench}).
 */
public final class BenchMain {
    public static void main(String[] args) throws RunnerException, java.io.IOException {
        if (args.length > 0 && args[0].equals("gpu")) {
            GpuBench.main(java.util.Arrays.copyOfRange(args, 1, args.length));
            return;
        }
        if (args.length > 0 && args[0].equals("speculative-cpu")) {
            // Small enough for the plain-Java references: width 256, 4 layers, vocabulary 2048.
            SpeculativeBench.print("speculative on " + dev.isthmus.backend.Backend.cpu().describe() + ", random llama width 256, 4 layers, f32, "
                    + "batch 1, prompt 64, 48 tokens", SpeculativeBench.measure(dev.isthmus.backend.Backend.cpu(),
                    dev.isthmus.model.ModelConfig.llama(2048, 256, 4, 2, 768), dev.isthmus.tensor.DType.F32, 64, 48));
            return;
        }
        ChainedOptionsBuilder options = new OptionsBuilder().include(CpuReferenceBenchmark.class.getSimpleName());
        Cuda.Availability cuda = Cuda.availability();
        if (cuda.available()) {
            options.include(OpCallBenchmark.class.getSimpleName());
        } else {
            System.out.println("CUDA benchmarks skipped: " + cuda.reason());
        }
        new Runner(options.build()).run();
    }
}
