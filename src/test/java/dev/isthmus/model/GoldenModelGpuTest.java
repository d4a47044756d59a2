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
 * exact; bf16 within a multiple of the bf16 element bound, its greedy tokens not compared (a near
 * tie may flip). The multiple is what bf16 itself costs these models, not the kernels: the CPU
 * reference run in bf16 is 1.3-1.9e-2 off transformers' fp32 logits for the attention families
 * and for Granite 4.0-H (1.1-1.3e-2),
 * 2.0-2.9e-2 for Phi-3 (LongRoPE's attention factor scales every score by its square), 3.5-4e-2
 * for Mamba, Mamba-2 and Jamba, where exp(delta * A) in the scan amplifies the rounding of delta, and
 * 6.1e-2 for Qwen3-MoE.
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
            int multiple = switch (family) {
                case "mamba", "mamba2", "jamba" -> 6;
                case "phi3", "phi3_long" -> 4;
                case "qwen3_moe" -> 8;
                default -> 3;
            };
            GoldenFixtures.check(family, gpu, DType.BF16, multiple * Compare.boundFor(DType.BF16), false);
        }
    }

    /**
     * The quantized GGUF fixtures in bf16, which keep their quantized matrices on the device for the
     * tensor-core tiles (prompts) and the GEMV, and Mixtral's experts for the quantized expert GEMMs;
     * the bound is the bf16 one above.
     */
    @ParameterizedTest
    @FieldSource("dev.isthmus.model.GgufModelTest#FAMILIES")
    void cudaBf16MatchesTransformersFromGguf(String family) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            int multiple = family.equals("mamba") ? 6 : 3;
            GoldenFixtures.check(family, GgufModelTest.fixture(family + ".gguf"), GgufModelTest.fixture(family + ".reference.safetensors"),
                    gpu, DType.BF16, multiple * Compare.boundFor(DType.BF16), false);
        }
    }

    /** The quantized GGUF fixtures (see GgufModelTest) on the CUDA backend in fp32. */
    @ParameterizedTest
    @FieldSource("dev.isthmus.model.GgufModelTest#FAMILIES")
    void cudaF32MatchesTransformersFromGguf(String family) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            GoldenFixtures.check(family, GgufModelTest.fixture(family + ".gguf"), GgufModelTest.fixture(family + ".reference.safetensors"),
                    gpu, DType.F32, 1e-4, true);
        }
    }
}
