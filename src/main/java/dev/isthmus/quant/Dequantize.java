package dev.isthmus.quant;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * The CPU reference of the GGML block formats: each type's bytes to fp32, written from the
 * format's definition. Every product is a single fp32 operation in the order the definition
 * writes it, so the result is bit for bit the format's own dequantization.
 *
 * <p>Block layouts (little-endian; d, m, dmin are f16 scales):
 * <ul>
 *   <li>Q8_0, 32 elements, 34 bytes: d, int8 q[32]; x = d q.
 *   <li>Q4_0, 32 elements, 18 bytes: d, u8 qs[16]; element j &lt; 16 is the low nibble of qs[j],
 *       element j + 16 its high nibble; x = d (q - 8).
 *   <li>Q4_1, 32 elements, 20 bytes: d, m, u8 qs[16] (nibbles as Q4_0); x = d q + m.
 *   <li>Q4_K, 256 elements, 144 bytes: d, dmin, u8 scales[12] (eight 6-bit scales and eight 6-bit
 *       mins, see {@link #scaleMin}), u8 qs[128]; four runs of 64 elements, run r from qs[32r..32r+31]:
 *       its first 32 the low nibbles (sub-block 2r), the next 32 the high nibbles (sub-block 2r+1);
 *       x = (d sc) q - (dmin mn).
 *   <li>Q5_K, 256 elements, 176 bytes: d, dmin, scales[12], u8 qh[32], u8 qs[128]; as Q4_K with a
 *       fifth bit: element i of run r takes bit 2r of qh[i] (low nibbles) or bit 2r+1 (high).
 *   <li>Q6_K, 256 elements, 210 bytes: u8 ql[128], u8 qh[64], int8 scales[16], d; two halves of 128,
 *       each of four quarters of 32 taking the low or high nibbles of ql and two bits of qh;
 *       q = 6-bit value - 32, x = (d sc) q with one scale per 16 elements.
 * </ul>
 */
public final class Dequantize {
    private Dequantize() {}

    private static final ValueLayout.OfShort U16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat F32 = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** Dequantizes {@code src}, which holds {@code dst.length} elements of {@code type}, into {@code dst}. */
    public static void toFloat(float[] dst, GgmlType type, MemorySegment src) {
        if (!type.supported()) throw new IllegalArgumentException(type + " is not a type Isthmus reads");
        long bytes = type.bytes(dst.length);
        if (src.byteSize() != bytes)
            throw new IllegalArgumentException(dst.length + " elements of " + type + " take " + bytes + " bytes, the source has " + src.byteSize());
        int blocks = dst.length / type.blockElements();
        for (int b = 0; b < blocks; b++) {
            long at = (long) b * type.blockBytes();
            int out = b * type.blockElements();
            switch (type) {
                case F32 -> dst[out] = src.get(F32, at);
                case F16 -> dst[out] = f16(src, at);
                case BF16 -> dst[out] = Float.intBitsToFloat((src.get(U16, at) & 0xffff) << 16);
                case Q8_0 -> q8_0(dst, out, src, at);
                case Q4_0 -> q4_0(dst, out, src, at);
                case Q4_1 -> q4_1(dst, out, src, at);
                case Q4_K -> q4_k(dst, out, src, at);
                case Q5_K -> q5_k(dst, out, src, at);
                case Q6_K -> q6_k(dst, out, src, at);
                default -> throw new IllegalStateException(type.name()); // every supported type has a case
            }
        }
    }

    static float f16(MemorySegment src, long at) {
        return Float.float16ToFloat(src.get(U16, at));
    }

    private static int u8(MemorySegment src, long at) {
        return src.get(ValueLayout.JAVA_BYTE, at) & 0xff;
    }

    private static byte i8(MemorySegment src, long at) {
        return src.get(ValueLayout.JAVA_BYTE, at);
    }

    private static void q8_0(float[] dst, int out, MemorySegment src, long at) {
        float d = f16(src, at);
        for (int j = 0; j < 32; j++) dst[out + j] = d * i8(src, at + 2 + j);
    }

    private static void q4_0(float[] dst, int out, MemorySegment src, long at) {
        float d = f16(src, at);
        for (int j = 0; j < 16; j++) {
            int q = u8(src, at + 2 + j);
            dst[out + j] = d * ((q & 0xf) - 8);
            dst[out + j + 16] = d * ((q >> 4) - 8);
        }
    }

    private static void q4_1(float[] dst, int out, MemorySegment src, long at) {
        float d = f16(src, at), m = f16(src, at + 2);
        for (int j = 0; j < 16; j++) {
            int q = u8(src, at + 4 + j);
            dst[out + j] = d * (q & 0xf) + m;
            dst[out + j + 16] = d * (q >> 4) + m;
        }
    }

    /**
     * The 6-bit scale (index 0) and min (index 1) of sub-block {@code j} (0..7) of a K-quant block:
     * sub-blocks 0-3 keep theirs in the low 6 bits of scales[j] and scales[j + 4]; sub-blocks 4-7
     * take their low 4 bits from the nibbles of scales[j + 4] and their top 2 bits from the top
     * bits of scales[j - 4] (scale) and scales[j] (min).
     */
    static int[] scaleMin(MemorySegment src, long scales, int j) {
        if (j < 4) return new int[] {u8(src, scales + j) & 63, u8(src, scales + j + 4) & 63};
        int packed = u8(src, scales + j + 4);
        return new int[] {(packed & 0xf) | ((u8(src, scales + j - 4) >> 6) << 4), (packed >> 4) | ((u8(src, scales + j) >> 6) << 4)};
    }

    private static void q4_k(float[] dst, int out, MemorySegment src, long at) {
        kQuant(dst, out, src, at, at + 16, -1);
    }

    private static void q5_k(float[] dst, int out, MemorySegment src, long at) {
        kQuant(dst, out, src, at, at + 48, at + 16);
    }

    /** Q4_K (qh &lt; 0) and Q5_K: the 4-bit values at {@code qs}, the fifth bits at {@code qh}. */
    private static void kQuant(float[] dst, int out, MemorySegment src, long at, long qs, long qh) {
        float d = f16(src, at), dmin = f16(src, at + 2);
        long scales = at + 4;
        for (int run = 0; run < 4; run++) {
            int[] lo = scaleMin(src, scales, 2 * run), hi = scaleMin(src, scales, 2 * run + 1);
            float dLo = d * lo[0], mLo = dmin * lo[1], dHi = d * hi[0], mHi = dmin * hi[1];
            for (int i = 0; i < 32; i++) {
                int q = u8(src, qs + 32L * run + i);
                int high = qh < 0 ? 0 : u8(src, qh + i);
                int qLo = (q & 0xf) | (((high >> (2 * run)) & 1) << 4);
                int qHi = (q >> 4) | (((high >> (2 * run + 1)) & 1) << 4);
                dst[out + 64 * run + i] = dLo * qLo - mLo;
                dst[out + 64 * run + 32 + i] = dHi * qHi - mHi;
            }
        }
    }

    private static void q6_k(float[] dst, int out, MemorySegment src, long at) {
        long ql = at, qh = at + 128, scales = at + 192;
        float d = f16(src, at + 208);
        for (int half = 0; half < 2; half++) {
            long l0 = ql + 64L * half, h0 = qh + 32L * half, s0 = scales + 8L * half;
            int base = out + 128 * half;
            for (int i = 0; i < 32; i++) {
                int h = u8(src, h0 + i), a = u8(src, l0 + i), b = u8(src, l0 + 32 + i);
                int sub = i / 16;
                int q1 = ((a & 0xf) | ((h & 3) << 4)) - 32;
                int q2 = ((b & 0xf) | (((h >> 2) & 3) << 4)) - 32;
                int q3 = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
                int q4 = ((b >> 4) | (((h >> 6) & 3) << 4)) - 32;
                dst[base + i] = d * i8(src, s0 + sub) * q1;
                dst[base + 32 + i] = d * i8(src, s0 + sub + 2) * q2;
                dst[base + 64 + i] = d * i8(src, s0 + sub + 4) * q3;
                dst[base + 96 + i] = d * i8(src, s0 + sub + 6) * q4;
            }
        }
    }
}
