package dev.isthmus.moe;

import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.GpuShapes;
import java.util.Random;

/** Random MoE layers for the tests: values scaled so activations stay near 1 whatever the sizes. */
final class MoeFixtures {
    private MoeFixtures() {}

    /** One layer's host tensors; close to free them. */
    record Layer(Tensor x, MoeLayer.Weights weights, int tokens, int hidden, int intermediate) implements AutoCloseable {
        @Override
        public void close() {
            x.close();
            weights.router().close();
            if (weights.routerBias() != null) weights.routerBias().close();
            weights.gateUp().close();
            weights.down().close();
        }
    }

    static Layer layer(Random random, DType dtype, int tokens, int hidden, int intermediate, RouterConfig config, boolean bias) {
        int e = config.experts();
        Tensor x = RandomTensors.normal(random, dtype, 1f, tokens, hidden);
        Tensor router = RandomTensors.normal(random, dtype, (float) (2 / Math.sqrt(hidden)), e, hidden);
        Tensor routerBias = bias ? RandomTensors.normal(random, DType.F32, 0.1f, e) : null;
        Tensor gateUp = RandomTensors.normal(random, dtype, (float) (1.5 / Math.sqrt(hidden)), e, 2L * intermediate, hidden);
        Tensor down = RandomTensors.normal(random, dtype, (float) (1 / Math.sqrt(intermediate)), e, hidden, intermediate);
        return new Layer(x, new MoeLayer.Weights(router, routerBias, gateUp, down), tokens, hidden, intermediate);
    }

    /** The configurations the issue lists: E = 1, 8, 64, 256 (grouped), k = 1, 2, 8. */
    static RouterConfig[] configs() {
        return new RouterConfig[] {
            RouterConfig.softmax(1, 1, true),
            RouterConfig.softmax(8, 2, true),
            RouterConfig.softmax(8, 1, false),
            RouterConfig.softmax(64, 8, false),
            RouterConfig.sigmoidGrouped(256, 8, 8, 4, 2.5f),
        };
    }

    /** Under the host emulation 1000 tokens (minutes of CPU fibers) become 160: still several tiles, none full. */
    /** (tokens, k) I32 expert ids, distinct within each token (consecutive from a random first), as a router gives. */
    static Tensor distinctIds(Random random, int tokens, int experts, int k) {
        long[] id = new long[tokens * k];
        for (int t = 0; t < tokens; t++) {
            int first = random.nextInt(experts);
            for (int s = 0; s < k; s++) id[t * k + s] = (first + s) % experts;
        }
        return Tensor.fromLongs(DType.I32, id, tokens, k);
    }

    static final int[] TOKENS = GpuShapes.choose(new int[] {1, 2, 17, 1000}, 1, 2, 17, 160);
}
