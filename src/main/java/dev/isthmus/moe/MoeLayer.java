package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.blas.GemmWorkspace;
import dev.isthmus.quant.QuantizedExperts;
import dev.isthmus.tensor.Checks;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * A whole MoE feed-forward layer (Mixtral, DeepSeek-V3):
 *
 * <pre>
 *   logits = x Wg^T                                  (f32, {@link Gemm})
 *   (w, ids) = top-k(logits)                         ({@link Router})
 *   y_t = sum_s w_s * W2_e(silu(W1_e x_t) * W3_e x_t) (+ shared_t) (+ residual_t)
 * </pre>
 *
 * run as router GEMM, top-k, align, grouped gate+up with SwiGLU, grouped down with the routing
 * weight, fixed-order combine. Nothing waits on the host, so the layer can be captured in a CUDA
 * graph; all buffers live in a {@link Workspace} sized once for a token count.
 */
public final class MoeLayer {
    private MoeLayer() {}

    /**
     * router (E, H); routerBias (E) f32 or null (choice-only bias); gateUp (E, 2I, H) with W1 (gate)
     * rows first, then W3 (up); down (E, H, I). router, gateUp and down share x's dtype.
     */
    public record Weights(Tensor router, Tensor routerBias, Tensor gateUp, Tensor down) {}

    /**
     * {@link Weights} with the experts' matrices kept quantized: gateUp E x (2I, H), gate rows first,
     * and down E x (H, I) (a GGUF file's stacked experts); the router dense in x's dtype. On CUDA the
     * activations are f16 or bf16 (see {@link ExpertGemm}).
     */
    public record QuantizedWeights(Tensor router, Tensor routerBias, QuantizedExperts gateUp, QuantizedExperts down) {}

    /**
     * Every intermediate of one forward pass for {@code tokens} tokens; readable after it (stats).
     * {@code expertCapacity} is 0 (dropless, the default) or the most pairs an expert serves.
     * {@code split}: the split-K workspace of the layer's GEMMs, or null (no split).
     */
    public record Workspace(Tensor logits, Tensor weights, Tensor ids, Dispatch.Buffers routing, Tensor hidden,
                            Tensor slotOut, long tokens, int topK, int expertCapacity, GemmWorkspace split) implements AutoCloseable {

        /** The tensors' shapes are checked by each forward pass; here what they must agree on. */
        public Workspace {
            for (var e : new Object[][] {{"logits", logits}, {"weights", weights}, {"ids", ids}, {"routing", routing},
                    {"hidden", hidden}, {"slotOut", slotOut}})
                Checks.notNull("ws." + e[0], e[1]);
            if (topK < 1) throw new IllegalArgumentException("ws.topK must be positive, got " + topK);
            if (expertCapacity < 0) throw new IllegalArgumentException("ws.expertCapacity must be >= 0 (0: no limit), got " + expertCapacity);
            if (routing.pairs() != MoeChecks.pairs(tokens, topK))
                throw new IllegalArgumentException("ws.routing holds " + routing.pairs() + " pairs, not tokens * topK = " + tokens + " * " + topK);
        }

        /** A workspace without a split-K workspace: the GEMMs run unsplit. */
        public Workspace(Tensor logits, Tensor weights, Tensor ids, Dispatch.Buffers routing, Tensor hidden, Tensor slotOut,
                         long tokens, int topK, int expertCapacity) {
            this(logits, weights, ids, routing, hidden, slotOut, tokens, topK, expertCapacity, null);
        }

        /** A dropless workspace: every routed pair is served. */
        public static Workspace allocate(Backend backend, long tokens, long hiddenSize, long intermediate, DType dtype,
                                         RouterConfig config) {
            return allocate(backend, tokens, hiddenSize, intermediate, dtype, config, 0);
        }

        /**
         * A workspace whose experts serve at most {@link Dispatch#expertCapacity} pairs for this
         * capacity factor (0: dropless); dropped pairs are flagged in {@code routing().dropped()}.
         */
        public static Workspace allocate(Backend backend, long tokens, long hiddenSize, long intermediate, DType dtype,
                                         RouterConfig config, double capacityFactor) {
            MoeChecks.backend(backend);
            if (config == null) throw new IllegalArgumentException("config is null");
            if (tokens < 0 || hiddenSize < 1 || intermediate < 1)
                throw new IllegalArgumentException("tokens, hiddenSize and intermediate must be positive (tokens may be 0)");
            if (dtype == null || !MoeChecks.FLOATS.contains(dtype))
                throw new IllegalArgumentException("dtype must be f32, f16 or bf16, got " + (dtype == null ? null : dtype.label()));
            int k = config.topK();
            long pairs = MoeChecks.pairs(tokens, k);
            int expertCapacity = capacityFactor == 0 ? 0 : Dispatch.expertCapacity(capacityFactor, tokens, k, config.experts());
            java.util.List<AutoCloseable> made = new java.util.ArrayList<>(); // freed again if a later allocation fails
            try {
                Tensor logits = keep(made, backend.allocate(DType.F32, tokens, config.experts()));
                Tensor weights = keep(made, backend.allocate(DType.F32, tokens, k));
                Tensor ids = keep(made, backend.allocate(DType.I32, tokens, k));
                Dispatch.Buffers routing = keep(made, Dispatch.Buffers.allocate(backend, tokens, k, config.experts(), ExpertGemm.TILE_M));
                Tensor hidden = keep(made, backend.allocate(dtype, pairs, intermediate));
                Tensor slotOut = keep(made, backend.allocate(dtype, pairs, hiddenSize));
                GemmWorkspace split = keep(made, GemmWorkspace.allocate(backend));
                return new Workspace(logits, weights, ids, routing, hidden, slotOut, tokens, k, expertCapacity, split);
            } catch (RuntimeException e) {
                for (AutoCloseable c : made.reversed()) {
                    try {
                        c.close();
                    } catch (Exception suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
                throw e;
            }
        }

        private static <T extends AutoCloseable> T keep(java.util.List<AutoCloseable> made, T resource) {
            made.add(resource);
            return resource;
        }

        @Override
        public void close() {
            logits.close();
            weights.close();
            ids.close();
            routing.close();
            hidden.close();
            slotOut.close();
            if (split != null) split.close();
        }
    }

    /** out = MoE(x) (+ shared) (+ residual); x and out (T, H). shared and residual may be null. */
    public static void forward(Backend backend, Tensor out, Tensor x, Weights w, RouterConfig config, Tensor shared,
                               Tensor residual, Workspace ws) {
        if (ws == null) throw new IllegalArgumentException("ws is null");
        check(backend, out, x, w, config, ws);
        Gemm.gemm(backend, ws.logits(), x, false, w.router(), true, 1f, 0f, ws.split());
        Router.topK(backend, ws.weights(), ws.ids(), ws.logits(), w.routerBias(), config);
        experts(backend, out, x, w, shared, residual, ws);
    }

    /**
     * The layer with routing given by the caller: weights (T, k) f32 and ids (T, k) i32, written
     * into the workspace's own tensors first. The ids are checked (see {@link Router#checkRouting}).
     */
    public static void forwardRouted(Backend backend, Tensor out, Tensor x, Weights w, Tensor routeWeights, Tensor routeIds,
                                     Tensor shared, Tensor residual, Workspace ws) {
        int experts = w == null || w.gateUp() == null ? 0 : Math.toIntExact(w.gateUp().dim(0));
        if (ws == null) throw new IllegalArgumentException("ws is null");
        Router.checkRouting(backend, routeWeights, routeIds, x == null ? -1 : x.dim(0), ws.topK(), experts);
        check(backend, out, x, w, RouterConfig.softmax(experts, ws.topK(), false), ws);
        backend.copy(ws.weights(), routeWeights);
        backend.copy(ws.ids(), routeIds);
        experts(backend, out, x, w, shared, residual, ws);
    }

    /** {@link #forward} with the experts' matrices quantized. */
    public static void forwardQuantized(Backend backend, Tensor out, Tensor x, QuantizedWeights w, RouterConfig config, Tensor shared,
                               Tensor residual, Workspace ws) {
        if (ws == null) throw new IllegalArgumentException("ws is null");
        check(backend, out, x, w, config, ws);
        Gemm.gemm(backend, ws.logits(), x, false, w.router(), true, 1f, 0f, ws.split());
        Router.topK(backend, ws.weights(), ws.ids(), ws.logits(), w.routerBias(), config);
        experts(backend, out, shared, residual, ws, () -> {
            ExpertGemm.gateUpQuantized(backend, ws.hidden(), x, w.gateUp(), ws.routing(), ws.topK(), ws.split());
            ExpertGemm.downQuantized(backend, ws.slotOut(), ws.hidden(), w.down(), ws.weights(), ws.routing(), ws.split());
        });
    }

    private static void experts(Backend backend, Tensor out, Tensor x, Weights w, Tensor shared, Tensor residual, Workspace ws) {
        experts(backend, out, shared, residual, ws, () -> {
            ExpertGemm.gateUp(backend, ws.hidden(), x, w.gateUp(), ws.routing(), ws.topK(), ws.split());
            ExpertGemm.down(backend, ws.slotOut(), ws.hidden(), w.down(), ws.weights(), ws.routing(), ws.split());
        });
    }

    /** align, the two expert GEMMs (`gemms`, given the aligned routing in ws), combine. */
    private static void experts(Backend backend, Tensor out, Tensor shared, Tensor residual, Workspace ws, Runnable gemms) {
        Dispatch.align(backend, ws.routing(), ws.ids(), ws.expertCapacity());
        gemms.run();
        Combine.apply(backend, out, ws.slotOut(), ws.routing().dropped(), shared, residual, ws.topK());
    }

    /** The plain-loop CPU reference of the whole layer (host tensors), for validating any backend. */
    public static void reference(Tensor out, Tensor x, Weights w, RouterConfig config, Tensor shared, Tensor residual) {
        reference(out, x, w, config, shared, residual, 0);
    }

    /** The reference with each expert serving at most {@code expertCapacity} pairs (0: all), earlier tokens first. */
    public static void reference(Tensor out, Tensor x, Weights w, RouterConfig config, Tensor shared, Tensor residual,
                                 int expertCapacity) {
        if (expertCapacity < 0) throw new IllegalArgumentException("expertCapacity must be >= 0, got " + expertCapacity);
        CpuBackend cpu = Backend.cpu();
        check(cpu, out, x, w, config, null);
        if (shared != null) MoeChecks.tensor("shared", shared, cpu, x.dtype(), x.shape());
        if (residual != null) MoeChecks.tensor("residual", residual, cpu, x.dtype(), x.shape());
        MoeReference.layer(out, x, w, config, shared, residual, expertCapacity);
    }

    private static void check(Backend backend, Tensor out, Tensor x, Weights w, RouterConfig config, Workspace ws) {
        MoeChecks.backend(backend);
        if (w == null) throw new IllegalArgumentException("w is null");
        if (config == null) throw new IllegalArgumentException("config is null");
        MoeChecks.floats("x", x, backend, 2);
        long h = x.dim(1);
        MoeChecks.floats("gateUp", w.gateUp(), backend, 3);
        MoeChecks.floats("down", w.down(), backend, 3);
        long e = config.experts(), inter = w.gateUp().dim(1) / 2;
        if (w.gateUp().dim(1) % 2 != 0)
            throw new IllegalArgumentException("gateUp has " + w.gateUp().dim(1) + " rows per expert; expected 2 * I (gate, then up)");
        Checks.sameDtype("gateUp", w.gateUp(), "x", x);
        Checks.sameDtype("down", w.down(), "x", x);
        Checks.shape("gateUp", w.gateUp(), e, 2 * inter, h);
        Checks.shape("down", w.down(), e, h, inter);
        checkCommon(backend, out, x, w.router(), w.routerBias(), config, ws, inter);
    }

    private static void check(Backend backend, Tensor out, Tensor x, QuantizedWeights w, RouterConfig config, Workspace ws) {
        MoeChecks.backend(backend);
        if (w == null) throw new IllegalArgumentException("w is null");
        if (config == null) throw new IllegalArgumentException("config is null");
        if (w.gateUp() == null || w.down() == null) throw new IllegalArgumentException("w.gateUp and w.down must not be null");
        MoeChecks.floats("x", x, backend, 2);
        long e = config.experts(), h = x.dim(1), inter = w.gateUp().rows() / 2;
        if (w.gateUp().experts() != e || w.gateUp().rows() % 2 != 0 || w.gateUp().cols() != h || w.down().experts() != e
                || w.down().rows() != h || w.down().cols() != inter)
            throw new IllegalArgumentException("the quantized experts are gateUp " + w.gateUp().experts() + " x (" + w.gateUp().rows() + ", "
                    + w.gateUp().cols() + ") and down " + w.down().experts() + " x (" + w.down().rows() + ", " + w.down().cols()
                    + "); expected " + e + " x (2I, " + h + ") and " + e + " x (" + h + ", I)");
        checkCommon(backend, out, x, w.router(), w.routerBias(), config, ws, inter);
    }

    /** What both forms of the layer check: out, the router, and that ws fits this call. */
    private static void checkCommon(Backend backend, Tensor out, Tensor x, Tensor router, Tensor routerBias, RouterConfig config,
                                    Workspace ws, long inter) {
        long tokens = x.dim(0), h = x.dim(1), e = config.experts();
        MoeChecks.tensor("out", out, backend, x.dtype(), tokens, h);
        MoeChecks.floats("router", router, backend, 2);
        Checks.sameDtype("router", router, "x", x);
        Checks.shape("router", router, e, h);
        if (routerBias != null) MoeChecks.tensor("routerBias", routerBias, backend, DType.F32, e);
        if (ws != null) {
            if (ws.tokens() != tokens || ws.topK() != config.topK() || ws.routing().experts() != e)
                throw new IllegalArgumentException("ws was allocated for " + ws.tokens() + " tokens, top-" + ws.topK() + " of "
                        + ws.routing().experts() + " experts; this call has " + tokens + ", top-" + config.topK() + " of " + e);
            // Every stage's tensors before the first launch, so a bad one stops the layer before it starts.
            MoeChecks.tensor("ws.logits", ws.logits(), backend, DType.F32, tokens, e);
            MoeChecks.tensor("ws.weights", ws.weights(), backend, DType.F32, tokens, config.topK());
            MoeChecks.tensor("ws.ids", ws.ids(), backend, DType.I32, tokens, config.topK());
            ws.routing().checkOn(backend, "ws.routing");
            MoeChecks.tensor("ws.hidden", ws.hidden(), backend, x.dtype(), tokens * config.topK(), inter);
            MoeChecks.tensor("ws.slotOut", ws.slotOut(), backend, x.dtype(), tokens * config.topK(), h);
        }
    }
}
