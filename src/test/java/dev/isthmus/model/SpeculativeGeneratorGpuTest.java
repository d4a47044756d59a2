package dev.isthmus.model;

import dev.isthmus.backend.Backend;
import dev.isthmus.tensor.DType;
import dev.isthmus.testing.RequiresGpu;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Speculative decoding on CUDA in f32: greedy output equal to plain greedy decoding with each
 * drafter (an attention model, and the hybrid whose Mamba states are saved and restored on the
 * device), and a rollback that leaves no trace.
 */
@Tag("gpu")
@ExtendWith(RequiresGpu.class)
class SpeculativeGeneratorGpuTest {
    @TempDir
    Path dir;

    @ParameterizedTest
    @EnumSource(value = TinyCheckpoints.Kind.class, names = {"LLAMA", "JAMBA"})
    void greedyEqualsPlainGreedyWithEveryDrafter(TinyCheckpoints.Kind kind) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            SpeculativeGeneratorTest.checkGreedy(gpu, dir, kind, DType.F32, 3);
        }
    }

    @ParameterizedTest
    @EnumSource(value = TinyCheckpoints.Kind.class, names = {"LLAMA", "MAMBA", "JAMBA"})
    void aRollbackLeavesNoTrace(TinyCheckpoints.Kind kind) throws IOException {
        try (Backend gpu = Backend.cuda(0)) {
            SpeculativeGeneratorTest.checkRollback(gpu, dir, kind, 1e-5);
        }
    }
}
