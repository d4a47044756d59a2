package dev.isthmus.cli;

import java.io.PrintWriter;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The `isthmus` command line. */
@Command(name = "isthmus", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "CUDA kernels for efficient LLM architectures, with a CPU reference for each.",
        subcommands = {InfoCommand.class, DemoCommand.class, OpCommand.class, CommandLine.HelpCommand.class})
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

    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            String v = Main.class.getPackage().getImplementationVersion();
            return new String[] {"isthmus " + (v == null ? "(development build)" : v)};
        }
    }
}
