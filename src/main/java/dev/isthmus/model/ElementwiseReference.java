package dev.isthmus.model;

import dev.isthmus.tensor.Tensor;

/** The CPU references of {@link Elementwise}, written from the formulas, in double. */
final class ElementwiseReference {
    private ElementwiseReference() {}

    static void embedding(Tensor out, Tensor table, Tensor ids) {
        long hidden = table.dim(1);
        long[] rows = ids.toLongArray();
        for (int t = 0; t < rows.length; t++)
            for (long j = 0; j < hidden; j++) out.setFloat(table.getFloat(rows[t], j), t, j);
    }

    static void addBias(Tensor out, Tensor x, Tensor bias) {
        for (long r = 0; r < x.dim(0); r++)
            for (long c = 0; c < x.dim(1); c++)
                out.setFloat((float) ((double) x.getFloat(r, c) + bias.getFloat(c)), r, c);
    }

    static void siluMul(Tensor out, Tensor gate, Tensor up) {
        Tensor g = gate.reshape(gate.elementCount()), u = up.reshape(up.elementCount()), o = out.reshape(out.elementCount());
        for (long i = 0; i < g.elementCount(); i++) {
            double v = g.getFloat(i);
            o.setFloat((float) (v / (1 + Math.exp(-v)) * u.getFloat(i)), i);
        }
    }

    static void argmax(Tensor out, Tensor logits) {
        int cols = (int) logits.dim(1);
        float[] row = new float[cols];
        for (long r = 0; r < logits.dim(0); r++) {
            for (int c = 0; c < cols; c++) row[c] = logits.getFloat(r, c);
            out.setLong(Sampler.argmax(row), r);
        }
    }
}
