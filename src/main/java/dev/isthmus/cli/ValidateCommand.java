package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import dev.isthmus.model.DecoderModel;
import dev.isthmus.model.Generator;
import dev.isthmus.model.SamplingOptions;
import dev.isthmus.model.Session;
import dev.isthmus.model.Tokenizer;
import dev.isthmus.tensor.Compare;
import dev.isthmus.tensor.DType;
import dev.isthmus.tensor.Tensor;
import java.io.PrintWriter;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Runs a checkpoint on CUDA and on the CPU reference with the same prompt and compares: the logits
 * of every prompt position (relative error against a bound) and the greedy continuation. In bf16
 * or f16 the CPU reference runs in that dtype too, so the check measures the kernels and not the
 * dtype; the distance of each from the f32 reference is printed beside it, for information.
 */
@Command(name = "validate", description = "Compare a checkpoint's CUDA run with the CPU reference on one prompt.")
final class ValidateCommand extends ModelCommand {
    @Mixin
    QuantizeOption quantize;

    @Option(names = "--prompt", defaultValue = "The quick brown fox jumps over the lazy dog.", description = "prompt (default: ${DEFAULT-VALUE})")
    String prompt;

    @Option(names = "--tokens", defaultValue = "8", description = "greedy tokens to compare (default ${DEFAULT-VALUE})")
    int tokens;

    @Option(names = "--dtype", defaultValue = "bf16", description = "compute dtype of both runs (default ${DEFAULT-VALUE})")
    String dtypeName;

    @Override
    int run(PrintWriter out, PrintWriter err) throws Exception {
        try (Backend gpu = Main.backend("cuda"); Tokenizer tokenizer = Tokenizer.load(model)) {
            DType dtype = dtype(dtypeName, gpu);
            if (tokens < 1) throw new IllegalArgumentException("--tokens must be >= 1, got " + tokens);
            int[] ids = tokenizer.encode(prompt);
            if (ids.length == 0) throw new IllegalArgumentException("--prompt encodes to no tokens");
            // Rounding compounds over the layers: three times the element bound of the dtype.
            double bound = dtype == DType.F32 ? 1e-4 : 3 * Compare.boundFor(dtype);
            try (DecoderModel cpu = DecoderModel.load(Backend.cpu(), model, dtype, quantize.type());
                 DecoderModel cuda = DecoderModel.load(gpu, model, dtype, quantize.type());
                 Tensor expected = logits(cpu, ids); Tensor actual = logits(cuda, ids)) {
                out.println(cuda.config().family().name().toLowerCase() + ", " + ids.length + " prompt tokens, " + gpu.describe() + " "
                        + dtype.label() + " against the CPU reference in " + dtype.label());
                Compare.Result logits = Compare.check("logits", actual, expected, bound);
                out.println("  " + logits);
                if (dtype != DType.F32) {
                    try (DecoderModel exact = DecoderModel.load(Backend.cpu(), model, DType.F32, quantize.type()); Tensor f32 = logits(exact, ids)) {
                        out.printf(Locale.ROOT, "  distance from the f32 reference (what %s itself costs): cuda %.3e, cpu %.3e%n", dtype.label(),
                                Compare.relativeError(actual, f32), Compare.relativeError(expected, f32));
                    }
                }
                int[] reference = greedy(cpu, ids), ours = greedy(cuda, ids);
                int same = 0;
                while (same < reference.length && same < ours.length && reference[same] == ours[same]) same++;
                out.printf("  greedy: %d of %d tokens agree%s%n", same, reference.length,
                        same == reference.length ? "" : " (cpu " + Arrays.toString(reference) + ", cuda " + Arrays.toString(ours) + ")");
                boolean ok = logits.withinBound() && (dtype != DType.F32 || same == reference.length);
                out.println(ok ? "ok" : "MISMATCH");
                return ok ? 0 : 1;
            }
        }
    }

    /** f32 host logits of every prompt position. */
    private static Tensor logits(DecoderModel model, int[] ids) {
        try (Session session = model.newSession(1, ids.length)) {
            return model.forward(session, new int[] {0}, new int[][] {ids}, true);
        }
    }

    private int[] greedy(DecoderModel model, int[] ids) {
        return Generator.generate(model, List.of(ids), tokens, SamplingOptions.greedy(), Set.of(), null).tokens().getFirst();
    }
}
