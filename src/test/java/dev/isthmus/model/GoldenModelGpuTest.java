package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.testing.RequiresGpu;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import java.io.IOException;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.FieldSource;

/**
 * Each family on the CUDA backend against transformers: fp32 within 1e-4 with the greedy tokens
 * exact; bf16 within three times the bf16 element bound (rounding compounds over the layers), its
 * greedy tokens not compared (a near tie may flip).
 */
@Tag("gpu")
@ExtendWith(RequiresGpu.class)
class GoldenModelGpuTest {
    static final java.util.List<String> FAMILIES = GoldenFixtures.FAMILIES;

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void cudaF32MatchesTransformers(String family) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            GoldenFixtures.check(family, gpu, DType.F32, 1e-4, true);
        }
    }

    @ParameterizedTest
    @FieldSource("FAMILIES")
    void cudaBf16MatchesTransformers(String family) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            GoldenFixtures.check(family, gpu, DType.BF16, 3 * Compare.boundFor(DType.BF16), false);
        }
    }
}
