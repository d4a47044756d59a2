package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.isthmus.model.TinyModels;
import dev.isthmus.testing.GpuTest;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;

/** `validate` on a tiny checkpoint: CUDA against the CPU reference, in f32 and bf16. */
class ModelCommandsGpuTest {
    @TempDir
    Path dir;

    @GpuTest
    void validatePassesOnATinyCheckpoint() throws IOException {
        Path model = TinyModels.llama(dir);
        for (String dtype : new String[] {"f32", "bf16"}) {
            StringWriter out = new StringWriter(), err = new StringWriter();
            int status = Main.run(new PrintWriter(out), new PrintWriter(err), "validate", "--model", model.toString(), "--prompt", "w5 w17 w3",
                    "--tokens", "4", "--dtype", dtype);
            assertEquals(0, status, out + "\n" + err);
            assertTrue(out.toString().contains("against the CPU reference in " + dtype) && out.toString().trim().endsWith("ok"), out.toString());
            assertEquals(dtype.equals("bf16"), out.toString().contains("distance from the f32 reference"), out.toString());
        }
    }
}
