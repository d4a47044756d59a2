package dev.isthmus.cli;

import dev.isthmus.backend.Backend;
import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `isthmus` command line. */
@Command(name = "isthmus", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "CUDA kernels for efficient LLM architectures, with a CPU reference for each.",
        subcommands = {InfoCommand.class, DemoCommand.class, OpCommand.class, GenerateCommand.class, ValidateCommand.class,
                QuantizeReportCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {
    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the command line and returns the exit status (tests call this instead of main). */
    public static int run(String... args) {
        return new CommandLine(new Main()).execute(args);
    }

    /** As {@link #run(String...)}, printing to {@code out} and {@code err} instead of System.out and System.err. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        return new CommandLine(new Main()).setOut(out).setErr(err).execute(args);
    }

    /** The backend a --backend value names: cpu, cuda (device 0) or best. */
    static Backend backend(String name) {
        return switch (name) {
            case "cpu" -> Backend.cpu();
            case "cuda" -> Backend.cuda(0);
            case "best" -> Backend.best();
            default -> throw new IllegalArgumentException("--backend must be cpu, cuda or best, got '" + name + "'");
        };
    }

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"isthmus " + (v == null ? "(development build)" : v)};
        }
    }
}
