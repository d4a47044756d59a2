package dev.isthmus.cli;

import dev.isthmus.moe.RouterConfig;
import java.util.List;

/** What the MoE ops share: the router's options, read into a {@link RouterConfig}. */
final class MoeOpParts {
    private MoeOpParts() {}

    static final List<Op.OptionSpec> ROUTER = List.of(
            new Op.OptionSpec("top_k", Op.OptionType.INT, null, "experts per token; required"),
            new Op.OptionSpec("sigmoid", Op.OptionType.BOOLEAN, "false", "score = sigmoid(z) (DeepSeek-V3); false: softmax over experts (Mixtral)"),
            new Op.OptionSpec("renormalize", Op.OptionType.BOOLEAN, "false", "weights divided by the sum of the chosen scores"),
            new Op.OptionSpec("groups", Op.OptionType.INT, "1", "expert groups for grouped top-k; divides E"),
            new Op.OptionSpec("top_groups", Op.OptionType.INT, "1", "groups kept (by the sum of their two best scores)"),
            new Op.OptionSpec("routed_scaling", Op.OptionType.FLOAT, "1", "multiplies every weight"));

    /** The router of {@code experts} experts the options describe; an error names the option at fault. */
    static RouterConfig config(OpOptions options, long experts) {
        if (!options.isSet("top_k")) throw new IllegalArgumentException("option 'top_k' is required (--set top_k=K)");
        try {
            return new RouterConfig(Math.toIntExact(experts), intOption(options, "top_k"),
                    options.getBoolean("sigmoid") ? RouterConfig.Scoring.SIGMOID : RouterConfig.Scoring.SOFTMAX,
                    options.getBoolean("renormalize"), intOption(options, "groups"), intOption(options, "top_groups"),
                    options.getFloat("routed_scaling"));
        } catch (IllegalArgumentException e) {
            // RouterConfig names its fields; the command line knows them as options.
            throw new IllegalArgumentException("options: " + e.getMessage().replace("topK", "top_k").replace("topGroups", "top_groups")
                    .replace("routedScaling", "routed_scaling"));
        }
    }

    private static int intOption(OpOptions options, String name) {
        long v = options.getInt(name);
        if (v < Integer.MIN_VALUE || v > Integer.MAX_VALUE) throw new IllegalArgumentException("option '" + name + "' is out of range: " + v);
        return (int) v;
    }

    /** The benchmark's shape name: T=..;H=..;I=..;E=..;k=.. and the groups when grouped. */
    static String shape(long tokens, long hidden, long intermediate, RouterConfig c) {
        return "T=" + tokens + ";H=" + hidden + ";I=" + intermediate + ";E=" + c.experts() + ";k=" + c.topK()
                + (c.groups() > 1 ? ";G=" + c.groups() + ";TG=" + c.topGroups() : "");
    }
}
