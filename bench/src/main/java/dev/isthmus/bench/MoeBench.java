package dev.isthmus.bench;

import dev.isthmus.backend.CudaBackend;
import dev.isthmus.backend.Timing;
import dev.isthmus.blas.Gemm;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.moe.MoeLayer;
import dev.isthmus.moe.RouterConfig;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.Locale;

/**
 * The MoE layer (router GEMM through the residual add) at a Mixtral shape (H 4096, I 14336, E 8,
 * k 2) and a DeepSeek-V3 shape (H 7168, I 2048, E 256 in 8 groups, 4 kept, k 8), bf16, across
 * token counts; and the project's own dense GEMM on square bf16 shapes, B as given (K, N) and B
 * transposed (N, K): the models' path, whose weights are stored [out, in] (shape suffix ";Bt"),
 * and on decode-sized products (1 to 64 rows by a 4096 x 4096 or 14336 x 4096 weight, B
 * transposed), which with the layer's split-K workspace split over K. The layers get theirs from
 * MoeLayer.Workspace (a 1-token layer splits its down GEMM).
 *
 * <p>Counted work. Layer bytes: the weights actually touched (the router's, plus 3 H I for every
 * expert that received a token, counted after the run) and the activations read and written
 * once (x, residual, out). Layer FLOPs: 2 T E H for the router plus 2 T k 3 H I for the experts.
 * GEMM: bytes 2 (MK + KN + MN), FLOPs 2 MNK. 20 runs each; {@code tiny} (the host emulation) runs
 * one small shape of each kind.
 */
final class MoeBench {
    private MoeBench() {}

    private static final int WARMUP = 3, RUNS = 20;

    record Shape(String name, int hidden, int intermediate, RouterConfig config, int[] tokens) {}

    static final Shape[] SHAPES = {
        new Shape("moe-mixtral", 4096, 14336, RouterConfig.softmax(8, 2, true), new int[] {1, 8, 64, 512, 8192}),
        new Shape("moe-deepseek", 7168, 2048, RouterConfig.sigmoidGrouped(256, 8, 8, 4, 2.5f), new int[] {1, 16, 128, 1024, 4096}),
    };

    static final Shape[] TINY_SHAPES = {
        new Shape("moe-mixtral", 64, 96, RouterConfig.softmax(8, 2, true), new int[] {5}),
        new Shape("moe-deepseek", 64, 32, RouterConfig.sigmoidGrouped(16, 8, 4, 2, 2.5f), new int[] {5}),
    };

    static void run(Bench b) {
        for (Shape s : b.tiny ? TINY_SHAPES : SHAPES) layer(b, s);
        try (GemmWorkspace ws = GemmWorkspace.allocate(b.gpu)) {
            for (int n : b.tiny ? new int[] {48} : new int[] {1024, 4096, 8192})
                for (boolean transposeB : new boolean[] {false, true}) denseGemm(b, n, n, n, transposeB, ws);
            for (int[] mnk : b.tiny ? new int[][] {{1, 48, 256}} : DECODE_GEMMS) denseGemm(b, mnk[0], mnk[1], mnk[2], true, ws);
        }
    }

    /** (m, n, k) of the decode-sized dense GEMMs: a projection of 1, 16 and 64 tokens. */
    static final int[][] DECODE_GEMMS = {{1, 4096, 4096}, {16, 4096, 4096}, {64, 4096, 4096}, {1, 14336, 4096}, {1, 4096, 14336}};

    private static void layer(Bench b, Shape s) {
        CudaBackend gpu = b.gpu;
        DType dtype = DType.BF16;
        RouterConfig c = s.config();
        long h = s.hidden(), inter = s.intermediate(), e = c.experts();
        try (Tensor router = b.normal(dtype, (float) (1 / Math.sqrt(h)), e, h);
             Tensor bias = c.scoring() == RouterConfig.Scoring.SIGMOID ? b.normal(DType.F32, 0.01f, e) : null;
             Tensor gateUp = b.normal(dtype, (float) (1 / Math.sqrt(h)), e, 2 * inter, h);
             Tensor down = b.normal(dtype, (float) (1 / Math.sqrt(inter)), e, h, inter)) {
            MoeLayer.Weights w = new MoeLayer.Weights(router, bias, gateUp, down);
            for (int tokens : s.tokens()) {
                try (Tensor x = b.normal(dtype, 1f, tokens, h);
                     Tensor residual = b.normal(dtype, 1f, tokens, h);
                     Tensor out = gpu.allocate(dtype, tokens, h);
                     MoeLayer.Workspace ws = MoeLayer.Workspace.allocate(gpu, tokens, h, inter, dtype, c)) {
                    Runnable op = () -> MoeLayer.forward(gpu, out, x, w, c, null, residual, ws);
                    Timing.Stats t = b.time(WARMUP, b.tiny ? 2 : RUNS, op);
                    long touched = java.util.Arrays.stream(ws.routing().expertCounts(gpu)).filter(n -> n > 0).count();
                    double bytes = dtype.byteSize() * (e * h + touched * 3.0 * h * inter + 3.0 * tokens * h);
                    double flops = 2.0 * tokens * e * h + 2.0 * tokens * c.topK() * 3.0 * h * inter;
                    String shape = "T=" + tokens + ";H=" + h + ";I=" + inter + ";E=" + e + ";k=" + c.topK()
                            + (c.groups() > 1 ? ";G=" + c.groups() + ";TG=" + c.topGroups() : "");
                    System.out.printf(Locale.ROOT, "%-14s %-40s %s  %.1f GB/s  %.1f TFLOP/s  (%d experts touched)%n", s.name(), shape, t,
                            bytes / t.medianMicros() / 1e3, flops / t.medianMicros() / 1e6, touched);
                    b.record(s.name(), shape, dtype, t, bytes, flops, tokens, op);
                }
            }
        }
    }

    private static void denseGemm(Bench bench, int m, int n, int k, boolean transposeB, GemmWorkspace ws) {
        DType dtype = DType.BF16;
        CudaBackend gpu = bench.gpu;
        try (Tensor a = bench.normal(dtype, 1f, m, k); Tensor b = transposeB ? bench.normal(dtype, 1f, n, k) : bench.normal(dtype, 1f, k, n);
             Tensor c = gpu.allocate(dtype, m, n)) {
            Runnable op = () -> Gemm.gemmOwnKernel(gpu, c, a, false, b, transposeB, 1f, 0f, ws);
            Timing.Stats t = bench.time(WARMUP, bench.tiny ? 2 : RUNS, op);
            double flops = 2.0 * m * n * k, bytes = ((double) m * k + (double) k * n + (double) m * n) * dtype.byteSize();
            String shape = m + "x" + n + "x" + k + (transposeB ? ";Bt" : "");
            System.out.printf(Locale.ROOT, "%-14s %-40s %s  %.1f TFLOP/s%n", "gemm-own", shape, t, flops / t.medianMicros() / 1e6);
            bench.record("gemm-own", shape, dtype, t, bytes, flops, 0, op);
        }
    }
}
