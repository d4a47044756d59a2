package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.cuda.CudaEvent;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.ModelConfig;
import dev.isthmus.model.Session;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The generation loop: one decode step of a Mamba-130M-shaped and a Llama-1B-shaped random bf16
 * model (Llama 3.2 1B: width 2048, 16 layers, 32 heads of 64, 8 kv heads, FFN 8192, vocabulary
 * 128256) at batch 1 and 32 after a 512-token prompt per sequence. A step is the whole
 * {@code forward} call: ids to the device, every layer, the LM head and the f32 logits back to
 * the host.
 *
 * <p>Two rows per case: {@code decode <model>} with the step's wall time, and
 * {@code decode-gpu-span <model>} with the time between CUDA events recorded at the step's start
 * and end on the stream. 1 - span / wall, printed, is the part of the step before its first
 * launch reaches the GPU and after its last finishes: a lower bound of the time outside kernels
 * (Java, launches), since gaps between kernels inside the span are not separated (that needs the
 * decode step captured as a CUDA graph, or a profiler). Bytes: every weight read once plus the caches read
 * (Mamba's states read and written, the KV cache of the context read); FLOPs: 2 per weight per
 * sequence, plus 4 * heads * headDim * context per attention layer and sequence.
 */
final class ModelBench {
    private ModelBench() {}

    private static final int CONTEXT = 512, WARMUP = 3, RUNS = 20;

    record Case(String name, ModelConfig config) {}

    static List<GpuBench.Row> run(CudaBackend gpu) {
        List<Case> cases = List.of(new Case("mamba-130m", ModelConfig.mamba(50280, 768, 24, 16)),
                new Case("llama-1b", ModelConfig.llama(128256, 2048, 16, 8, 8192)));
        List<GpuBench.Row> rows = new ArrayList<>();
        for (Case c : cases) {
            try (DecoderModel model = DecoderModel.random(gpu, c.config(), DType.BF16, 5)) {
                for (int batch : new int[] {1, 32}) rows.addAll(decode(gpu, model, c.name(), batch));
            }
        }
        return rows;
    }

    private static List<GpuBench.Row> decode(CudaBackend gpu, DecoderModel model, String name, int batch) {
        int[] sequences = new int[batch];
        int[][] prompts = new int[batch][CONTEXT];
        int[][] next = new int[batch][];
        for (int i = 0; i < batch; i++) {
            sequences[i] = i;
            Arrays.fill(prompts[i], 7 + i);
            next[i] = new int[] {11};
        }
        double[] wall = new double[RUNS], span = new double[RUNS];
        try (Session session = model.newSession(batch, CONTEXT + WARMUP + RUNS);
             CudaEvent start = new CudaEvent(gpu.ordinal()); CudaEvent end = new CudaEvent(gpu.ordinal())) {
            model.forward(session, sequences, prompts, false).close();
            for (int i = -WARMUP; i < RUNS; i++) {
                long t0 = System.nanoTime();
                start.record(gpu.stream());
                Tensor logits = model.forward(session, sequences, next, false);
                end.record(gpu.stream());
                logits.close();
                long t1 = System.nanoTime();
                if (i >= 0) {
                    wall[i] = (t1 - t0) / 1e3;
                    end.synchronize();
                    span[i] = end.millisSince(start) * 1e3;
                }
            }
        }
        Arrays.sort(wall);
        Arrays.sort(span);
        double wallUs = wall[RUNS / 2], spanUs = span[RUNS / 2];
        ModelConfig c = model.config();
        double[] work = work(c, batch);
        String shape = "batch=" + batch + ",context=" + CONTEXT;
        System.out.printf(Locale.ROOT, "decode %-10s %-22s %9.1f us/step  %8.1f tokens/s  outside kernels >= %.1f%%%n", name, shape, wallUs,
                batch / (wallUs / 1e6), 100 * Math.max(0, 1 - spanUs / wallUs));
        return List.of(new GpuBench.Row("decode " + name, shape, DType.BF16, wallUs, work[0], work[1]),
                new GpuBench.Row("decode-gpu-span " + name, shape, DType.BF16, spanUs, work[0], work[1]));
    }

    /** {bytes, flops} of one decode step of {@code batch} sequences at the context. */
    private static double[] work(ModelConfig c, int batch) {
        double params = (double) c.vocabSize() * c.hiddenSize() * (c.tieEmbeddings() ? 1 : 2);
        double cache = 0, attentionFlops = 0;
        for (int i = 0; i < c.layers(); i++) {
            long h = c.hiddenSize();
            if (c.isAttention(i)) {
                long q = (long) c.heads() * c.headDim(), kv = (long) c.kvHeads() * c.headDim();
                params += h * (2 * q + 2 * kv) + 3.0 * h * c.intermediateSize();
                cache += 2.0 * batch * CONTEXT * kv * 2;
                attentionFlops += 4.0 * batch * c.heads() * c.headDim() * CONTEXT;
            } else {
                long d = c.mambaInner(), n = c.stateSize(), r = c.dtRank();
                params += 2.0 * d * h + (r + 2.0 * n) * d + d * r + h * d + d * c.convKernel();
                cache += batch * (2.0 * d * n * 4 + 2.0 * d * (c.convKernel() - 1) * 2);
            }
        }
        return new double[] {params * 2 + cache, 2 * params * batch + attentionFlops};
    }
}
