package dev.isthmus.cli;

import java.util.Locale;
import picocli.CommandLine.Model.CommandSpec;

/** The text of `isthmus op --help` (the list of ops) and `isthmus op NAME --help` (one op's tensors and options). */
final class OpHelp {
    private OpHelp() {}

    static String overview(CommandSpec spec) {
        StringBuilder sb = new StringBuilder(spec.commandLine().getUsageMessage());
        sb.append("\nOps (isthmus op NAME --help for the tensors, shapes and options of one):\n");
        for (Op op : Ops.ALL) sb.append(String.format(Locale.ROOT, "  %-22s %s%n", op.name(), op.description()));
        return sb.toString();
    }

    static String of(Op op) {
        StringBuilder sb = new StringBuilder();
        sb.append("isthmus op ").append(op.name()).append(" --in INPUT.safetensors [--out OUTPUT.safetensors] [--backend cpu|cuda|best]\n")
          .append("           [--set NAME=VALUE ...] [--check] [--bench N [--warmup W]] [--verbose]\n\n")
          .append(op.description()).append("\n\nInputs, read by name from --in (? = optional):\n");
        for (Op.TensorSpec s : op.inputs())
            sb.append(String.format(Locale.ROOT, "  %-14s %-34s %-16s %s%n", s.name() + (s.optional() ? "?" : ""), s.shape(),
                    OpCommand.labels(s), s.about()));
        sb.append("\nOptions, --set NAME=VALUE:\n");
        if (op.options().isEmpty()) sb.append("  none\n");
        for (Op.OptionSpec o : op.options())
            sb.append(String.format(Locale.ROOT, "  %-14s %-9s %-10s %s%n", o.name(), o.type().name().toLowerCase(Locale.ROOT),
                    o.defaultValue() == null ? "" : o.defaultValue(), o.about()));
        sb.append("\nOutputs, written by name to --out:\n");
        for (Op.TensorSpec s : op.outputs())
            sb.append(String.format(Locale.ROOT, "  %-14s %-34s %s%n", s.name() + (s.optional() ? "?" : ""), s.shape(), s.about()));
        return sb.toString();
    }
}
