package dev.isthmus.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The values of an op's options: what --set gave, checked against the op's option specs, else the defaults. */
final class OpOptions {
    private final Map<String, Op.OptionSpec> specs = new LinkedHashMap<>();
    private final Map<String, String> values = new LinkedHashMap<>();

    private OpOptions(Op op) {
        for (Op.OptionSpec s : op.options()) specs.put(s.name(), s);
    }

    /**
     * Parses "name=value" settings. An unknown name, a repeated one or a value of the wrong type
     * is an IllegalArgumentException naming the option.
     */
    static OpOptions parse(Op op, List<String> settings) {
        OpOptions o = new OpOptions(op);
        for (String setting : settings) {
            int eq = setting.indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("--set needs name=value, got '" + setting + "'");
            String name = setting.substring(0, eq).trim(), value = setting.substring(eq + 1).trim();
            Op.OptionSpec spec = o.specs.get(name);
            if (spec == null)
                throw new IllegalArgumentException("unknown option '" + name + "' for " + op.name() + " (options: "
                        + (o.specs.isEmpty() ? "none" : String.join(", ", o.specs.keySet())) + ")");
            if (o.values.containsKey(name)) throw new IllegalArgumentException("option '" + name + "' is set twice");
            parseValue(spec, value); // type check now, so a bad value fails before any work
            o.values.put(name, value);
        }
        return o;
    }

    /** True when --set gave this option. */
    boolean isSet(String name) {
        return values.containsKey(spec(name).name());
    }

    float getFloat(String name) {
        return ((Number) value(name, Op.OptionType.FLOAT)).floatValue();
    }

    long getInt(String name) {
        return (Long) value(name, Op.OptionType.INT);
    }

    boolean getBoolean(String name) {
        return (Boolean) value(name, Op.OptionType.BOOLEAN);
    }

    private Object value(String name, Op.OptionType type) {
        Op.OptionSpec spec = spec(name);
        if (spec.type() != type) throw new IllegalStateException("option " + name + " is " + spec.type() + ", read as " + type);
        String text = values.containsKey(name) ? values.get(name) : spec.defaultValue();
        if (text == null) throw new IllegalStateException("option " + name + " has no default; check isSet first");
        return parseValue(spec, text);
    }

    private Op.OptionSpec spec(String name) {
        Op.OptionSpec spec = specs.get(name);
        if (spec == null) throw new IllegalStateException("no option " + name); // a mistake in the op, not in the input
        return spec;
    }

    private static Object parseValue(Op.OptionSpec spec, String text) {
        String bad = "option '" + spec.name() + "' must be ";
        return switch (spec.type()) {
            case FLOAT -> {
                try {
                    float v = Float.parseFloat(text);
                    if (!Float.isFinite(v) || text.matches(".*[fFdD]$")) throw new NumberFormatException();
                    yield v;
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(bad + "a finite number, got '" + text + "'");
                }
            }
            case INT -> {
                try {
                    yield Long.parseLong(text);
                } catch (NumberFormatException e) {
                    throw new IllegalArgumentException(bad + "an integer, got '" + text + "'");
                }
            }
            case BOOLEAN -> switch (text.toLowerCase(Locale.ROOT)) {
                case "true" -> Boolean.TRUE;
                case "false" -> Boolean.FALSE;
                default -> throw new IllegalArgumentException(bad + "true or false, got '" + text + "'");
            };
        };
    }
}
