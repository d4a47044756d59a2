package dev.isthmus.attention;

import dev.isthmus.tensor.Tensor;
import java.util.Arrays;
import java.util.stream.IntStream;

/**
 * The CPU references of {@link Attention}, written from the math in double precision:
 * softmax(scale * q k^T + mask) v row by row, nothing cleverer (no tiling, no online softmax),
 * rows spread over all cores. Arguments are checked by Attention before these run. A quantized
 * cache is quantized on append and dequantized on attend by {@link KvQuantization}'s rules; the
 * attention itself is the same exact math over the dequantized values.
 */
final class AttentionReference {
    private AttentionReference() {}

    /** Rotates q in place and writes the (rotated) new k and v into their cache slots. */
    static void append(KvBatch batch, Tensor q, Tensor k, Tensor v, Rope rope, Tensor positions) {
        int qHeads = (int) q.dim(1), kvHeads = batch.kvHeads(), d = batch.headDim();
        float[] qv = q.toFloatArray(), kv = k.toFloatArray(), vv = v.toFloatArray();
        long[] pos = positions == null ? null : positions.toLongArray();
        int rowSize = kvHeads * d;
        for (int b = 0; b < batch.batchSize(); b++) {
            // LongRoPE picks its factors by the sequence's length once this step's tokens are in.
            float[] extension = rope == null || rope.longRope() == null ? null : rope.longRope().factorsFor(batch.kvLength(b));
            for (int i = 0; i < batch.newTokens(b); i++) {
                int row = batch.queryStart(b) + i;
                int slot = batch.cachedLength(b) + i;
                long position = pos == null ? slot : pos[row];
                if (rope != null) {
                    for (int h = 0; h < qHeads; h++) rotate(qv, ((long) row * qHeads + h) * d, d, rope, extension, position);
                    for (int h = 0; h < kvHeads; h++) rotate(kv, ((long) row * kvHeads + h) * d, d, rope, extension, position);
                }
                float[] kRow = Arrays.copyOfRange(kv, row * rowSize, (row + 1) * rowSize);
                float[] vRow = Arrays.copyOfRange(vv, row * rowSize, (row + 1) * rowSize);
                if (batch.cacheType().isQuantized()) {
                    storeQuantized(batch, batch.keys(), batch.keyScales(), b, slot, kRow);
                    storeQuantized(batch, batch.values(), batch.valueScales(), b, slot, vRow);
                } else {
                    cacheRow(batch, batch.keys(), b, slot).copyFrom(kRow);
                    cacheRow(batch, batch.values(), b, slot).copyFrom(vRow);
                }
            }
        }
        if (rope != null) q.copyFrom(qv);
    }

    /**
     * Token t of sequence b's [kvHeads, headDim] row x as codes: int8 with s = max|x| / 127 per kv
     * head, written to that head's place in {@code scales}; fp8 with the head's fixed scale.
     */
    private static void storeQuantized(KvBatch batch, Tensor cache, Tensor scales, int b, int t, float[] x) {
        int kvHeads = batch.kvHeads(), d = batch.headDim();
        long[] codes = new long[x.length];
        float[] rowScales = batch.cacheType() == KvCacheType.INT8 ? new float[kvHeads] : scales.toFloatArray();
        for (int h = 0; h < kvHeads; h++) {
            if (batch.cacheType() == KvCacheType.INT8) {
                float maxAbs = 0f;
                for (int j = 0; j < d; j++) maxAbs = Math.max(maxAbs, Math.abs(x[h * d + j]));
                rowScales[h] = KvQuantization.int8Scale(maxAbs);
                for (int j = 0; j < d; j++) codes[h * d + j] = KvQuantization.quantizeInt8(x[h * d + j], rowScales[h]);
            } else {
                for (int j = 0; j < d; j++) codes[h * d + j] = KvQuantization.encodeE4m3(x[h * d + j] / rowScales[h]);
            }
        }
        cacheRow(batch, cache, b, t).copyFrom(codes);
        if (batch.cacheType() == KvCacheType.INT8) cacheRow(batch, scales, b, t).copyFrom(rowScales);
    }

    /** The [kvHeads, headDim] slot of token t of sequence b in {@code cache} (the [kvHeads] slot of int8 scales). */
    private static Tensor cacheRow(KvBatch batch, Tensor cache, int b, int t) {
        int block = batch.blockOf(b, t), offset = t % batch.blockSize();
        return cache.slice(0, block, block + 1).slice(1, offset, offset + 1);
    }

    /**
     * Tokens [0, length) of sequence b in {@code cache}, [length, kvHeads, headDim] flattened: only
     * its blocks are read; a quantized cache's codes dequantized with {@code scales}.
     */
    private static float[] sequenceRows(KvBatch batch, Tensor cache, Tensor scales, int b, int length) {
        int kvHeads = batch.kvHeads(), d = batch.headDim(), rowSize = kvHeads * d, blockSize = batch.blockSize();
        KvCacheType type = batch.cacheType();
        float[] headScales = type == KvCacheType.FP8_E4M3 ? scales.toFloatArray() : null;
        float[] out = new float[Math.toIntExact((long) length * rowSize)];
        for (int start = 0; start < length; start += blockSize) {
            int block = batch.blockOf(b, start), n = Math.min(blockSize, length - start);
            Tensor rows = cache.slice(0, block, block + 1).slice(1, 0, n);
            if (!type.isQuantized()) {
                float[] values = rows.toFloatArray();
                System.arraycopy(values, 0, out, start * rowSize, values.length);
                continue;
            }
            long[] codes = rows.toLongArray();
            float[] tokenScales = type == KvCacheType.INT8 ? scales.slice(0, block, block + 1).slice(1, 0, n).toFloatArray() : null;
            for (int i = 0; i < codes.length; i++) {
                int head = (i % rowSize) / d;
                float scale = tokenScales != null ? tokenScales[(i / rowSize) * kvHeads + head] : headScales[head];
                out[start * rowSize + i] = KvQuantization.dequantize(type, (byte) codes[i], scale);
            }
        }
        return out;
    }

    /**
     * Rotates the head at x[start, start + d): pair j turned by position * positionScale * frequency(rope, j, d),
     * that frequency divided by extension[j] and cos, sin multiplied by LongRoPE's attention factor when extension is given.
     */
    private static void rotate(float[] x, long start, int d, Rope rope, float[] extension, long position) {
        int half = d / 2;
        double magnitude = extension == null ? 1 : rope.longRope().attentionFactor();
        for (int j = 0; j < half; j++) {
            double f = frequency(rope, j, d) / (extension == null ? 1 : extension[j]);
            double angle = position * (double) rope.positionScale() * f;
            double c = magnitude * Math.cos(angle), s = magnitude * Math.sin(angle);
            int a = (int) start + (rope.neox() ? j : 2 * j);
            int bIndex = (int) start + (rope.neox() ? j + half : 2 * j + 1);
            double x0 = x[a], x1 = x[bIndex];
            x[a] = (float) (x0 * c - x1 * s);
            x[bIndex] = (float) (x0 * s + x1 * c);
        }
    }

    /**
     * Frequency of pair j, f = base^(-2j/d), with Llama 3.1's scaling when the rope has it: by the
     * wavelength w = 2 pi / f, unchanged below originalMax / highFreqFactor, f / factor above
     * originalMax / lowFreqFactor, and between them (1 - s) f / factor + s f with
     * s = (originalMax / w - lowFreqFactor) / (highFreqFactor - lowFreqFactor).
     */
    private static double frequency(Rope rope, int j, int d) {
        double f = Math.pow(rope.base(), -2.0 * j / d);
        Rope.Llama3Scaling scaling = rope.llama3();
        if (scaling == null) return f;
        double originalMax = scaling.originalMaxPositions(), lowFactor = scaling.lowFreqFactor(), highFactor = scaling.highFreqFactor();
        double wavelength = 2 * Math.PI / f;
        if (wavelength < originalMax / highFactor) return f;
        if (wavelength > originalMax / lowFactor) return f / scaling.factor();
        double smooth = (originalMax / wavelength - lowFactor) / (highFactor - lowFactor);
        return (1 - smooth) * f / scaling.factor() + smooth * f;
    }

    /** out = softmax(scale * q k^T + mask) v per row; lse = ln(sum exp(scores)) (or -inf and out 0 with no visible key). */
    static void attend(KvBatch batch, Tensor q, Tensor out, Tensor lse, AttentionOptions options) {
        int qHeads = (int) q.dim(1), kvHeads = batch.kvHeads(), d = batch.headDim();
        int group = qHeads / kvHeads;
        double scale = options.scaleFor(d);
        int left = options.windowLeft(), right = options.effectiveWindowRight();
        float[] qv = q.toFloatArray();
        float[][] keys = new float[batch.batchSize()][], values = new float[batch.batchSize()][];
        for (int b = 0; b < batch.batchSize(); b++) {
            keys[b] = sequenceRows(batch, batch.keys(), batch.keyScales(), b, batch.kvLength(b));
            values[b] = sequenceRows(batch, batch.values(), batch.valueScales(), b, batch.kvLength(b));
        }
        int rows = batch.totalNewTokens();
        float[] o = new float[rows * qHeads * d];
        float[] l = new float[rows * qHeads];
        int[] sequenceOfRow = new int[rows];
        for (int b = 0; b < batch.batchSize(); b++)
            for (int i = 0; i < batch.newTokens(b); i++) sequenceOfRow[batch.queryStart(b) + i] = b;
        IntStream.range(0, rows * qHeads).parallel().forEach(rowHead -> {
            int row = rowHead / qHeads, h = rowHead % qHeads, kvh = h / group;
            int b = sequenceOfRow[row];
            int kvLength = batch.kvLength(b);
            int position = batch.cachedLength(b) + row - batch.queryStart(b);
            double[] scores = new double[kvLength];
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < kvLength; t++) {
                boolean visible = (left < 0 || position - t <= left) && (right < 0 || t - position <= right);
                if (!visible) {
                    scores[t] = Double.NEGATIVE_INFINITY;
                    continue;
                }
                int kBase = (t * kvHeads + kvh) * d;
                double dot = 0;
                for (int j = 0; j < d; j++) dot += (double) qv[rowHead * d + j] * keys[b][kBase + j];
                double s = scale * dot;
                if (options.softcap() > 0) s = options.softcap() * Math.tanh(s / options.softcap());
                scores[t] = s;
                max = Math.max(max, s);
            }
            if (max == Double.NEGATIVE_INFINITY) {
                l[rowHead] = Float.NEGATIVE_INFINITY; // nothing visible: output stays 0
                return;
            }
            double sum = 0;
            double[] acc = new double[d];
            for (int t = 0; t < kvLength; t++) {
                if (scores[t] == Double.NEGATIVE_INFINITY) continue;
                double p = Math.exp(scores[t] - max);
                sum += p;
                int vBase = (t * kvHeads + kvh) * d;
                for (int j = 0; j < d; j++) acc[j] += p * values[b][vBase + j];
            }
            for (int j = 0; j < d; j++) o[rowHead * d + j] = (float) (acc[j] / sum);
            l[rowHead] = (float) (max + Math.log(sum));
        });
        out.copyFrom(o);
        if (lse != null) lse.copyFrom(l);
    }

    /**
     * Merges P partial results by their log-sum-exp: L = ln(sum_i exp(L_i)), out = sum_i exp(L_i - L) out_i.
     * Parts with L_i = -inf contribute nothing; when all are -inf, out is 0 and L is -inf.
     */
    static void merge(Tensor out, Tensor lse, Tensor partOuts, Tensor partLses) {
        int parts = (int) partOuts.dim(0);
        int d = (int) partOuts.dim(-1);
        int rows = (int) (out.elementCount() / d);
        float[] po = partOuts.toFloatArray(), pl = partLses.toFloatArray();
        float[] o = new float[rows * d];
        float[] l = new float[rows];
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int p = 0; p < parts; p++) max = Math.max(max, pl[p * rows + r]);
            if (max == Double.NEGATIVE_INFINITY) {
                l[r] = Float.NEGATIVE_INFINITY;
                continue;
            }
            double sum = 0;
            for (int p = 0; p < parts; p++) sum += Math.exp(pl[p * rows + r] - max);
            double total = max + Math.log(sum);
            double[] acc = new double[d];
            for (int p = 0; p < parts; p++) {
                double lp = pl[p * rows + r];
                if (lp == Double.NEGATIVE_INFINITY) continue;
                double w = Math.exp(lp - total);
                for (int j = 0; j < d; j++) acc[j] += w * po[(p * rows + r) * d + j];
            }
            for (int j = 0; j < d; j++) o[r * d + j] = (float) acc[j];
            l[r] = (float) total;
        }
        out.copyFrom(o);
        if (lse != null) lse.copyFrom(l);
    }
}
