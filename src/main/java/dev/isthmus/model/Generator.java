package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.random.RandomFill;
import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Prefill then decode for a batch of prompts of any lengths: the prompts run in one step (each
 * sequence with its own caches), then every sequence advances one token per step until it has
 * {@code maxNewTokens} tokens or drew a stop token. A finished sequence keeps being fed its last
 * token so that every step stays the batched decode step; what it draws is discarded. Decode
 * steps leave their logits on the device and draw there, copying back one id per sequence: greedy
 * decoding by the argmax, sampling by {@link Sampling} (sequence i's token t from the counter
 * generator at (seed + i, t), so the CPU and CUDA backends draw alike and a CUDA graph could hold
 * the draw).
 */
public final class Generator {
    private Generator() {}

    /** Where each drawn token goes as it comes (sequence index, token id). */
    public interface Listener {
        void onToken(int sequence, int token);
    }

    /**
     * @param tokens       the new tokens of each sequence, a stop token included when one ended it
     * @param prefillNanos time of the prompt step
     * @param decodeNanos  time of all decode steps
     * @param decodeSteps  how many decode steps ran
     * @param decodeMode   how the decode step ran ({@link Session#decodeMode()}: "cuda graph", or "eager" and why)
     */
    public record Result(List<int[]> tokens, long prefillNanos, long decodeNanos, int decodeSteps, String decodeMode) {
        /** Tokens drawn per second in the decode phase, over the whole batch. */
        public double decodeTokensPerSecond() {
            return decodeNanos == 0 ? 0 : (double) decodeSteps * tokens.size() / (decodeNanos / 1e9);
        }
    }

    public static Result generate(DecoderModel model, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Listener listener) {
        return generate(model, prompts, maxNewTokens, sampling, stopTokens, listener, KvCacheType.MODEL_DTYPE);
    }

    /** As above, with the session's KV cache holding {@code kvCacheType} (an fp8 cache with the scale 1). */
    public static Result generate(DecoderModel model, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Listener listener, KvCacheType kvCacheType) {
        return generate(model, prompts, maxNewTokens, sampling, stopTokens, listener, kvCacheType, false);
    }

    /**
     * As above; calibrateFp8: an fp8 cache's scales calibrated on the prompts first, one extra
     * prefill ({@link DecoderModel#newSession(int, int, KvCacheType, List)}).
     */
    public static Result generate(DecoderModel model, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Listener listener, KvCacheType kvCacheType, boolean calibrateFp8) {
        if (model == null || prompts == null || sampling == null || stopTokens == null)
            throw new IllegalArgumentException("model, prompts, sampling and stopTokens must not be null");
        if (prompts.isEmpty()) throw new IllegalArgumentException("no prompts");
        if (maxNewTokens < 1) throw new IllegalArgumentException("maxNewTokens must be >= 1, got " + maxNewTokens);
        int batch = prompts.size();
        int longest = 0;
        for (int i = 0; i < batch; i++) {
            if (prompts.get(i) == null || prompts.get(i).length == 0) throw new IllegalArgumentException("prompt " + i + " is empty");
            longest = Math.max(longest, prompts.get(i).length);
        }
        List<List<Integer>> drawn = new ArrayList<>();
        int[] sequences = new int[batch];
        long[] seeds = new long[batch], offsets = new long[batch];
        for (int i = 0; i < batch; i++) {
            drawn.add(new ArrayList<>());
            sequences[i] = i;
            seeds[i] = sampling.seed() + i;
            offsets[i] = 1; // the first token, from the prompt's logits on the host, took counter 0
        }
        boolean[] done = new boolean[batch];
        int[] last = new int[batch];
        int vocab = model.config().vocabSize();
        Backend backend = model.backend();
        boolean greedy = sampling.isGreedy();
        // Tensors kept for the whole loop: a step allocates nothing, and only the ids come back. The
        // draw is the decode step's last kernel, inside its CUDA graph; it is set before the prompt
        // step, which is itself the decode step when every prompt is one token.
        try (Session session = model.newSession(batch, longest + maxNewTokens, kvCacheType, calibrateFp8 ? prompts : null);
             Tensor deviceIds = backend.allocate(DType.I32, batch); Tensor hostIds = Tensor.allocateHost(DType.I32, batch);
             Tensor hostOffsets = Tensor.fromLongs(DType.I64, offsets, batch);
             Tensor deviceSeeds = greedy ? null : upload(backend, seeds); Tensor deviceOffsets = greedy ? null : backend.copyOf(hostOffsets)) {
            session.drawOnDevice(sampling, deviceIds, deviceSeeds, deviceOffsets);
            long start = System.nanoTime();
            try (Tensor logits = model.forward(session, sequences, prompts.toArray(int[][]::new), false)) {
                float[] all = logits.toFloatArray();
                for (int i = 0; i < batch; i++) {
                    float[] row = Arrays.copyOfRange(all, i * vocab, (i + 1) * vocab);
                    int token = greedy ? Sampler.argmax(row)
                            : SamplingReference.draw(Sampler.distribution(row, sampling), RandomFill.unitFloat(seeds[i], 0), vocab);
                    accept(i, token, drawn, done, last, maxNewTokens, stopTokens, listener);
                }
            }
            // A prompt step that ran as the decode step drew too: the counters start at 1 all the same.
            if (!greedy) backend.copy(deviceOffsets, hostOffsets);
            long prefill = System.nanoTime() - start;
            int steps = 0;
            start = System.nanoTime();
            while (!allDone(done)) {
                model.decodeOnDevice(session, last.clone());
                backend.copy(hostIds, deviceIds);
                long[] picked = hostIds.toLongArray();
                for (int i = 0; i < batch; i++) accept(i, (int) picked[i], drawn, done, last, maxNewTokens, stopTokens, listener);
                steps++;
            }
            long decode = System.nanoTime() - start;
            return new Result(drawn.stream().map(l -> l.stream().mapToInt(Integer::intValue).toArray()).toList(), prefill, decode, steps,
                    session.decodeMode());
        }
    }

    private static Tensor upload(Backend backend, long[] values) {
        try (Tensor host = Tensor.fromLongs(DType.I64, values, values.length)) {
            return backend.copyOf(host);
        }
    }

    /** Sequence i drew {@code token} (dropped if it had finished). */
    private static void accept(int i, int token, List<List<Integer>> drawn, boolean[] done, int[] last, int maxNewTokens,
                               Set<Integer> stopTokens, Listener listener) {
        if (done[i]) return;
        drawn.get(i).add(token);
        last[i] = token;
        if (listener != null) listener.onToken(i, token);
        if (stopTokens.contains(token) || drawn.get(i).size() >= maxNewTokens) done[i] = true;
    }

    static boolean allDone(boolean[] done) {
        for (boolean d : done)
            if (!d) return false;
        return true;
    }
}
