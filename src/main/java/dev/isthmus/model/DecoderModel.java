package dev.isthmus.model;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.blas.Gemm;
import dev.isthmus.io.GgufFile;
import dev.isthmus.io.HfCheckpoint;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.norm.RmsNorm;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;

/**
 * A pre-norm decoder stack loaded from a Hugging Face checkpoint directory, on one backend and in
 * one compute dtype:
 *
 * <pre>
 *   r = embed(tokens);  h = 0
 *   for each layer:  r += h;  h = mixer(rmsnorm(r))            (attention or Mamba)
 *                    r += h;  h = ffn(rmsnorm(r))              (dense SwiGLU or MoE; not in Mamba)
 *   logits = lm_head(rmsnorm(r + h))                           (f32; tied to embed or not)
 * </pre>
 *
 * The residual adds are fused into the norms ({@link RmsNorm#applyWithResidual}). Families:
 * Llama / Mistral / Qwen2, Qwen3 and Phi-3 (attention + dense), Mixtral (attention + MoE), Qwen3-MoE
 * (attention + MoE or dense by layer), Mamba and Mamba-2 (their blocks only), Jamba (attention
 * every few layers, Mamba elsewhere, MoE on alternate layers) and Granite 4.0-H (attention or
 * Mamba-2 by layer, MoE plus a shared MLP in every layer, its multipliers as {@link GraniteScaling}
 * folds them into the weights and the logits GEMM's alpha divides by logits_scaling).
 *
 * <pre>{@code
 * try (DecoderModel model = DecoderModel.load(Backend.best(), dir, DType.BF16);
 *      Session session = model.newSession(1, 512)) {
 *     Tensor logits = model.forward(session, new int[] {0}, new int[][] {promptIds}, false);
 * }
 * }</pre>
 */
public final class DecoderModel implements AutoCloseable {
    static final Set<DType> DTYPES = Set.of(DType.F32, DType.F16, DType.BF16);

    private final ModelConfig config;
    private final Backend backend;
    private final DType dtype;
    private final Weights weights;
    private final Tensor embedding;
    private final Tensor lmHead;
    private final Tensor finalNorm;
    /** The logits GEMM's alpha: 1, or Granite's 1 / logits_scaling (over embedding_multiplier with a tied head). */
    private final float logitsScale;
    private final Layer[] layers;

    /** One layer: its norms and blocks (attention or mamba; dense, moe, both (Granite's shared MLP beside the experts) or no FFN). */
    private record Layer(Tensor mixerNorm, AttentionBlock attention, StateSpaceBlock mamba, Tensor ffnNorm, DenseFfn dense, MoeFfn moe) {}

    private DecoderModel(ModelConfig config, Backend backend, DType dtype, Weights weights) {
        this.config = config;
        this.backend = backend;
        this.dtype = dtype;
        this.weights = weights;
        TensorNames names = TensorNames.of(config, weights);
        long h = config.hiddenSize(), vocab = config.vocabSize();
        embedding = weights.load(names.embedding(), vocab, h);
        ModelConfig.Granite granite = config.granite();
        // The table holds embed * embedding_multiplier (GraniteScaling): a tied head divides that out again.
        logitsScale = granite == null ? 1f
                : 1f / (granite.logitsScaling() * (config.tieEmbeddings() ? granite.embeddingMultiplier() : 1f));
        finalNorm = weights.load(names.finalNorm(), h);
        lmHead = config.tieEmbeddings() ? embedding : weights.load("lm_head.weight", vocab, h);
        layers = new Layer[config.layers()];
        for (int i = 0; i < layers.length; i++) {
            String p = names.layer(i);
            Tensor mixerNorm = weights.load(p + names.mixerNorm(), h);
            AttentionBlock attention = config.isAttention(i) ? new AttentionBlock(weights, config, p + names.attention()) : null;
            StateSpaceBlock mamba = config.isAttention(i) ? null
                    : config.mamba2() != null ? new Mamba2Block(weights, config, p + names.mambaMixer())
                    : new MambaBlock(weights, config, p + names.mambaMixer());
            Tensor ffnNorm = config.hasFfn(i) ? weights.load(p + names.ffnNorm(), h) : null;
            DenseFfn dense = config.hasDenseFfn(i) ? new DenseFfn(weights, config, p + names.denseFfn()) : null;
            MoeFfn moe = config.isMoe(i) ? names.moe(weights, config, p) : null;
            layers[i] = new Layer(mixerNorm, attention, mamba, ffnNorm, dense, moe);
        }
    }

    /**
     * Loads the model at {@code path} onto {@code backend}, converting every weight to {@code dtype}:
     * a Hugging Face checkpoint directory, or a GGUF file (see {@link #load(Backend, GgufFile, DType)}).
     */
    public static DecoderModel load(Backend backend, Path path, DType dtype) throws IOException {
        if (Files.isRegularFile(path)) {
            try (GgufFile gguf = GgufFile.open(path)) {
                return load(backend, gguf, dtype);
            }
        }
        try (HfCheckpoint checkpoint = HfCheckpoint.open(path)) {
            return load(backend, checkpoint, dtype);
        }
    }

    /**
     * A model from a GGUF file: the config from its metadata (architectures llama, with or without
     * experts, qwen2 and mamba), every weight dequantized on the host and converted to {@code dtype}.
     * The file may be closed afterwards.
     */
    public static DecoderModel load(Backend backend, GgufFile gguf, DType dtype) {
        ModelConfig config;
        try {
            config = ModelConfig.fromJson(GgufConfig.toConfigJson(gguf));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(gguf.path() + " (its metadata read as config.json fields): " + e.getMessage(), e);
        }
        return build(backend, config, new GgufWeights(gguf, config), dtype);
    }

    /**
     * As {@link #load(Backend, Path, DType)}, with the checkpoint's matrices quantized to
     * {@code quantize} (q8_0, q4_0, q4_1 or q4_k) on load and dequantized into {@code dtype}: the
     * model computes exactly what the quantized weights give (see {@link WeightSource#quantized}).
     * A GGUF file is already quantized as it was written and is refused here.
     */
    public static DecoderModel load(Backend backend, Path path, DType dtype, GgmlType quantize) throws IOException {
        if (quantize == null) return load(backend, path, dtype);
        if (Files.isRegularFile(path))
            throw new IllegalArgumentException(path + " is a GGUF file, quantized as it was written; quantizing on load applies to checkpoint directories");
        try (HfCheckpoint checkpoint = HfCheckpoint.open(path)) {
            ModelConfig config = ModelConfig.fromJson(checkpoint.config());
            return build(backend, config, WeightSource.quantized(GraniteScaling.wrap(config, WeightSource.of(checkpoint)), quantize), dtype);
        }
    }

    /** As {@link #load(Backend, Path, DType)} from an open checkpoint (which may be closed afterwards: weights are copied). */
    public static DecoderModel load(Backend backend, HfCheckpoint checkpoint, DType dtype) {
        ModelConfig config = ModelConfig.fromJson(checkpoint.config());
        return build(backend, config, GraniteScaling.wrap(config, WeightSource.of(checkpoint)), dtype);
    }

    /**
     * A model of {@code config} with random weights (matrices of variance 1 / fan-in, norms 1,
     * Mamba's usual A, D and time-step initialisation), the same for every backend and dtype given
     * the seed: for benchmarks and the architecture comparison.
     */
    public static DecoderModel random(Backend backend, ModelConfig config, DType dtype, long seed) {
        if (config == null) throw new IllegalArgumentException("config is null");
        return build(backend, config, GraniteScaling.wrap(config, WeightSource.random(seed)), dtype);
    }

    private static DecoderModel build(Backend backend, ModelConfig config, WeightSource source, DType dtype) {
        if (backend == null) throw new IllegalArgumentException("backend is null");
        if (dtype == null || !DTYPES.contains(dtype)) throw new IllegalArgumentException("dtype must be f32, f16 or bf16, got " + dtype);
        if (config == null) throw new IllegalArgumentException("config is null");
        ConfigChecks.check(config);
        Weights weights = new Weights(source, backend, dtype);
        try {
            return new DecoderModel(config, backend, dtype, weights);
        } catch (RuntimeException e) {
            weights.close();
            throw e;
        }
    }

    public ModelConfig config() {
        return config;
    }

    /**
     * The bytes of the weights in their storage format: quantized blocks where the matrices are
     * quantized (a GGUF file's types, or --quantize), else the elements in the dtype each is held in.
     */
    public long weightBytes() {
        return weights.storedBytes();
    }

    /**
     * The bytes the weights take on the backend: about {@link #weightBytes} where the quantized
     * matrices stay quantized (on CUDA, up to 16 bytes of padding each), more where they are
     * dequantized on load (on the CPU, and for formats the quantized kernels do not read).
     */
    public long heldWeightBytes() {
        return weights.heldBytes();
    }

    public Backend backend() {
        return backend;
    }

    public DType dtype() {
        return dtype;
    }

    /** Caches for up to {@code maxSequences} sequences of up to {@code maxLength} tokens each. */
    public Session newSession(int maxSequences, int maxLength) {
        return newSession(maxSequences, maxLength, KvCacheType.MODEL_DTYPE);
    }

    /** As {@link #newSession(int, int)} with a KV cache of {@code kvCacheType} (int8 or fp8 codes, or the model's dtype). */
    public Session newSession(int maxSequences, int maxLength, KvCacheType kvCacheType) {
        return new Session(this, maxSequences, maxLength, kvCacheType);
    }

    /**
     * As {@link #newSession(int, int, KvCacheType)}, an fp8 cache with its scales calibrated on
     * {@code prompts} first ({@link Fp8Calibration}); prompts null: the scale 1. The other cache
     * types ignore the prompts.
     */
    public Session newSession(int maxSequences, int maxLength, KvCacheType kvCacheType, List<int[]> prompts) {
        if (kvCacheType != KvCacheType.FP8_E4M3 || prompts == null) return newSession(maxSequences, maxLength, kvCacheType);
        return new Session(this, maxSequences, maxLength, kvCacheType, Fp8Calibration.calibrate(this, prompts));
    }

    /**
     * Runs {@code tokens[i]} as the next tokens of sequence {@code sequences[i]} of the session
     * (a whole prompt, a chunk of one, or one decode token) and returns f32 host logits: one row
     * per sequence for its last token, or with {@code allPositions} one row per token, packed in
     * order. A step of one token for every sequence of the session, in order, is the batched
     * decode step: the session keeps it, and on CUDA replays it as a CUDA graph.
     */
    public Tensor forward(Session session, int[] sequences, int[][] tokens, boolean allPositions) {
        if (session == null || sequences == null || tokens == null) throw new IllegalArgumentException("session, sequences and tokens must not be null");
        int[] counts = new int[tokens.length];
        for (int i = 0; i < tokens.length; i++) counts[i] = tokens[i] == null ? 0 : tokens[i].length;
        long[] ids = checkedIds(session, sequences, counts, tokens);
        Tensor logits;
        if (!allPositions && Step.isFullDecode(session, sequences, counts)) {
            logits = backend.toHost(session.decodeStep().run(ids));
        } else {
            try (Step step = Step.of(session, sequences, counts); Tensor hostIds = Tensor.fromLongs(DType.I32, ids, ids.length)) {
                Tensor deviceIds = step.allocate(DType.I32, ids.length);
                backend.copy(deviceIds, hostIds);
                logits = backend.toHost(logitsOnDevice(step, deviceIds, allPositions));
            }
        }
        session.advance(sequences, counts);
        return logits;
    }

    /**
     * The batched decode step, {@code tokens[i]} as the next token of sequence {@code i} of the
     * session (every sequence), leaving the f32 logits {@code [maxSequences, vocab]} on the
     * backend's device: for sampling there, or copying only what is needed. The returned tensor
     * belongs to the session and is overwritten by its next decode step; do not close it.
     */
    public Tensor decodeOnDevice(Session session, int[] tokens) {
        if (session == null || tokens == null) throw new IllegalArgumentException("session and tokens must not be null");
        if (tokens.length != session.maxSequences())
            throw new IllegalArgumentException("tokens has " + tokens.length + " ids; the decode step takes one per sequence of the session ("
                    + session.maxSequences() + ")");
        int[] sequences = new int[tokens.length], counts = new int[tokens.length];
        int[][] rows = new int[tokens.length][];
        for (int i = 0; i < tokens.length; i++) {
            sequences[i] = i;
            counts[i] = 1;
            rows[i] = new int[] {tokens[i]};
        }
        long[] ids = checkedIds(session, sequences, counts, rows);
        Tensor logits = session.decodeStep().run(ids);
        session.advance(sequences, counts);
        return logits;
    }

    /** Checks a step against the session and the vocabulary; its token ids, packed. */
    private long[] checkedIds(Session session, int[] sequences, int[] counts, int[][] tokens) {
        if (session.model() != this) throw new IllegalArgumentException("the session belongs to another model");
        session.checkStep(sequences, counts);
        long[] ids = new long[java.util.Arrays.stream(counts).sum()];
        int n = 0;
        for (int[] row : tokens)
            for (int id : row) {
                if (id < 0 || id >= config.vocabSize()) throw new IllegalArgumentException("token " + id + " is outside the vocabulary of " + config.vocabSize());
                ids[n++] = id;
            }
        return ids;
    }

    /**
     * The forward pass of {@code step} for the token ids on the device, to f32 logits on the
     * device. Everything here stays on the device and waits for nothing, so the decode step can
     * capture it as a CUDA graph.
     */
    Tensor logitsOnDevice(Step step, Tensor ids, boolean allPositions) {
        long t = step.totalTokens, h = config.hiddenSize();
        Tensor hidden = step.allocate(dtype, t, h);
        Tensor residual = step.allocate(dtype, t, h);
        Tensor normed = step.allocate(dtype, t, h);
        Elementwise.embedding(backend, residual, embedding, ids);
        for (int i = 0; i < layers.length; i++) {
            Layer layer = layers[i];
            normalize(i == 0, layer.mixerNorm, hidden, residual, normed);
            if (layer.attention != null) layer.attention.forward(step, i, normed, hidden);
            else layer.mamba.forward(step, i, normed, hidden);
            if (layer.ffnNorm == null) continue;
            normalize(false, layer.ffnNorm, hidden, residual, normed);
            if (layer.moe == null) {
                layer.dense.forward(step, normed, hidden);
                continue;
            }
            Tensor shared = null;
            if (layer.dense != null) {
                shared = step.allocate(dtype, t, h);
                layer.dense.forward(step, normed, shared);
            }
            layer.moe.forward(step, normed, hidden, shared);
        }
        normalize(false, finalNorm, hidden, residual, normed);
        Tensor rows = normed;
        if (!allPositions && t != step.sequences.length) { // else every sequence brought one token: its row is its last
            rows = step.allocate(dtype, step.sequences.length, h);
            for (int i = 0; i < step.sequences.length; i++)
                backend.copy(rows.slice(0, i, i + 1), normed.slice(0, step.starts[i + 1] - 1, step.starts[i + 1]));
        }
        Tensor logits = step.allocate(DType.F32, rows.dim(0), config.vocabSize());
        Gemm.gemm(backend, logits, rows, false, lmHead, true, logitsScale, 0f, step.session.gemmWorkspace());
        return logits;
    }

    /** normed = rmsnorm(residual + hidden), residual updated; the first layer's residual is the embedding itself. */
    private void normalize(boolean first, Tensor weight, Tensor hidden, Tensor residual, Tensor normed) {
        if (first) {
            RmsNorm.apply(backend, normed, residual, weight, config.normEps());
        } else {
            RmsNorm.applyWithResidual(backend, normed, residual, hidden, residual, weight, config.normEps());
        }
    }

    @Override
    public void close() {
        weights.close();
    }
}
