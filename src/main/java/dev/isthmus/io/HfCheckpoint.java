package dev.isthmus.io;

import dev.isthmus.tensor.Tensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A Hugging Face checkpoint directory: {@code config.json} and the weights, either one
 * {@code model.safetensors} or the shards named by {@code model.safetensors.index.json}
 * ({@code {"weight_map": {tensor: file}}}). Every shard is memory-mapped; {@link #tensor} hands
 * out host tensors over the mapped bytes, with its shape checked, so an error names the tensor.
 */
public final class HfCheckpoint implements AutoCloseable {
    public static final String CONFIG = "config.json";
    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private final Path directory;
    private final Map<String, Object> config;
    private final Map<String, SafetensorsFile> fileOf;
    private final List<SafetensorsFile> files;

    private HfCheckpoint(Path directory, Map<String, Object> config, Map<String, SafetensorsFile> fileOf, List<SafetensorsFile> files) {
        this.directory = directory;
        this.config = config;
        this.fileOf = fileOf;
        this.files = files;
    }

    /** Opens {@code directory}; a missing config or weights file is a NoSuchFileException naming it. */
    public static HfCheckpoint open(Path directory) throws IOException {
        Map<String, Object> config = readJsonObject(directory.resolve(CONFIG), MAX_JSON_BYTES);
        List<SafetensorsFile> files = new ArrayList<>();
        Map<String, SafetensorsFile> fileOf = new LinkedHashMap<>();
        try {
            Path index = directory.resolve(INDEX);
            if (Files.exists(index)) {
                Object weightMap = readJsonObject(index, MAX_JSON_BYTES).get("weight_map");
                if (!(weightMap instanceof Map<?, ?> map))
                    throw new IllegalArgumentException(index + " has no \"weight_map\" object");
                Map<String, SafetensorsFile> byShard = new LinkedHashMap<>();
                for (var e : map.entrySet()) {
                    if (!(e.getValue() instanceof String shard) || shard.contains("/") || shard.contains(".."))
                        throw new IllegalArgumentException(index + ": tensor " + e.getKey() + " maps to " + e.getValue() + ", not a file name here");
                    SafetensorsFile file = byShard.get(shard);
                    if (file == null) {
                        file = SafetensorsFile.open(directory.resolve(shard));
                        files.add(file);
                        byShard.put(shard, file);
                    }
                    String name = (String) e.getKey();
                    if (!file.contains(name)) throw new IllegalArgumentException(index + " places tensor " + name + " in " + shard + ", which does not hold it");
                    fileOf.put(name, file);
                }
            } else {
                Path single = directory.resolve(SINGLE_FILE);
                if (!Files.exists(single)) throw new NoSuchFileException(single + " (nor " + INDEX + ")");
                SafetensorsFile file = SafetensorsFile.open(single);
                files.add(file);
                for (String name : file.names()) fileOf.put(name, file);
            }
        } catch (IOException | RuntimeException e) {
            files.forEach(SafetensorsFile::close);
            throw e;
        }
        return new HfCheckpoint(directory, config, fileOf, files);
    }

    /** A config.json or an index is a few kilobytes; past this it is not one (and would fill the heap). */
    static final long MAX_JSON_BYTES = 64L << 20;

    /** {@code path} parsed as a JSON object of at most {@code maxBytes}; anything else is an IllegalArgumentException naming the file. */
    public static Map<String, Object> readJsonObject(Path path, long maxBytes) throws IOException {
        long size = Files.size(path);
        if (size > maxBytes) throw new IllegalArgumentException(path + " has " + size + " bytes; at most " + maxBytes + " are read");
        Object parsed;
        try {
            parsed = Json.parseAsPythonWrites(Files.readString(path)); // transformers writes config.json with Python's json
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(path + ": " + e.getMessage(), e);
        } catch (java.nio.charset.MalformedInputException e) {
            throw new IllegalArgumentException(path + " is not UTF-8 text");
        }
        if (!(parsed instanceof Map<?, ?> map)) throw new IllegalArgumentException(path + " does not hold a JSON object");
        @SuppressWarnings("unchecked")
        Map<String, Object> object = (Map<String, Object>) map;
        return object;
    }

    public Path directory() {
        return directory;
    }

    /** The parsed config.json. */
    public Map<String, Object> config() {
        return Collections.unmodifiableMap(config);
    }

    public Set<String> names() {
        return Collections.unmodifiableSet(new TreeSet<>(fileOf.keySet()));
    }

    public boolean contains(String name) {
        return fileOf.containsKey(name);
    }

    /**
     * The tensor {@code name} over the mapped file (read-only, alive until {@link #close}), which
     * must have {@code shape}: otherwise an IllegalArgumentException naming the tensor.
     */
    public Tensor tensor(String name, long... shape) {
        SafetensorsFile file = fileOf.get(name);
        if (file == null) throw new IllegalArgumentException("the checkpoint in " + directory + " has no tensor " + name);
        Tensor t = file.tensor(name);
        if (!Arrays.equals(t.shape(), shape))
            throw new IllegalArgumentException("tensor " + name + " has shape " + Arrays.toString(t.shape()) + "; the config implies "
                    + Arrays.toString(shape));
        return t;
    }

    @Override
    public void close() {
        files.forEach(SafetensorsFile::close);
    }
}
