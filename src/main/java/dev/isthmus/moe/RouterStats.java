package dev.isthmus.moe;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.CpuBackend;
import dev.isthmus.backend.CudaBackend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;

/**
 * What the router did on one batch, as tensors (computed in a fixed order, so repeatable bit for bit):
 * <ul>
 *   <li>tokens per expert: {@link Dispatch.Buffers#expertCounts(Backend)} of the aligned routing;</li>
 *   <li>meanProbability[e] = P_e, the mean over tokens of the router probability of expert e
 *       (softmax; for sigmoid scoring, sigmoid(z_e) / sum_j sigmoid(z_j), as DeepSeek-V3's
 *       balance loss normalises it);</li>
 *   <li>auxLoss = E * sum_e f_e * P_e, the Switch load-balancing loss, with f_e = the fraction of
 *       the T * k routed pairs that went to expert e. Normalised this way a perfectly balanced
 *       router scores 1 for every k (as MegaBlocks does); Hugging Face's Mixtral loss counts f per
 *       slot and is k times this value. The coefficient (Switch: 1e-2) is the caller's;</li>
 *   <li>zLoss = mean over tokens of logsumexp(z_t)^2 (ST-MoE router z-loss).</li>
 * </ul>
 */
public final class RouterStats {
    private RouterStats() {}

    /** meanProbability (E), auxLoss (1), zLoss (1), all f32. */
    public record Result(Tensor meanProbability, Tensor auxLoss, Tensor zLoss) implements AutoCloseable {
        public static Result allocate(Backend backend, int experts) {
            MoeChecks.backend(backend);
            return new Result(backend.allocate(DType.F32, experts), backend.allocate(DType.F32, 1), backend.allocate(DType.F32, 1));
        }

        @Override
        public void close() {
            meanProbability.close();
            auxLoss.close();
            zLoss.close();
        }
    }

    /** Statistics of logits (T, E) routed into {@code routing} (aligned from the same batch) under {@code config}. */
    public static void compute(Backend backend, Result out, Tensor logits, Dispatch.Buffers routing, RouterConfig config) {
        MoeChecks.backend(backend);
        if (out == null || config == null || routing == null) throw new IllegalArgumentException("out, routing and config must not be null");
        MoeChecks.floats("logits", logits, backend, 2);
        int experts = config.experts();
        if (logits.dim(1) != experts)
            throw new IllegalArgumentException("logits has " + logits.dim(1) + " columns but config.experts() is " + experts);
        MoeChecks.rows("tokens", logits.dim(0));
        routing.checkOn(backend, "routing");
        routing.requireAligned();
        if (routing.experts() != experts || routing.pairs() != logits.dim(0) * config.topK())
            throw new IllegalArgumentException("routing (" + routing.pairs() + " pairs, " + routing.experts()
                    + " experts) is not of these logits under config");
        MoeChecks.tensor("meanProbability", out.meanProbability(), backend, DType.F32, experts);
        MoeChecks.tensor("auxLoss", out.auxLoss(), backend, DType.F32, 1);
        MoeChecks.tensor("zLoss", out.zLoss(), backend, DType.F32, 1);
        switch (backend) {
            case CpuBackend cpu -> MoeReference.routerStats(out, logits, routing.expertCounts(), config);
            case CudaBackend cuda -> MoeCuda.routerStats(cuda, out, logits, routing.expertCounts(), config);
        }
    }
}
