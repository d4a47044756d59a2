package dev.isthmus.scan;

import static dev.isthmus.testing.Expect.illegalArgument;
import static dev.isthmus.scan.SelectiveScanTest.copy;
import static dev.isthmus.scan.SelectiveScanTest.range;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.RandomTensors;
import dev.isthmus.tensor.Tensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The CPU path of the causal conv1d: a hand-computed case, the state identities, every argument check. */
class CausalConv1dTest {
    private static final Backend CPU = Backend.cpu();

    @Test
    void matchesAHandComputedConvolution() {
        // W = 3, weight [1, 2, 3], bias 10, history [4, 5], x [1, 2]:
        //   out0 = 10 + 1*4 + 2*5 + 3*1 = 27;  out1 = 10 + 1*5 + 2*1 + 3*2 = 23;  final state [1, 2]
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {1, 2}, 1, 1, 2);
             Tensor w = Tensor.fromFloats(DType.F32, new float[] {1, 2, 3}, 1, 3);
             Tensor bias = Tensor.fromFloats(DType.F32, new float[] {10}, 1);
             Tensor history = Tensor.fromFloats(DType.F32, new float[] {4, 5}, 1, 1, 2);
             Tensor out = Tensor.allocateHost(DType.F32, 1, 1, 2);
             Tensor silu = Tensor.allocateHost(DType.F32, 1, 1, 2);
             Tensor last = Tensor.allocateHost(DType.F32, 1, 1, 2)) {
            CausalConv1d.apply(CPU, out, last, x, w, bias, history, false);
            assertArrayEquals(new float[] {27, 23}, out.toFloatArray());
            assertArrayEquals(new float[] {1, 2}, last.toFloatArray());
            CausalConv1d.apply(CPU, silu, null, x, w, null, null, true); // zeros before t = 0: 3, 2 + 6
            assertArrayEquals(new float[] {(float) (3 / (1 + Math.exp(-3))), (float) (8 / (1 + Math.exp(-8)))}, silu.toFloatArray(), 1e-5f);
        }
    }

    @Test
    void aSequenceShorterThanTheHistoryKeepsPartOfTheOldState() {
        // W = 4, history [1, 2, 3], one new input 7: the final state is [2, 3, 7], written in place.
        try (Tensor x = Tensor.fromFloats(DType.F32, new float[] {7}, 1, 1, 1);
             Tensor w = Tensor.fromFloats(DType.F32, new float[] {1, 1, 1, 1}, 1, 4);
             Tensor state = Tensor.fromFloats(DType.F32, new float[] {1, 2, 3}, 1, 1, 3);
             Tensor out = Tensor.allocateHost(DType.F32, 1, 1, 1)) {
            CausalConv1d.apply(CPU, out, state, x, w, null, state, false);
            assertArrayEquals(new float[] {13}, out.toFloatArray());
            assertArrayEquals(new float[] {2, 3, 7}, state.toFloatArray());
        }
    }

    @Test
    void anInitialStateAndTheSecondHalfEqualTheWhole() {
        Random random = new Random(41);
        int batch = 2, channels = 3, length = 9, split = 2, width = 4;
        try (Tensor x = RandomTensors.normal(random, DType.F32, 1f, batch, channels, length);
             Tensor w = RandomTensors.normal(random, DType.F32, 1f, channels, width);
             Tensor bias = RandomTensors.normal(random, DType.F32, 1f, channels);
             Tensor out = Tensor.allocateHost(DType.F32, batch, channels, length);
             Tensor last = Tensor.allocateHost(DType.F32, batch, channels, width - 1);
             Tensor state = Tensor.allocateHost(DType.F32, batch, channels, width - 1);
             Tensor x1 = range(x, 0, split); Tensor x2 = range(x, split, length);
             Tensor out1 = Tensor.allocateHost(DType.F32, batch, channels, split);
             Tensor out2 = Tensor.allocateHost(DType.F32, batch, channels, length - split)) {
            CausalConv1d.apply(CPU, out, last, x, w, bias, null, true);
            CausalConv1d.apply(CPU, out1, state, x1, w, bias, null, true);
            CausalConv1d.apply(CPU, out2, state, x2, w, bias, state, true);
            try (Tensor whole1 = range(out, 0, split); Tensor whole2 = range(out, split, length)) {
                assertArrayEquals(whole1.toFloatArray(), out1.toFloatArray());
                assertArrayEquals(whole2.toFloatArray(), out2.toFloatArray());
            }
            assertArrayEquals(last.toFloatArray(), state.toFloatArray());
        }
    }

    @Test
    void tokenUpdatesEqualTheSequence() {
        Random random = new Random(42);
        int batch = 2, channels = 5, length = 6;
        for (int width : new int[] {1, 2, 4, 8}) {
            try (Tensor x = RandomTensors.normal(random, DType.BF16, 1f, batch, channels, length);
                 Tensor w = RandomTensors.normal(random, DType.BF16, 1f, channels, width);
                 Tensor history = RandomTensors.normal(random, DType.BF16, 1f, batch, channels, width - 1);
                 Tensor out = Tensor.allocateHost(DType.BF16, batch, channels, length);
                 Tensor last = Tensor.allocateHost(DType.BF16, batch, channels, width - 1);
                 Tensor state = copy(history);
                 Tensor token = Tensor.allocateHost(DType.BF16, batch, channels)) {
                CausalConv1d.apply(CPU, out, last, x, w, null, history, true);
                float[] expected = out.toFloatArray();
                for (int t = 0; t < length; t++) {
                    try (Tensor xt = range(x, t, t + 1).reshape(batch, channels)) {
                        CausalConv1d.update(CPU, token, width == 1 ? null : state, xt, w, null, true);
                    }
                    float[] got = token.toFloatArray();
                    for (int i = 0; i < batch * channels; i++) assertEquals(expected[i * length + t], got[i], "width " + width + ", step " + t);
                }
                assertArrayEquals(last.toFloatArray(), state.toFloatArray(), "width " + width);
            }
        }
    }

    @Test
    void rejectsBadArguments() {
        try (Tensor x = Tensor.allocateHost(DType.F32, 2, 3, 5);
             Tensor out = Tensor.allocateHost(DType.F32, 2, 3, 5);
             Tensor w = Tensor.allocateHost(DType.F32, 3, 4);
             Tensor wideW = Tensor.allocateHost(DType.F32, 3, 9);
             Tensor wrongW = Tensor.allocateHost(DType.F32, 2, 4);
             Tensor halfW = Tensor.allocateHost(DType.F16, 3, 4);
             Tensor bias = Tensor.allocateHost(DType.F32, 4);
             Tensor state = Tensor.allocateHost(DType.F32, 2, 3, 3);
             Tensor wrongState = Tensor.allocateHost(DType.F32, 2, 3, 4);
             Tensor token = Tensor.allocateHost(DType.F32, 2, 3)) {
            illegalArgument("width 9", () -> CausalConv1d.apply(CPU, out, null, x, wideW, null, null, false));
            illegalArgument("weight", () -> CausalConv1d.apply(CPU, out, null, x, wrongW, null, null, false));
            illegalArgument("weight", () -> CausalConv1d.apply(CPU, out, null, x, halfW, null, null, false));
            illegalArgument("bias", () -> CausalConv1d.apply(CPU, out, null, x, w, bias, null, false));
            illegalArgument("initialState", () -> CausalConv1d.apply(CPU, out, null, x, w, null, wrongState, false));
            illegalArgument("finalState", () -> CausalConv1d.apply(CPU, out, wrongState, x, w, null, null, false));
            illegalArgument("out overlaps x", () -> CausalConv1d.apply(CPU, x, null, x, w, null, null, false));
            try (Tensor wide = Tensor.allocateHost(DType.F32, 31)) { // two views of it, one element apart
                Tensor a = wide.slice(0, 0, 30).reshape(2, 3, 5), b = wide.slice(0, 1, 31).reshape(2, 3, 5);
                illegalArgument("out overlaps x", () -> CausalConv1d.apply(CPU, b, null, a, w, null, null, false));
            }
            illegalArgument("out", () -> CausalConv1d.apply(CPU, token, null, x, w, null, null, false));
            illegalArgument("convState is null", () -> CausalConv1d.update(CPU, token, null, token, w, null, false));
            illegalArgument("convState", () -> CausalConv1d.update(CPU, token, wrongState, token, w, null, false));
            illegalArgument("x", () -> CausalConv1d.update(CPU, token, state, x, w, null, false));
            illegalArgument("backend", () -> CausalConv1d.update(null, token, state, token, w, null, false));
        }
    }
}
