package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.io.SafetensorsWriter;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.Expect;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Every family on the CPU backend, from tiny random checkpoints: caches, batching and loading errors. */
class DecoderModelTest {
    @TempDir
    Path dir;

    static final int[] PROMPT = {5, 17, 3, 44, 9, 60, 1, 22, 30};

    /** Logits of one whole prompt equal those of a prefix, a continued chunk and then one-token decode steps. */
    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void chunkedPrefillAndDecodeMatchOnePass(TinyCheckpoints.Kind kind) throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, kind, 7), DType.F32);
             Session whole = model.newSession(1, 16);
             Session pieces = model.newSession(1, 16);
             Tensor expected = model.forward(whole, new int[] {0}, new int[][] {PROMPT}, true)) {
            assertEquals(PROMPT.length, expected.dim(0));
            int[][] chunks = {{5, 17, 3, 44}, {9, 60}, {1}, {22}, {30}};
            int row = 0;
            for (int[] chunk : chunks) {
                try (Tensor actual = model.forward(pieces, new int[] {0}, new int[][] {chunk}, true)) {
                    for (int i = 0; i < chunk.length; i++, row++) {
                        Tensor want = expected.slice(0, row, row + 1);
                        assertTrue(Compare.relativeError(actual.slice(0, i, i + 1), want) < 1e-5,
                                kind + " token " + row + ": " + Compare.relativeError(actual.slice(0, i, i + 1), want));
                    }
                }
            }
            assertEquals(PROMPT.length, pieces.length(0));
        }
    }

    /**
     * The session's decode step, replayed with its recorded scratch and its KV tables grown in
     * place, for two sequences of different lengths across a KV block boundary: every step's
     * logits equal those of one pass over the whole sequence.
     */
    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void replayedDecodeStepsMatchOnePass(TinyCheckpoints.Kind kind) throws IOException {
        int[][] prompts = {new int[Session.BLOCK_SIZE - 3], {7, 8}};
        for (int i = 0; i < prompts[0].length; i++) prompts[0][i] = (i * 7 + 3) % TinyCheckpoints.VOCAB;
        int steps = 6;
        int[][] drawn = new int[2][steps];
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, kind, 9), DType.F32);
             Session session = model.newSession(2, Session.BLOCK_SIZE + 8)) {
            model.forward(session, new int[] {0, 1}, prompts, false).close();
            for (int step = 0; step < steps; step++) {
                int[][] next = {{(step * 5 + 1) % TinyCheckpoints.VOCAB}, {(step * 3 + 2) % TinyCheckpoints.VOCAB}};
                drawn[0][step] = next[0][0];
                drawn[1][step] = next[1][0];
                // Even steps through forward (host logits), odd ones through decodeOnDevice (the session's tensor).
                boolean onDevice = step % 2 == 1;
                Tensor logits = onDevice ? model.decodeOnDevice(session, new int[] {next[0][0], next[1][0]})
                                         : model.forward(session, new int[] {0, 1}, next, false);
                try {
                    for (int b = 0; b < 2; b++) {
                        int[] whole = java.util.stream.IntStream.concat(java.util.Arrays.stream(prompts[b]),
                                java.util.Arrays.stream(drawn[b], 0, step + 1)).toArray();
                        try (Session alone = model.newSession(1, whole.length);
                             Tensor expected = model.forward(alone, new int[] {0}, new int[][] {whole}, false)) {
                            double error = Compare.relativeError(logits.slice(0, b, b + 1), expected);
                            assertTrue(error < 1e-5, kind + " step " + step + " sequence " + b + ": " + error);
                        }
                    }
                } finally {
                    if (!onDevice) logits.close();
                }
            }
            assertEquals("eager (CPU backend)", session.decodeMode());
            Expect.illegalArgument("one per sequence", () -> model.decodeOnDevice(session, new int[] {1}));
            Expect.illegalArgument("vocabulary", () -> model.decodeOnDevice(session, new int[] {1, TinyCheckpoints.VOCAB}));
            assertEquals(prompts[0].length + steps, session.length(0));
        }
    }

    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void aResetSlotTakesANewPromptWhileTheOtherDecodes(TinyCheckpoints.Kind kind) throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, kind, 13), DType.F32)) {
            checkReset(model, 1e-5);
        }
    }

    /**
     * Two slots decode together; slot 1 is reset and takes a new prompt (a prefill of its own)
     * while slot 0 waits, then both decode on: every decode step's logits equal those of a fresh
     * session over each sequence's whole history (slot 1's starting at its new prompt).
     */
    static void checkReset(DecoderModel model, double bound) {
        int[] first = {3, 9, 14, 2, 40}, second = {7, 8, 21}, replacement = {33, 5, 12, 60, 1, 17, 26};
        java.util.List<java.util.List<Integer>> history = java.util.List.of(new java.util.ArrayList<>(), new java.util.ArrayList<>());
        try (Session session = model.newSession(2, 48)) {
            model.forward(session, new int[] {0, 1}, new int[][] {first, second}, false).close();
            for (int t : first) history.get(0).add(t);
            for (int t : second) history.get(1).add(t);
            for (int step = 0; step < 8; step++) {
                if (step == 3) {
                    session.reset(1);
                    assertEquals(0, session.length(1));
                    model.forward(session, new int[] {1}, new int[][] {replacement}, false).close();
                    history.get(1).clear();
                    for (int t : replacement) history.get(1).add(t);
                }
                int[][] next = {{(step * 11 + 4) % TinyCheckpoints.VOCAB}, {(step * 7 + 9) % TinyCheckpoints.VOCAB}};
                history.get(0).add(next[0][0]);
                history.get(1).add(next[1][0]);
                try (Tensor logits = model.forward(session, new int[] {0, 1}, next, false)) {
                    for (int b = 0; b < 2; b++) {
                        int[] whole = history.get(b).stream().mapToInt(Integer::intValue).toArray();
                        try (Session alone = model.newSession(1, whole.length);
                             Tensor expected = model.forward(alone, new int[] {0}, new int[][] {whole}, false)) {
                            double error = Compare.relativeError(logits.slice(0, b, b + 1), expected);
                            assertTrue(error < bound, model.config().family() + " step " + step + " sequence " + b + ": " + error);
                        }
                    }
                }
            }
            Expect.illegalArgument("outside the session's 2", () -> session.reset(2));
        }
    }

    /** Greedy generation of a batch of prompts of different lengths equals generating each alone. */
    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void batchEqualsOneByOne(TinyCheckpoints.Kind kind) throws IOException {
        List<int[]> prompts = List.of(new int[] {4, 8, 15}, new int[] {16, 23, 42, 7, 9, 11, 13}, new int[] {50});
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, kind, 11), DType.F32)) {
            Generator.Result batch = Generator.generate(model, prompts, 5, SamplingOptions.greedy(), Set.of(), null);
            for (int i = 0; i < prompts.size(); i++) {
                Generator.Result alone = Generator.generate(model, List.of(prompts.get(i)), 5, SamplingOptions.greedy(), Set.of(), null);
                assertArrayEquals(alone.tokens().getFirst(), batch.tokens().get(i), kind + " sequence " + i);
            }
            assertEquals(4, batch.decodeSteps());
        }
    }

    @Test
    void generationStopsAtAStopToken() throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 3), DType.F32)) {
            int[] free = Generator.generate(model, List.of(PROMPT), 6, SamplingOptions.greedy(), Set.of(), null).tokens().getFirst();
            int[] stopped = Generator.generate(model, List.of(PROMPT), 6, SamplingOptions.greedy(), Set.of(free[2]), null).tokens().getFirst();
            int firstStop = 0;
            while (free[firstStop] != free[2]) firstStop++;
            assertArrayEquals(java.util.Arrays.copyOf(free, firstStop + 1), stopped);
        }
    }

    @Test
    void bf16MatchesF32WithinTheBf16Bound() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 5);
        try (DecoderModel f32 = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32);
             DecoderModel bf16 = DecoderModel.load(Backend.cpu(), checkpoint, DType.BF16);
             Session a = f32.newSession(1, 16); Session b = bf16.newSession(1, 16);
             Tensor expected = f32.forward(a, new int[] {0}, new int[][] {PROMPT}, true);
             Tensor actual = bf16.forward(b, new int[] {0}, new int[][] {PROMPT}, true)) {
            double error = Compare.relativeError(actual, expected);
            assertTrue(error < 5e-2 && error > 0, "bf16 vs f32: " + error);
        }
    }

    @Test
    void missingTensorIsNamed() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 1);
        rewrite(checkpoint, "model.layers.1.mlp.up_proj.weight", null);
        Expect.illegalArgument("model.layers.1.mlp.up_proj.weight", () -> DecoderModel.load(Backend.cpu(), checkpoint, DType.F32));
    }

    @Test
    void misshapenTensorIsNamed() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.MAMBA, 1);
        try (Tensor wrong = Tensor.allocateHost(DType.F32, 3, 3)) {
            rewrite(checkpoint, "backbone.layers.0.mixer.x_proj.weight", wrong);
        }
        Expect.illegalArgument("backbone.layers.0.mixer.x_proj.weight", () -> DecoderModel.load(Backend.cpu(), checkpoint, DType.F32));
    }

    @Test
    void unknownArchitectureIsNamed() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 1);
        Path config = checkpoint.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("LlamaForCausalLM", "GPT2LMHeadModel"));
        Expect.illegalArgument("GPT2LMHeadModel", () -> DecoderModel.load(Backend.cpu(), checkpoint, DType.F32));
    }

    @Test
    void shardedCheckpointLoadsLikeOneFile() throws IOException {
        Path one = TinyCheckpoints.write(dir.resolve("one"), TinyCheckpoints.Kind.LLAMA, 9);
        Path sharded = Files.createDirectories(dir.resolve("sharded"));
        Files.copy(one.resolve("config.json"), sharded.resolve("config.json"));
        StringBuilder index = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        try (SafetensorsFile file = SafetensorsFile.open(one.resolve("model.safetensors"))) {
            Map<String, Tensor> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
            for (String name : file.names()) {
                boolean early = name.startsWith("model.layers.0") || name.startsWith("model.embed");
                (early ? first : second).put(name, file.tensor(name));
                if (index.charAt(index.length() - 1) != '{') index.append(", ");
                index.append('"').append(name).append("\": \"model-0000").append(early ? 1 : 2).append("-of-00002.safetensors\"");
            }
            SafetensorsWriter.write(sharded.resolve("model-00001-of-00002.safetensors"), first);
            SafetensorsWriter.write(sharded.resolve("model-00002-of-00002.safetensors"), second);
        }
        Files.writeString(sharded.resolve("model.safetensors.index.json"), index.append("}}").toString());
        try (DecoderModel a = DecoderModel.load(Backend.cpu(), one, DType.F32); DecoderModel b = DecoderModel.load(Backend.cpu(), sharded, DType.F32);
             Session sa = a.newSession(1, 16); Session sb = b.newSession(1, 16);
             Tensor la = a.forward(sa, new int[] {0}, new int[][] {PROMPT}, false);
             Tensor lb = b.forward(sb, new int[] {0}, new int[][] {PROMPT}, false)) {
            assertArrayEquals(la.toFloatArray(), lb.toFloatArray());
        }
    }

    /** Mixtral experts saved stacked (gate_up_proj, down_proj under mlp.experts) load as the per-expert modules do. */
    @Test
    void stackedExpertsLoadLikePerExpertModules() throws IOException {
        Path perExpert = TinyCheckpoints.write(dir.resolve("per-expert"), TinyCheckpoints.Kind.MIXTRAL, 13);
        Path stacked = Files.createDirectories(dir.resolve("stacked"));
        Files.copy(perExpert.resolve("config.json"), stacked.resolve("config.json"));
        Map<String, Tensor> out = new LinkedHashMap<>();
        try (SafetensorsFile in = SafetensorsFile.open(perExpert.resolve("model.safetensors"))) {
            for (String name : in.names()) {
                if (name.contains("block_sparse_moe.experts.")) continue;
                out.put(name.replace("block_sparse_moe.", "mlp."), in.tensor(name));
            }
            for (int layer = 0; layer < 2; layer++) {
                String p = "model.layers." + layer + ".block_sparse_moe.experts.";
                float[] gateUp = new float[4 * 96 * 128], down = new float[4 * 128 * 48];
                for (int e = 0; e < 4; e++) {
                    System.arraycopy(in.tensor(p + e + ".w1.weight").toFloatArray(), 0, gateUp, e * 96 * 128, 48 * 128);
                    System.arraycopy(in.tensor(p + e + ".w3.weight").toFloatArray(), 0, gateUp, e * 96 * 128 + 48 * 128, 48 * 128);
                    System.arraycopy(in.tensor(p + e + ".w2.weight").toFloatArray(), 0, down, e * 128 * 48, 128 * 48);
                }
                String q = "model.layers." + layer + ".mlp.experts.";
                out.put(q + "gate_up_proj", Tensor.fromFloats(DType.F32, gateUp, 4, 96, 128));
                out.put(q + "down_proj", Tensor.fromFloats(DType.F32, down, 4, 128, 48));
            }
            SafetensorsWriter.write(stacked.resolve("model.safetensors"), out);
        }
        try (DecoderModel a = DecoderModel.load(Backend.cpu(), perExpert, DType.F32);
             DecoderModel b = DecoderModel.load(Backend.cpu(), stacked, DType.F32);
             Session sa = a.newSession(1, 16); Session sb = b.newSession(1, 16);
             Tensor la = a.forward(sa, new int[] {0}, new int[][] {PROMPT}, true);
             Tensor lb = b.forward(sb, new int[] {0}, new int[][] {PROMPT}, true)) {
            assertArrayEquals(la.toFloatArray(), lb.toFloatArray());
        }
    }

    @Test
    void badStepsAreRejected() throws IOException {
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 1), DType.F32);
             Session session = model.newSession(2, 4)) {
            Expect.illegalArgument("vocabulary", () -> model.forward(session, new int[] {0}, new int[][] {{TinyCheckpoints.VOCAB}}, false));
            Expect.illegalArgument("sequence 2", () -> model.forward(session, new int[] {2}, new int[][] {{1}}, false));
            Expect.illegalArgument("holds 4", () -> model.forward(session, new int[] {0}, new int[][] {{1, 2, 3, 4, 5}}, false));
            Expect.illegalArgument("twice", () -> model.forward(session, new int[] {1, 1}, new int[][] {{1}, {2}}, false));
            assertEquals(0, session.length(0));
        }
    }

    /** Rewrites model.safetensors with {@code name} dropped (replacement null) or replaced. */
    private static void rewrite(Path checkpoint, String name, Tensor replacement) throws IOException {
        Path file = checkpoint.resolve("model.safetensors");
        Map<String, Tensor> copies = new LinkedHashMap<>();
        try (SafetensorsFile in = SafetensorsFile.open(file)) {
            for (String n : in.names()) {
                Tensor t = in.tensor(n);
                copies.put(n, Tensor.fromFloats(t.dtype(), t.toFloatArray(), t.shape()));
            }
        }
        copies.remove(name).close();
        if (replacement != null) copies.put(name, replacement);
        SafetensorsWriter.write(file, copies);
        copies.forEach((n, t) -> { if (t != replacement) t.close(); });
    }
}
