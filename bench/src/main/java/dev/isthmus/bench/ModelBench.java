package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.cuda.Nvml;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.ModelConfig;
import dev.isthmus.model.Session;
import dev.isthmus.tensor.DType;
import java.util.Arrays;
import java.util.Locale;

/**
 * The generation loop: one decode step of a Mamba-130M-shaped and a Llama-1B-shaped random bf16
 * model (Llama 3.2 1B: width 2048, 16 layers, 32 heads of 64, 8 kv heads, FFN 8192, vocabulary
 * 128256) at batch 1 and 32 after a 512-token prompt per sequence; {@code tiny} (the host
 * emulation) runs models of width 64 and 2 layers after a 16-token prompt. A step is the whole
 * {@code forward} call: token ids and KV lengths to the device, every layer, the LM head and the
 * f32 logits back to the host.
 *
 * <p>Four rows per case, 20 steps each: {@code decode <model>}, the step's wall time with the step
 * replayed as a CUDA graph (the default), up to the logits on the device ({@link
 * DecoderModel#decodeOnDevice}, then a synchronize); {@code decode-kernels <model>}, the device
 * time of that graph's launch (its kernels back to back, between CUDA events around the launch);
 * {@code decode-host-logits <model>}, the same step through {@code forward}, which also copies
 * the f32 logits into a new host tensor (what a host-side sampler needs; freeing its shared arena
 * alone costs about 0.1 ms); and {@code decode-eager <model>}, the step with graphs off, every
 * kernel launched from Java. 1 - kernels / wall is the fraction of the step spent outside kernels:
 * Java, the input copies, the launch. Bytes: every weight read once plus the caches read (Mamba's
 * states read and written, the KV cache of the context read); FLOPs: 2 per weight per sequence,
 * plus 4 * heads * headDim * context per attention layer and sequence. The energy of the graph
 * step is read over up to {@value #ENERGY_STEPS} more steps; joules per token are per step and
 * sequence.
 */
final class ModelBench {
    private ModelBench() {}

    private static final int WARMUP = 3, RUNS = 20, ENERGY_STEPS = 400;

    record Case(String name, ModelConfig config) {}

    /** The result of one way of stepping: median wall and device microseconds, and the energy where read. */
    private record Steps(double wallUs, double deviceUs, Nvml.Reading energy) {}

    static void run(Bench b) {
        Case[] cases = b.tiny
                ? new Case[] {new Case("mamba-tiny", ModelConfig.mamba(128, 64, 2, 16)), new Case("llama-tiny", ModelConfig.llama(128, 64, 2, 1, 96))}
                : new Case[] {new Case("mamba-130m", ModelConfig.mamba(50280, 768, 24, 16)),
                              new Case("llama-1b", ModelConfig.llama(128256, 2048, 16, 8, 8192))};
        int context = b.tiny ? 16 : 512;
        for (Case c : cases) {
            try (DecoderModel model = DecoderModel.random(b.gpu, c.config(), DType.BF16, 5)) {
                for (int batch : b.tiny ? new int[] {1, 3} : new int[] {1, 32}) decode(b, model, c.name(), batch, context);
            }
        }
    }

    private static void decode(Bench b, DecoderModel model, String name, int batch, int context) {
        Steps graph = steps(b, model, batch, context, true, false);
        double hostLogitsUs = steps(b, model, batch, context, true, true).wallUs();
        double eagerUs = steps(b, model, batch, context, false, false).wallUs();
        double wallUs = graph.wallUs(), kernelUs = graph.deviceUs();
        double[] work = work(model.config(), batch, context);
        String shape = "batch=" + batch + ",context=" + context;
        System.out.printf(Locale.ROOT, "decode %-10s %-22s %9.1f us/step  %8.1f tokens/s  kernels %9.1f us  outside kernels %.1f%%  "
                        + "with host logits %9.1f us  without the graph %9.1f us (%.2fx)%n", name, shape, wallUs, batch / (wallUs / 1e6),
                kernelUs, 100 * Math.max(0, 1 - kernelUs / wallUs), hostLogitsUs, eagerUs, eagerUs / wallUs);
        b.recordWithEnergy("decode " + name, shape, DType.BF16, stats(wallUs), work[0], work[1], batch, graph.energy());
        b.recordWithEnergy("decode-kernels " + name, shape, DType.BF16, stats(kernelUs), work[0], work[1], batch, null);
        b.recordWithEnergy("decode-host-logits " + name, shape, DType.BF16, stats(hostLogitsUs), work[0], work[1], batch, null);
        b.recordWithEnergy("decode-eager " + name, shape, DType.BF16, stats(eagerUs), work[0], work[1], batch, null);
    }

    private static Timing.Stats stats(double medianUs) {
        return new Timing.Stats(medianUs, medianUs, medianUs, RUNS);
    }

    /** Median wall and device microseconds per decode step, with or without the CUDA graph, to device or host logits. */
    private static Steps steps(Bench b, DecoderModel model, int batch, int context, boolean cudaGraph, boolean hostLogits) {
        CudaBackend gpu = b.gpu;
        int[] sequences = new int[batch];
        int[][] prompts = new int[batch][context];
        int[] next = new int[batch];
        int[][] nextRows = new int[batch][];
        for (int i = 0; i < batch; i++) {
            sequences[i] = i;
            Arrays.fill(prompts[i], 7 + i);
            next[i] = 11;
            nextRows[i] = new int[] {11};
        }
        double[] wall = new double[RUNS], device = new double[RUNS];
        boolean readEnergy = cudaGraph && !hostLogits;
        Nvml.Reading energy = null;
        try (Session session = model.newSession(batch, context + WARMUP + RUNS + (readEnergy ? ENERGY_STEPS : 0))) {
            session.setCudaGraph(cudaGraph);
            session.setStepTiming(true);
            model.forward(session, sequences, prompts, false).close();
            gpu.synchronize();
            for (int i = -WARMUP; i < RUNS; i++) {
                long t0 = System.nanoTime();
                if (hostLogits) {
                    model.forward(session, sequences, nextRows, false).close();
                } else {
                    model.decodeOnDevice(session, next);
                    gpu.synchronize();
                }
                long t1 = System.nanoTime();
                if (i >= 0) {
                    wall[i] = (t1 - t0) / 1e3;
                    device[i] = session.lastStepDeviceMicros();
                }
            }
            if (readEnergy) energy = b.energyOfSteps(() -> model.decodeOnDevice(session, next), ENERGY_STEPS);
            String expected = cudaGraph ? "cuda graph" : "eager (CUDA graphs turned off)";
            if (!session.decodeMode().equals(expected))
                System.out.println("decode " + model.config().family() + " batch " + batch + ": " + session.decodeMode());
        }
        Arrays.sort(wall);
        Arrays.sort(device);
        return new Steps(wall[RUNS / 2], device[RUNS / 2], energy);
    }

    /** {bytes, flops} of one decode step of {@code batch} sequences at the context. */
    private static double[] work(ModelConfig c, int batch, int context) {
        double params = (double) c.vocabSize() * c.hiddenSize() * (c.tieEmbeddings() ? 1 : 2);
        double cache = 0, attentionFlops = 0;
        for (int i = 0; i < c.layers(); i++) {
            long h = c.hiddenSize();
            if (c.isAttention(i)) {
                long q = (long) c.heads() * c.headDim(), kv = (long) c.kvHeads() * c.headDim();
                params += h * (2 * q + 2 * kv) + 3.0 * h * c.intermediateSize();
                cache += 2.0 * batch * context * kv * 2;
                attentionFlops += 4.0 * batch * c.heads() * c.headDim() * context;
            } else {
                long d = c.mambaInner(), n = c.stateSize(), r = c.dtRank();
                params += 2.0 * d * h + (r + 2.0 * n) * d + d * r + h * d + d * c.convKernel();
                cache += batch * (2.0 * d * n * 4 + 2.0 * d * (c.convKernel() - 1) * 2);
            }
        }
        return new double[] {params * 2 + cache, 2 * params * batch + attentionFlops};
    }
}
