package dev.isthmus.cli;

import dev.isthmus.attention.KvCacheType;
import dev.isthmus.backend.Backend;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.DraftModel;
import dev.isthmus.model.Drafter;
import dev.isthmus.model.Generator;
import dev.isthmus.model.PromptLookup;
import dev.isthmus.model.SamplingOptions;
import dev.isthmus.model.SpeculativeGenerator;
import dev.isthmus.model.Tokenizer;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** Generates text from a local Hugging Face checkpoint, streaming the tokens as they come. */
@Command(name = "generate", description = "Generate text from a local Hugging Face checkpoint directory, streaming tokens.")
final class GenerateCommand extends ModelCommand {
    @Mixin
    QuantizeOption quantize;

    @Option(names = "--prompt", required = true, description = "the prompt text")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "64", description = "tokens to generate at most (default ${DEFAULT-VALUE})")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0", description = "0 for greedy (default ${DEFAULT-VALUE})")
    float temperature;

    @Option(names = "--top-k", defaultValue = "0", description = "keep the k most likely tokens, 0 for all (default ${DEFAULT-VALUE})")
    int topK;

    @Option(names = "--top-p", defaultValue = "1", description = "nucleus probability (default ${DEFAULT-VALUE})")
    float topP;

    @Option(names = "--min-p", defaultValue = "0", description = "keep tokens of at least this times the largest probability, 0 for all (default ${DEFAULT-VALUE})")
    float minP;

    @Option(names = "--seed", defaultValue = "0", description = "random seed (default ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--backend", defaultValue = "best", description = "cpu, cuda or best (default ${DEFAULT-VALUE})")
    String backendName;

    @Option(names = "--dtype", description = "compute dtype: f32, bf16 or f16 (default: bf16 on CUDA, f32 on the CPU)")
    String dtypeName;

    @Option(names = "--speculative", description = "speculative decoding: prompt-lookup,k=4 or draft=DIR,k=4 (a draft model sharing the "
            + "vocabulary); prints the acceptance rate and tokens/s beside plain decoding")
    String speculative;

    @Option(names = "--kv-cache", defaultValue = "model",
            description = "what the KV cache holds: model (the compute dtype), int8 (per-token scales), fp8 (e4m3, scale 1) or fp8-calibrated "
                    + "(e4m3, per-head scales calibrated on the prompt: one extra prefill) (default ${DEFAULT-VALUE})")
    String kvCacheName;

    @Override
    int run(PrintWriter out, PrintWriter err) throws Exception {
        try (Backend backend = Main.backend(backendName)) {
            SamplingOptions sampling = new SamplingOptions(temperature, topK, topP, minP, seed);
            if (maxTokens < 1) throw new IllegalArgumentException("--max-tokens must be >= 1, got " + maxTokens);
            Speculation spec = speculative == null ? null : Speculation.parse(speculative);
            boolean calibrate = "fp8-calibrated".equals(kvCacheName);
            KvCacheType kvCache = calibrate ? KvCacheType.FP8_E4M3 : kvCacheType(kvCacheName);
            try (Tokenizer tokenizer = Tokenizer.load(model);
                 DecoderModel decoder = DecoderModel.load(backend, model, dtype(dtypeName, backend), quantize.type())) {
                int[] ids = tokenizer.encode(prompt);
                if (ids.length == 0) throw new IllegalArgumentException("--prompt encodes to no tokens");
                err.println("[" + decoder.config().family().name().toLowerCase() + " on " + backend.describe() + ", "
                        + decoder.dtype().label() + (kvCache.isQuantized() ? ", " + kvCache.label() + " KV cache" : "") + ", prompt of "
                        + ids.length + " tokens]");
                err.flush();
                List<Integer> drawn = new ArrayList<>();
                int[] printed = {0};
                out.print(prompt);
                // Decoding the whole continuation each time keeps multi-token characters and spaces right.
                Generator.Listener stream = (sequence, token) -> {
                    drawn.add(token);
                    String text = tokenizer.decode(drawn.stream().mapToInt(Integer::intValue).toArray());
                    if (text.length() > printed[0]) {
                        out.print(text.substring(printed[0]));
                        out.flush();
                        printed[0] = text.length();
                    }
                };
                Set<Integer> stop = new HashSet<>(decoder.config().eosTokens());
                if (spec != null) return speculate(out, spec, backend, decoder, ids, sampling, stop, stream, kvCache, calibrate);
                Generator.Result result = Generator.generate(decoder, List.of(ids), maxTokens, sampling, stop, stream, kvCache, calibrate);
                out.println();
                int generated = result.tokens().getFirst().length;
                out.printf("[%d tokens; prefill %.1f ms (%.1f tokens/s); decode %.1f tokens/s, %s]%n", generated, result.prefillNanos() / 1e6,
                        ids.length / (result.prefillNanos() / 1e9), result.decodeTokensPerSecond(), result.decodeMode());
                return 0;
            }
        }
    }

    /** Generates with the --speculative drafter, then plainly on the same backend for the comparison. */
    private int speculate(PrintWriter out, Speculation spec, Backend backend, DecoderModel decoder, int[] ids, SamplingOptions sampling,
                          Set<Integer> stop, Generator.Listener stream, KvCacheType kvCache, boolean calibrate) throws IOException {
        try (DecoderModel draft = spec.draft() == null ? null : DecoderModel.load(backend, spec.draft(), decoder.dtype());
             Drafter drafter = draft == null ? new PromptLookup() : new DraftModel(draft, sampling)) {
            SpeculativeGenerator.Result r = SpeculativeGenerator.generate(decoder, drafter, spec.k(), List.of(ids), maxTokens, sampling, stop, stream,
                    kvCache, calibrate);
            out.println();
            Generator.Result plain = Generator.generate(decoder, List.of(ids), maxTokens, sampling, stop, null, kvCache, calibrate);
            out.printf(Locale.ROOT, "[%d tokens; %s, k=%d: acceptance %.2f, %.2f tokens per target forward, %.1f tokens/s; plain decoding %.1f tokens/s "
                            + "(%.2fx)]%n", r.tokens().getFirst().length, r.drafter(), spec.k(), r.acceptanceRate(), r.tokensPerTargetForward(),
                    r.decodeTokensPerSecond(), plain.decodeTokensPerSecond(), r.decodeTokensPerSecond() / plain.decodeTokensPerSecond());
            return 0;
        }
    }

    private static KvCacheType kvCacheType(String name) {
        try {
            return KvCacheType.parse(name);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("--kv-cache " + name + " is not model, int8, fp8 or fp8-calibrated");
        }
    }
}
