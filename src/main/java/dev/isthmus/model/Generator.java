package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Prefill then decode for a batch of prompts of any lengths: the prompts run in one step (each
 * sequence with its own caches), then every sequence advances one token per step until it has
 * {@code maxNewTokens} tokens or drew a stop token. A finished sequence keeps being fed its last
 * token so that every step stays the batched decode step; what it draws is discarded. Decode
 * steps leave their logits on the device: greedy decoding takes the argmax there and copies back
 * one id per sequence, sampling copies the logits to the host sampler.
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

    /** As above, with the session's KV cache holding {@code kvCacheType} ({@link DecoderModel#newSession(int, int, KvCacheType)}). */
    public static Result generate(DecoderModel model, List<int[]> prompts, int maxNewTokens, SamplingOptions sampling,
                                  Set<Integer> stopTokens, Listener listener, KvCacheType kvCacheType) {
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
        Sampler[] samplers = new Sampler[batch];
        List<List<Integer>> drawn = new ArrayList<>();
        int[] sequences = new int[batch];
        for (int i = 0; i < batch; i++) {
            samplers[i] = new Sampler(sampling, i);
            drawn.add(new ArrayList<>());
            sequences[i] = i;
        }
        boolean[] done = new boolean[batch];
        int[] last = new int[batch];
        try (Session session = model.newSession(batch, longest + maxNewTokens, kvCacheType)) {
            long start = System.nanoTime();
            try (Tensor logits = model.forward(session, sequences, prompts.toArray(int[][]::new), false)) {
                take(logits, samplers, drawn, done, last, maxNewTokens, stopTokens, listener);
            }
            long prefill = System.nanoTime() - start;
            int steps = 0;
            start = System.nanoTime();
            // Host tensors kept for the whole loop: a step allocates no host memory.
            boolean greedy = sampling.isGreedy();
            try (Tensor deviceIds = greedy ? model.backend().allocate(DType.I32, batch) : null;
                 Tensor hostIds = greedy ? Tensor.allocateHost(DType.I32, batch) : null;
                 Tensor hostLogits = greedy ? null : Tensor.allocateHost(DType.F32, batch, model.config().vocabSize())) {
                while (!allDone(done)) {
                    Tensor logits = model.decodeOnDevice(session, last.clone());
                    if (greedy) {
                        // The argmax on the device, and only the ids come back.
                        Elementwise.argmax(model.backend(), deviceIds, logits);
                        model.backend().copy(hostIds, deviceIds);
                        long[] picked = hostIds.toLongArray();
                        for (int i = 0; i < batch; i++) accept(i, (int) picked[i], drawn, done, last, maxNewTokens, stopTokens, listener);
                    } else {
                        model.backend().copy(hostLogits, logits);
                        take(hostLogits, samplers, drawn, done, last, maxNewTokens, stopTokens, listener);
                    }
                    steps++;
                }
            }
            long decode = System.nanoTime() - start;
            return new Result(drawn.stream().map(l -> l.stream().mapToInt(Integer::intValue).toArray()).toList(), prefill, decode, steps,
                    session.decodeMode());
        }
    }

    private static void take(Tensor logits, Sampler[] samplers, List<List<Integer>> drawn, boolean[] done, int[] last, int maxNewTokens,
                             Set<Integer> stopTokens, Listener listener) {
        int vocab = (int) logits.dim(1);
        float[] all = logits.toFloatArray();
        for (int i = 0; i < samplers.length; i++) {
            if (done[i]) continue;
            float[] row = new float[vocab];
            System.arraycopy(all, i * vocab, row, 0, vocab);
            accept(i, samplers[i].sample(row), drawn, done, last, maxNewTokens, stopTokens, listener);
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

    private static boolean allDone(boolean[] done) {
        for (boolean d : done)
            if (!d) return false;
        return true;
    }
}
