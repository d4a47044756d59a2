package dev.isthmus.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * A CSV file written a row at a time and flushed after each, so that a run cut off keeps every row
 * it measured. Cells are quoted as RFC 4180 says whenever they hold a comma, a quote or a line
 * break, so a row stays well-formed whatever a shape's name contains.
 */
final class CsvRows implements AutoCloseable {
    private final Writer out;

    CsvRows(Path file, List<String> header) {
        try {
            out = Files.newBufferedWriter(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        write(header);
    }

    void write(List<String> cells) {
        try {
            out.write(String.join(",", cells.stream().map(CsvRows::cell).toList()));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static String cell(String value) {
        if (value.indexOf(',') < 0 && value.indexOf('"') < 0 && value.indexOf('\n') < 0 && value.indexOf('\r') < 0) return value;
        return '"' + value.replace("\"", "\"\"") + '"';
    }

    @Override
    public void close() {
        try {
            out.close();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
