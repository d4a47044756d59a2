package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import dev.isthmus.testing.RequiresGpu;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Every family on CUDA against the CPU backend, on tiny random checkpoints: prefill logits, decode logits, greedy batches. */
@Tag("gpu")
@ExtendWith(RequiresGpu.class)
class DecoderModelGpuTest {
    @TempDir
    Path dir;

    /**
     * Quantizing on load: on CUDA the attention and FFN matrices stay quantized on the device (a
     * third of the f32 bytes held) and compute through the quantized GEMV what the CPU computes with
     * the same weights dequantized.
     */
    @Test
    void quantizedOnLoadStaysQuantizedOnCuda() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 9);
        int[] prompt = {4, 8, 15, 16, 23, 42, 7, 9, 11, 13, 2, 3, 5, 33, 34, 35, 36, 37, 38};
        try (Backend gpu = Backend.cuda(0)) {
            for (GgmlType type : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
                try (DecoderModel cpu = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32, type);
                     DecoderModel cuda = DecoderModel.load(gpu, checkpoint, DType.F32, type);
                     Session a = cpu.newSession(1, 32); Session b = cuda.newSession(1, 32)) {
                    assertEquals(cpu.weightBytes(), cuda.weightBytes(), type + ": the same weights in the same format");
                    assertTrue(cuda.heldWeightBytes() < 0.5 * cpu.heldWeightBytes(),
                            type + ": held on CUDA " + cuda.heldWeightBytes() + " bytes, on the CPU (dequantized) " + cpu.heldWeightBytes());
                    try (Tensor actual = cuda.forward(b, new int[] {0}, new int[][] {prompt}, true)) {
                        compare(type + " prefill", actual, cpu.forward(a, new int[] {0}, new int[][] {prompt}, true), 1e-4);
                    }
                    int[] greedyCpu = Generator.generate(cpu, List.of(prompt), 4, SamplingOptions.greedy(), Set.of(), null).tokens().getFirst();
                    int[] greedyCuda = Generator.generate(cuda, List.of(prompt), 4, SamplingOptions.greedy(), Set.of(), null).tokens().getFirst();
                    assertArrayEquals(greedyCpu, greedyCuda, type + " greedy tokens");
                }
            }
        }
    }

    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void cudaMatchesCpu(TinyCheckpoints.Kind kind) throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, kind, 21);
        List<int[]> prompts = List.of(new int[] {4, 8, 15, 16, 23, 42, 7, 9, 11, 13, 2, 3, 5, 33, 34, 35, 36, 37}, new int[] {50, 1});
        try (Backend gpu = Backend.cuda(0);
             DecoderModel cpu = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32)) {
            for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
                double bound = dtype == DType.F32 ? 1e-4 : 3 * Compare.boundFor(DType.BF16);
                try (DecoderModel cuda = DecoderModel.load(gpu, checkpoint, dtype);
                     Session a = cpu.newSession(2, 48); Session b = cuda.newSession(2, 48); Session c = cuda.newSession(2, 48)) {
                    c.setCudaGraph(false);
                    b.setStepTiming(true);
                    int[] seqs = {0, 1};
                    int[][] tokens = prompts.toArray(int[][]::new);
                    try (Tensor prefill = cuda.forward(b, seqs, tokens, true)) {
                        compare(kind + " " + dtype + " prefill", prefill, cpu.forward(a, seqs, tokens, true), bound);
                    }
                    cuda.forward(c, seqs, tokens, true).close();
                    // Decode steps across a KV block boundary: the first runs directly, the second is
                    // captured as a CUDA graph, the rest replay it; kernel by kernel (session c) must give
                    // the same bits as the graph.
                    for (int step = 0; step < 18; step++) {
                        int[][] next = {{(6 + step) % TinyCheckpoints.VOCAB}, {(7 + 3 * step) % TinyCheckpoints.VOCAB}};
                        try (Tensor graph = cuda.forward(b, seqs, next, false); Tensor eager = cuda.forward(c, seqs, next, false)) {
                            assertArrayEquals(eager.toFloatArray(), graph.toFloatArray(), kind + " " + dtype + " step " + step + ": graph vs eager");
                            compare(kind + " " + dtype + " decode step " + step, graph, cpu.forward(a, seqs, next, false), bound);
                        }
                    }
                    assertEquals("cuda graph", b.decodeMode());
                    assertTrue(b.lastStepDeviceMicros() > 0, "the timed step's device time");
                    assertEquals("eager (CUDA graphs turned off)", c.decodeMode());
                }
                if (dtype == DType.F32) {
                    try (DecoderModel cuda = DecoderModel.load(gpu, checkpoint, dtype)) {
                        var expected = Generator.generate(cpu, prompts, 6, SamplingOptions.greedy(), Set.of(), null).tokens();
                        var actual = Generator.generate(cuda, prompts, 6, SamplingOptions.greedy(), Set.of(), null).tokens();
                        for (int i = 0; i < prompts.size(); i++) assertArrayEquals(expected.get(i), actual.get(i), kind + " greedy " + i);
                    }
                }
            }
        }
    }

    /** A slot reset and given a new prompt between decode steps, with the decode step a CUDA graph. */
    @ParameterizedTest
    @EnumSource(TinyCheckpoints.Kind.class)
    void aResetSlotTakesANewPromptUnderTheGraph(TinyCheckpoints.Kind kind) throws IOException {
        try (Backend gpu = Backend.cuda(0); DecoderModel model = DecoderModel.load(gpu, TinyCheckpoints.write(dir, kind, 13), DType.F32)) {
            DecoderModelTest.checkReset(model, 1e-4);
        }
    }

    /**
     * Sampled generation draws on the device inside the decode step's CUDA graph, from the counter
     * generator the CPU backend uses: the same tokens as the CPU's (f32), so every replay drew anew.
     */
    @ParameterizedTest
    @EnumSource(value = TinyCheckpoints.Kind.class, names = {"LLAMA", "JAMBA"})
    void sampledGenerationDrawsWhatTheCpuDraws(TinyCheckpoints.Kind kind) throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, kind, 13);
        List<int[]> prompts = List.of(new int[] {4, 8, 15, 16, 23, 42}, new int[] {50, 1, 2});
        SamplingOptions sampling = new SamplingOptions(0.9f, 20, 0.95f, 0.02f, 7);
        try (Backend gpu = Backend.cuda(0); DecoderModel cpu = DecoderModel.load(Backend.cpu(), checkpoint, DType.F32);
             DecoderModel cuda = DecoderModel.load(gpu, checkpoint, DType.F32)) {
            Generator.Result expected = Generator.generate(cpu, prompts, 10, sampling, Set.of(), null);
            Generator.Result actual = Generator.generate(cuda, prompts, 10, sampling, Set.of(), null);
            assertEquals("cuda graph", actual.decodeMode());
            for (int s = 0; s < prompts.size(); s++) assertArrayEquals(expected.tokens().get(s), actual.tokens().get(s), kind + " sequence " + s);
            assertTrue(java.util.Arrays.stream(expected.tokens().getFirst()).distinct().count() > 2, "the draws vary");
        }
    }

    private static void compare(String what, Tensor actual, Tensor expected, double bound) {
        try (expected) {
            double error = Compare.relativeError(actual, expected);
            assertTrue(error <= bound, what + ": relative error " + error + " over " + bound);
        }
    }
}
