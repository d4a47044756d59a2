package dev.isthmus.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.backend.Backend;
import dev.isthmus.io.SafetensorsFile;
import dev.isthmus.quant.GgmlType;
import dev.isthmus.tensor.DType;
import dev.isthmus.testing.TestResources;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The quantize report on the CPU, on tiny random checkpoints: bytes counted from the checkpoint, errors ordered as the formats' precision. */
class QuantizeReportTest {
    @TempDir
    Path dir;

    private static final int[] PROMPT = {4, 8, 15, 16, 23, 42, 7, 9};

    @Test
    void eachPrecisionCountsItsBytesAndItsError() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.MIXTRAL, 5);
        List<QuantizeReport.Row> all = QuantizeReport.run(Backend.cpu(), checkpoint, PROMPT, 6, QuantizeReport.precisions(Backend.cpu()));
        assertEquals(15, all.size(), "five precisions, each with three KV caches");
        List<QuantizeReport.Row> rows = all.stream().filter(r -> r.kvCache().equals(r.precision().dtype().label())).toList();
        assertEquals(List.of("f32", "bf16", "q8_0", "q4_0", "q4_k"), rows.stream().map(r -> r.precision().label()).toList());
        QuantizeReport.Row f32 = rows.get(0), bf16 = rows.get(1), q8 = rows.get(2), q4 = rows.get(3), q4k = rows.get(4);
        long elements = 0, q8Bytes = 0, q4Bytes = 0;
        try (SafetensorsFile file = SafetensorsFile.open(checkpoint.resolve("model.safetensors"))) {
            for (String name : file.names()) {
                long[] shape = file.entry(name).shape();
                long n = Arrays.stream(shape).reduce(1, Math::multiplyExact);
                elements += n;
                boolean matrix = WeightSource.quantizes(GgmlType.Q8_0, name, shape);
                q8Bytes += matrix ? n / 32 * 34 : 4 * n;
                q4Bytes += matrix ? n / 32 * 18 : 4 * n;
            }
        }
        assertEquals(4 * elements, f32.weightBytes(), "f32: every tensor of the checkpoint, 4 bytes an element");
        assertEquals(2 * elements, bf16.weightBytes(), "bf16: 2 bytes an element");
        assertEquals(q8Bytes, q8.weightBytes(), "q8_0: 34 bytes a block of 32 for the matrices");
        assertEquals(q4Bytes, q4.weightBytes(), "q4_0: 18 bytes a block of 32 for the matrices");
        assertTrue(q4Bytes < q8Bytes && q8Bytes < 4 * elements);
        // A K-quant block is 256 wide: no matrix of this model has whole blocks, so nothing is quantized.
        assertEquals(f32.weightBytes(), q4k.weightBytes());
        assertEquals(0, q4k.logitsRelativeError());
        // On the CPU the quantized matrices are dequantized on load: held in f32.
        assertEquals(4 * elements, q4.heldBytes());

        assertEquals(0, f32.logitsRelativeError());
        assertEquals(6, f32.greedyAgreeing());
        assertTrue(bf16.logitsRelativeError() > 1e-4 && bf16.logitsRelativeError() < 3e-2, "bf16 error " + bf16.logitsRelativeError());
        assertTrue(q8.logitsRelativeError() > 1e-5 && q8.logitsRelativeError() < q4.logitsRelativeError(),
                "q8_0 " + q8.logitsRelativeError() + " then q4_0 " + q4.logitsRelativeError());
        assertTrue(q4.logitsRelativeError() < 0.2, "q4_0 error " + q4.logitsRelativeError());
        // 2 layers x K and V x 1 KV head x 64, in the dtype computed in.
        assertEquals(2 * 2 * 64 * 4, f32.kvBytesPerToken());
        assertEquals(2 * 2 * 64 * 2, bf16.kvBytesPerToken());
        for (QuantizeReport.Row r : all) {
            assertTrue(r.decodeMillisPerToken() > 0, r.toString());
            assertEquals(6, r.greedyTokens());
        }
        // f32 weights with quantized caches: one byte an element, int8 with an f32 scale per (layer, K or V, kv head).
        QuantizeReport.Row int8 = all.get(1), fp8 = all.get(2);
        assertEquals(List.of("f32", "int8"), List.of(int8.precision().label(), int8.kvCache()));
        assertEquals(2 * 2 * 64 + 2 * 2 * 4, int8.kvBytesPerToken());
        assertEquals("fp8", fp8.kvCache());
        assertEquals(2 * 2 * 64, fp8.kvBytesPerToken());
        assertTrue(int8.logitsRelativeError() > 0 && int8.logitsRelativeError() < 0.1, "int8 cache error " + int8.logitsRelativeError());
        assertTrue(fp8.logitsRelativeError() > 0 && fp8.logitsRelativeError() < 0.3, "fp8 cache error " + fp8.logitsRelativeError());
    }

    @Test
    void mambaLayersKeepNoKvCache() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.MAMBA, 3);
        List<QuantizeReport.Row> rows = QuantizeReport.run(Backend.cpu(), checkpoint, PROMPT, 2,
                List.of(new QuantizeReport.Precision("f32", DType.F32, null)));
        assertEquals(0, rows.getFirst().kvBytesPerToken());
    }

    @Test
    void badArgumentsAreRefusedByName() throws IOException {
        Path checkpoint = TinyCheckpoints.write(dir, TinyCheckpoints.Kind.LLAMA, 1);
        List<QuantizeReport.Precision> precisions = QuantizeReport.precisions(Backend.cpu());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizeReport.run(Backend.cpu(), checkpoint, PROMPT, 1, precisions))
                .getMessage().contains("tokens must be >= 2"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizeReport.run(Backend.cpu(), checkpoint, new int[0], 4, precisions))
                .getMessage().contains("no tokens"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizeReport.run(Backend.cpu(), checkpoint, PROMPT, 4, List.of()))
                .getMessage().contains("no precisions"));
        Path gguf = TestResources.folder("gguf", List.of("llama.gguf"), "").resolve("llama.gguf");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantizeReport.run(Backend.cpu(), gguf, PROMPT, 4, precisions))
                .getMessage().contains("GGUF file"));
    }
}
