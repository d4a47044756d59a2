package dev.isthmus.bench;

import dev.isthmus.backend.Backend;
import dev.isthmus.backend.Timing;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.DraftModel;
import dev.isthmus.model.Drafter;
import dev.isthmus.model.Generator;
import dev.isthmus.model.ModelConfig;
import dev.isthmus.model.PromptLookup;
import dev.isthmus.model.SamplingOptions;
import dev.isthmus.model.SpeculativeGenerator;
import dev.isthmus.tensor.DType;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Speculative decoding against plain decoding on one backend: a random Llama-shaped model, a
 * prompt that repeats a phrase (what prompt lookup is for), greedy decoding of {@code tokens}
 * tokens at batch 1. Three ways: plain, prompt lookup with k = 4, and the model as its own draft
 * with k = 4 — every draft accepted, so it shows what a round costs at the best acceptance
 * (drafting with the target itself saves nothing; a real draft model is smaller). Per way:
 * tokens/s of the decode phase, target forwards per token, acceptance rate. Random weights
 * predict nothing, so prompt lookup's acceptance here is whatever the model's repetitions give;
 * the numbers measure the machinery, not a drafter's quality.
 */
final class SpeculativeBench {
    private SpeculativeBench() {}

    /** One way of decoding: its name, tokens/s of the decode phase, target forwards per token, acceptance (NaN for plain). */
    record Row(String way, double tokensPerSecond, double forwardsPerToken, double acceptance) {}

    static final int K = 4;

    static List<Row> measure(Backend backend, ModelConfig config, DType dtype, int promptLength, int tokens) {
        int[] prompt = new int[promptLength];
        for (int i = 0; i < promptLength; i++) prompt[i] = 11 + 7 * (i % 9) % config.vocabSize(); // a 9-token phrase, repeated
        List<Row> rows = new ArrayList<>();
        // The self-draft drafts with the target model itself (its own session): the weights are held once.
        try (DecoderModel model = DecoderModel.random(backend, config, dtype, 3)) {
            // Each way runs twice and the second run counts: the first warms the JIT and the caches.
            Generator.Result plain = null;
            for (int run = 0; run < 2; run++) plain = Generator.generate(model, List.of(prompt), tokens, SamplingOptions.greedy(), Set.of(), null);
            rows.add(new Row("plain", plain.decodeTokensPerSecond(), 1, Double.NaN));
            for (Drafter drafter : List.<Drafter>of(new PromptLookup(), new DraftModel(model, SamplingOptions.greedy()))) {
                try (drafter) {
                    SpeculativeGenerator.Result r = null;
                    for (int run = 0; run < 2; run++)
                        r = SpeculativeGenerator.generate(model, drafter, K, List.of(prompt), tokens, SamplingOptions.greedy(), Set.of(), null);
                    String way = drafter instanceof PromptLookup ? "prompt-lookup" : "self-draft";
                    rows.add(new Row(way + " k=" + K, r.decodeTokensPerSecond(), 1 / r.tokensPerTargetForward(), r.acceptanceRate()));
                }
            }
        }
        return rows;
    }

    static void print(String title, List<Row> rows) {
        System.out.println(title);
        System.out.println("| way | tokens/s | target forwards per token | acceptance |");
        System.out.println("|---|---:|---:|---:|");
        for (Row r : rows)
            System.out.printf(Locale.ROOT, "| %s | %.1f | %.3f | %s |%n", r.way(), r.tokensPerSecond(), r.forwardsPerToken(),
                    Double.isNaN(r.acceptance()) ? "—" : String.format(Locale.ROOT, "%.2f", r.acceptance()));
    }

    /** The GPU run's suite: Llama-1B-shaped in bf16, a 256-token prompt, 128 tokens (tiny under the host emulation). */
    static void run(Bench b) {
        ModelConfig config = b.tiny ? ModelConfig.llama(128, 64, 2, 1, 96) : ModelConfig.llama(128256, 2048, 16, 8, 8192);
        String name = b.tiny ? "llama-tiny" : "llama-1b";
        int prompt = b.tiny ? 18 : 256, tokens = b.tiny ? 12 : 128;
        List<Row> rows = measure(b.gpu, config, DType.BF16, prompt, tokens);
        print("speculative " + name + " batch=1 prompt=" + prompt + " tokens=" + tokens, rows);
        for (Row r : rows) {
            double usPerToken = 1e6 / r.tokensPerSecond();
            b.recordWithEnergy("speculative " + r.way() + " " + name, "batch=1,prompt=" + prompt + ",tokens=" + tokens, DType.BF16,
                    new Timing.Stats(usPerToken, usPerToken, usPerToken, tokens), 0, 0, 1, null);
        }
    }
}
