package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.blas.Gemm;
import dev.isthmus.cuda.Cuda;
import dev.isthmus.cuda.JCudaInterop;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import jcuda.runtime.JCuda;
import jcuda.runtime.cudaMemcpyKind;

/**
 * The MoE layer (router GEMM through the residual add) at a Mixtral shape (H 4096, I 14336, E 8,
 * k 2) and a DeepSeek-V3 shape (H 7168, I 2048, E 256 in 8 groups, 4 kept, k 8), bf16, across
 * token counts; and the project's own dense GEMM on square bf16 shapes.
 *
 * <p>Counted work. Layer bytes: the weights actually touched (the router's, plus 3 H I for every
 * expert that received a token, counted after the run) and the activations read and written
 * once (x, residual, out). Layer FLOPs: 2 T E H for the router plus 2 T k 3 H I for the experts.
 * GEMM: bytes 2 (MK + KN + MN), FLOPs 2 MNK.
 */
final class MoeBench {
    private MoeBench() {}

    private static final int WARMUP = 3, RUNS = 20;

    record Shape(String name, int hidden, int intermediate, RouterConfig config, int[] tokens) {}

    static final Shape[] SHAPES = {
        new Shape("moe-mixtral", 4096, 14336, RouterConfig.softmax(8, 2, true), new int[] {1, 8, 64, 512, 8192}),
        new Shape("moe-deepseek", 7168, 2048, RouterConfig.sigmoidGrouped(256, 8, 8, 4, 2.5f), new int[] {1, 16, 128, 1024, 4096}),
    };

    static List<GpuBench.Row> run(CudaBackend gpu, Random random, Runnable flushL2) {
        List<GpuBench.Row> rows = new ArrayList<>();
        for (Shape s : SHAPES) rows.addAll(layer(gpu, random, s, flushL2));
        for (int n : new int[] {1024, 4096, 8192}) rows.add(denseGemm(gpu, random, n, flushL2));
        return rows;
    }

    private static List<GpuBench.Row> layer(CudaBackend gpu, Random random, Shape s, Runnable flushL2) {
        DType dtype = DType.BF16;
        RouterConfig c = s.config();
        long h = s.hidden(), inter = s.intermediate(), e = c.experts();
        List<GpuBench.Row> rows = new ArrayList<>();
        try (Tensor router = deviceRandom(gpu, random, dtype, (float) (1 / Math.sqrt(h)), e, h);
             Tensor bias = c.scoring() == RouterConfig.Scoring.SIGMOID ? deviceRandom(gpu, random, DType.F32, 0.01f, e) : null;
             Tensor gateUp = deviceRandom(gpu, random, dtype, (float) (1 / Math.sqrt(h)), e, 2 * inter, h);
             Tensor down = deviceRandom(gpu, random, dtype, (float) (1 / Math.sqrt(inter)), e, h, inter)) {
            MoeLayer.Weights w = new MoeLayer.Weights(router, bias, gateUp, down);
            for (int tokens : s.tokens()) {
                try (Tensor x = deviceRandom(gpu, random, dtype, 1f, tokens, h);
                     Tensor residual = deviceRandom(gpu, random, dtype, 1f, tokens, h);
                     Tensor out = gpu.allocate(dtype, tokens, h);
                     MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(gpu, tokens, h, inter, dtype, c)) {
                    Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2, () -> MoeLayer.forward(gpu, out, x, w, c, null, residual, ws));
                    long touched;
                    try (Tensor counts = gpu.toHost(ws.routing().expertCounts())) {
                        touched = java.util.Arrays.stream(counts.toLongArray()).filter(n -> n > 0).count();
                    }
                    double bytes = dtype.byteSize() * (e * h + touched * 3.0 * h * inter + 3.0 * tokens * h);
                    double flops = 2.0 * tokens * e * h + 2.0 * tokens * c.topK() * 3.0 * h * inter;
                    String shape = "T=" + tokens + ";H=" + h + ";I=" + inter + ";E=" + e + ";k=" + c.topK()
                            + (c.groups() > 1 ? ";G=" + c.groups() + ";TG=" + c.topGroups() : "");
                    System.out.printf(Locale.ROOT, "%-14s %-40s %s  %.1f GB/s  %.1f TFLOP/s  (%d experts touched)%n", s.name(), shape, t,
                            bytes / t.medianMicros() / 1e3, flops / t.medianMicros() / 1e6, touched);
                    rows.add(new GpuBench.Row(s.name(), shape, dtype, t.medianMicros(), bytes, flops));
                }
            }
        }
        return rows;
    }

    private static GpuBench.Row denseGemm(CudaBackend gpu, Random random, int n, Runnable flushL2) {
        DType dtype = DType.BF16;
        try (Tensor a = deviceRandom(gpu, random, dtype, 1f, n, n); Tensor b = deviceRandom(gpu, random, dtype, 1f, n, n);
             Tensor c = gpu.allocate(dtype, n, n)) {
            Timing.Stats t = Timing.measure(gpu, WARMUP, RUNS, flushL2, () -> Gemm.gemmOwnKernel(gpu, c, a, false, b, false, 1f, 0f));
            double flops = 2.0 * n * n * n, bytes = 3.0 * n * n * dtype.byteSize();
            String shape = n + "x" + n + "x" + n;
            System.out.printf(Locale.ROOT, "%-14s %-40s %s  %.1f TFLOP/s%n", "gemm-own", shape, t, flops / t.medianMicros() / 1e6);
            return new GpuBench.Row("gemm-own", shape, dtype, t.medianMicros(), bytes, flops);
        }
    }

    /**
     * A device tensor of random normal values: one random block of up to 16M elements made on the
     * host, repeated over the tensor by device-to-device copies (the weights here reach 15 GB).
     */
    private static Tensor deviceRandom(CudaBackend gpu, Random random, DType dtype, float scale, long... shape) {
        Tensor t = gpu.allocate(dtype, shape);
        long total = t.elementCount(), block = Math.min(total, 1L << 24);
        try (Tensor host = RandomTensors.normal(random, dtype, scale, block); Tensor first = gpu.copyOf(host)) {
            long bytes = block * dtype.byteSize();
            for (long done = 0; done < total * dtype.byteSize(); done += bytes) {
                long n = Math.min(bytes, total * dtype.byteSize() - done);
                Cuda.check(JCuda.cudaMemcpyAsync(JCudaInterop.pointer(t.address() + done), JCudaInterop.pointer(first),
                        n, cudaMemcpyKind.cudaMemcpyDeviceToDevice, gpu.stream().jcuda()), "cudaMemcpyAsync");
            }
            gpu.synchronize();
        } catch (RuntimeException ex) {
            t.close();
            throw ex;
        }
        return t;
    }
}
