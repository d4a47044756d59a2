package dev.isthmus.cli;

import java.nio.file.Path;

/** The --speculative value of `generate`: {@code prompt-lookup[,k=N]} or {@code draft=DIR[,k=N]} (k 4 unless given). */
record Speculation(Path draft, int k) {
    static Speculation parse(String value) {
        String[] parts = value.split(",", -1);
        Path draft = null;
        if (parts[0].startsWith("draft=") && parts[0].length() > "draft=".length()) draft = Path.of(parts[0].substring("draft=".length()));
        else if (!parts[0].equals("prompt-lookup"))
            throw new IllegalArgumentException("--speculative must start with prompt-lookup or draft=DIR, got '" + value + "'");
        int k = 4;
        for (int i = 1; i < parts.length; i++) {
            if (!parts[i].startsWith("k=")) throw new IllegalArgumentException("--speculative takes k=N after the drafter, got '" + parts[i] + "'");
            try {
                k = Integer.parseInt(parts[i].substring(2));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--speculative k must be a whole number, got '" + parts[i].substring(2) + "'");
            }
            if (k < 1) throw new IllegalArgumentException("--speculative k must be >= 1, got " + k);
        }
        return new Speculation(draft, k);
    }
}
