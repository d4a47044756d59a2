package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Mamba-2 fixture on a prompt longer than a prompt piece ({@link Mamba2Block#PIECE}): the conv
 * and SSM states carried from piece to piece and from one forward call to the next give the logits
 * of one call over the whole prompt.
 */
class Mamba2ModelTest {
    @Test
    void piecesAndCallsContinueTheStates() throws IOException {
        int length = Mamba2Block.PIECE + 61, split = 100;
        Random random = new Random(5);
        try (DecoderModel model = DecoderModel.load(Backend.cpu(), GoldenFixtures.require("mamba2"), DType.F32);
             Session whole = model.newSession(1, 512);
             Session parts = model.newSession(1, 512)) {
            int[] prompt = new int[length];
            for (int i = 0; i < length; i++) prompt[i] = 3 + random.nextInt(model.config().vocabSize() - 3);
            int[] head = java.util.Arrays.copyOfRange(prompt, 0, split), tail = java.util.Arrays.copyOfRange(prompt, split, length);
            try (Tensor all = model.forward(whole, new int[] {0}, new int[][] {prompt}, true);
                 Tensor first = model.forward(parts, new int[] {0}, new int[][] {head}, true);
                 Tensor rest = model.forward(parts, new int[] {0}, new int[][] {tail}, true)) {
                Compare.Result a = Compare.check("first call", first, all.slice(0, 0, split), 1e-5);
                Compare.Result b = Compare.check("second call", rest, all.slice(0, split, length), 1e-5);
                assertTrue(a.withinBound(), a.toString());
                assertTrue(b.withinBound(), b.toString());
            }
        }
    }
}
