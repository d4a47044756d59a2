package dev.isthmus.cli;

import java.awt.Graphics2D;

/**
 * A 5x7 bitmap font for printable ASCII, drawn as filled rectangles. The plot draws its text with
 * this rather than with java.awt.Font because Java2D needs a physical font file to draw a string,
 * and a machine without any (a bare server, a jlinked runtime) fails with "No physical fonts
 * found"; rectangles need nothing from the machine.
 */
final class PixelFont {
    static final int WIDTH = 5, HEIGHT = 7;
    /** Rows below the baseline, where the tails of DROPPED hang. */
    static final int DESCENT = 2;
    private static final String DROPPED = ",gpqy";
    /** From one character's left edge to the next: the glyph and one blank column. */
    static final int ADVANCE = WIDTH + 1;
    static final int FIRST = ' ', LAST = '~';

    /**
     * The glyphs in bands of sixteen consecutive characters: a line naming them, each name above
     * its glyph's first column, then the glyphs' seven rows, top first, '#' for a pixel that is
     * set. (The backslash's name is escaped, which moves the rest of its line one column right in
     * the source but not in the string.) Capitals and digits fill all seven rows and lower case
     * has its x-height in the bottom five; the glyphs of DROPPED are drawn DESCENT rows lower, so
     * that their first five rows are at x-height and their tails below the baseline.
     */
    private static final String TABLE = """
                  !     "     #     $     %     &     '     (     )     *     +     ,     -     .     /
            ..... ..#.. .#.#. .#.#. ..#.. ##... .##.. ..#.. ...#. .#... ..... ..... ..... ..... ..... .....
            ..... ..#.. .#.#. .#.#. .#### ##..# #..#. ..#.. ..#.. ..#.. ..#.. ..#.. ..... ..... ..... ....#
            ..... ..#.. ..... ##### #.#.. ...#. #.#.. ..... .#... ...#. #.#.# ..#.. ..... ..... ..... ...#.
            ..... ..#.. ..... .#.#. .###. ..#.. .#... ..... .#... ...#. .###. ##### .##.. ##### ..... ..#..
            ..... ..#.. ..... ##### ..#.# .#... #.#.# ..... .#... ...#. #.#.# ..#.. .##.. ..... ..... .#...
            ..... ..... ..... .#.#. ####. #..## #..#. ..... ..#.. ..#.. ..#.. ..#.. ..#.. ..... .##.. #....
            ..... ..#.. ..... .#.#. ..#.. ...## .##.# ..... ...#. .#... ..... ..... .#... ..... .##.. .....

            0     1     2     3     4     5     6     7     8     9     :     ;     <     =     >     ?
            .###. ..#.. .###. ##### ...#. ##### ..##. ##### .###. .###. ..... ..... ...#. ..... .#... .###.
            #...# .##.. #...# ...#. ..##. #.... .#... ....# #...# #...# .##.. .##.. ..#.. ..... ..#.. #...#
            #..## ..#.. ....# ..#.. .#.#. ####. #.... ...#. #...# #...# .##.. .##.. .#... ##### ...#. ....#
            #.#.# ..#.. ...#. ...#. #..#. ....# ####. ..#.. .###. .#### ..... ..... #.... ..... ....# ...#.
            ##..# ..#.. ..#.. ....# ##### ....# #...# .#... #...# ....# .##.. .##.. .#... ##### ...#. ..#..
            #...# ..#.. .#... #...# ...#. #...# #...# .#... #...# ...#. .##.. ..#.. ..#.. ..... ..#.. .....
            .###. .###. ##### .###. ...#. .###. .###. .#... .###. .##.. ..... .#... ...#. ..... .#... ..#..

            @     A     B     C     D     E     F     G     H     I     J     K     L     M     N     O
            .###. .###. ####. .###. ####. ##### ##### .###. #...# .###. ..### #...# #.... #...# #...# .###.
            #...# #...# #...# #...# #...# #.... #.... #...# #...# ..#.. ...#. #..#. #.... ##.## #...# #...#
            #.### #...# #...# #.... #...# #.... #.... #.... #...# ..#.. ...#. #.#.. #.... #.#.# ##..# #...#
            #.#.# ##### ####. #.... #...# ####. ####. #.### ##### ..#.. ...#. ##... #.... #.#.# #.#.# #...#
            #.### #...# #...# #.... #...# #.... #.... #...# #...# ..#.. ...#. #.#.. #.... #...# #..## #...#
            #.... #...# #...# #...# #...# #.... #.... #...# #...# ..#.. #..#. #..#. #.... #...# #...# #...#
            .#### #...# ####. .###. ####. ##### #.... .#### #...# .###. .##.. #...# ##### #...# #...# .###.

            P     Q     R     S     T     U     V     W     X     Y     Z     [     \\     ]     ^     _
            ####. .###. ####. .#### ##### #...# #...# #...# #...# #...# ##### .###. ..... .###. ..#.. .....
            #...# #...# #...# #.... ..#.. #...# #...# #...# #...# #...# ....# .#... #.... ...#. .#.#. .....
            #...# #...# #...# #.... ..#.. #...# #...# #...# .#.#. .#.#. ...#. .#... .#... ...#. #...# .....
            ####. #...# ####. .###. ..#.. #...# #...# #.#.# ..#.. ..#.. ..#.. .#... ..#.. ...#. ..... .....
            #.... #.#.# #.#.. ....# ..#.. #...# #...# #.#.# .#.#. ..#.. .#... .#... ...#. ...#. ..... .....
            #.... #..#. #..#. ....# ..#.. #...# .#.#. #.#.# #...# ..#.. #.... .#... ....# ...#. ..... .....
            #.... .##.# #...# ####. ..#.. .###. ..#.. .#.#. #...# ..#.. ##### .###. ..... .###. ..... #####

            `     a     b     c     d     e     f     g     h     i     j     k     l     m     n     o
            .#... ..... #.... ..... ....# ..... ..##. .#### #.... ..#.. ....# #.... .##.. ..... ..... .....
            ..#.. ..... #.... ..... ....# ..... .#..# #...# #.... ..... ..... #.... ..#.. ..... ..... .....
            ..... .###. ####. .###. .#### .###. .#... #...# #.##. .##.. ...## #..#. ..#.. ##.#. #.##. .###.
            ..... ....# #...# #.... #...# #...# ###.. #...# ##..# ..#.. ....# #.#.. ..#.. #.#.# ##..# #...#
            ..... .#### #...# #.... #...# ##### .#... .#### #...# ..#.. ....# ##... ..#.. #.#.# #...# #...#
            ..... #...# #...# #...# #...# #.... .#... ....# #...# ..#.. #...# #.#.. ..#.. #.#.# #...# #...#
            ..... .#### ####. .###. .#### .###. .#... .###. #...# .###. .###. #..#. .###. #.#.# #...# .###.

            p     q     r     s     t     u     v     w     x     y     z     {     |     }     ~
            ####. .#### ..... ..... .#... ..... ..... ..... ..... #...# ..... ...## ..#.. ##... .....
            #...# #...# ..... ..... .#... ..... ..... ..... ..... #...# ..... ..#.. ..#.. ..#.. .....
            #...# #...# #.##. .#### ###.. #...# #...# #...# #...# #...# ##### ..#.. ..#.. ..#.. .#...
            #...# #...# ##..# #.... .#... #...# #...# #...# .#.#. #...# ...#. .#... ..#.. ...#. #.#.#
            ####. .#### #.... .###. .#... #...# #...# #.#.# ..#.. .#### ..#.. ..#.. ..#.. ..#.. ...#.
            #.... ....# #.... ....# .#..# #..## .#.#. #.#.# .#.#. ....# .#... ..#.. ..#.. ..#.. .....
            #.... ....# #.... ####. ..##. .##.# ..#.. .#.#. #...# .###. ##### ...## ..#.. ##... .....
            """;

    /** Each character's rows, top first; bit 4 is the leftmost column. */
    private static final byte[][] GLYPHS = parse(TABLE);

    /** Drawn for a character the table lacks, so that it shows as missing rather than as nothing. */
    private static final byte[] BOX = {0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111};

    private PixelFont() {}

    /** Pixels across text at this scale, from the first glyph's left edge to the last one's right edge. */
    static int width(String text, int scale) {
        int n = text.codePointCount(0, text.length());
        return n == 0 ? 0 : (n * ADVANCE - 1) * scale;
    }

    /** Pixels down from the top of text to the bottom of its lowest tail. */
    static int height(int scale) {
        return (HEIGHT + DESCENT) * scale;
    }

    /** Rows this character's glyph is drawn below the others: DESCENT for one with a tail, else 0. */
    static int drop(int codePoint) {
        return DROPPED.indexOf(codePoint) >= 0 ? DESCENT : 0;
    }

    /** A copy of the rows of the glyph drawn for this character (the box where the table has none). */
    static byte[] rows(int codePoint) {
        return glyph(codePoint).clone();
    }

    /**
     * Draws text in g's colour, each font pixel scale x scale, with its top left corner at (x, y):
     * capitals and digits fill HEIGHT * scale rows down from y, tails DESCENT * scale more.
     */
    static void draw(Graphics2D g, String text, int x, int y, int scale) {
        int left = x;
        for (int cp : text.codePoints().toArray()) {
            byte[] rows = glyph(cp);
            int top = y + drop(cp) * scale;
            for (int r = 0; r < HEIGHT; r++) {
                // One rectangle per run of set pixels in a row rather than one per pixel.
                int c = 0;
                while (c < WIDTH) {
                    if (!set(rows[r], c)) {
                        c++;
                        continue;
                    }
                    int start = c;
                    while (c < WIDTH && set(rows[r], c)) c++;
                    g.fillRect(left + start * scale, top + r * scale, (c - start) * scale, scale);
                }
            }
            left += ADVANCE * scale;
        }
    }

    private static boolean set(byte row, int column) {
        return (row >> (WIDTH - 1 - column) & 1) != 0;
    }

    private static byte[] glyph(int codePoint) {
        return codePoint >= FIRST && codePoint <= LAST ? GLYPHS[codePoint - FIRST] : BOX;
    }

    /** Reads TABLE, checking that every band names the characters it should and holds only '#' and '.'. */
    private static byte[][] parse(String table) {
        String[] lines = table.lines().filter(line -> !line.isBlank()).toArray(String[]::new);
        byte[][] glyphs = new byte[LAST - FIRST + 1][HEIGHT];
        int next = 0;
        for (int band = 0; band < lines.length; band += HEIGHT + 1) {
            String names = lines[band];
            int count = (lines[band + 1].length() + 1) / ADVANCE;
            for (int i = 0; i < count; i++, next++) {
                int at = i * ADVANCE;
                char named = at < names.length() ? names.charAt(at) : ' ';
                if (next >= glyphs.length || named != FIRST + next)
                    throw new IllegalStateException("glyph table: expected '" + (char) (FIRST + next) + "' but band names '" + named + "'");
                for (int r = 0; r < HEIGHT; r++) {
                    String row = lines[band + 1 + r];
                    int bits = 0;
                    for (int c = 0; c < WIDTH; c++) {
                        char p = row.charAt(at + c);
                        if (p != '#' && p != '.') throw new IllegalStateException("glyph table: '" + p + "' in the glyph of '" + named + "'");
                        bits = bits << 1 | (p == '#' ? 1 : 0);
                    }
                    glyphs[next][r] = (byte) bits;
                }
            }
        }
        if (next != glyphs.length) throw new IllegalStateException("glyph table: " + next + " glyphs, not " + glyphs.length);
        return glyphs;
    }
}
