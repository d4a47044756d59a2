package dev.isthmus.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.Rectangle;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The plot's bitmap font: a distinct 5x7 glyph for every printable ASCII character, drawn exactly
 * as its rows say and exactly as wide as width() says; and the plot drawing its text with it, each
 * label where it belongs and clear of everything else, with no font API anywhere.
 */
class PixelFontTest {
    private static final int BLACK = 0x000000, WHITE = 0xffffff;

    @TempDir
    Path dir;

    // ---- the font -------------------------------------------------------------------------------

    @Test
    void everyPrintableCharacterHasAFiveBySevenGlyph() {
        for (int c = ' '; c <= '~'; c++) {
            byte[] rows = PixelFont.rows(c);
            assertEquals(PixelFont.HEIGHT, rows.length, "rows of '" + (char) c + "'");
            int set = 0;
            for (byte row : rows) {
                assertTrue(row >= 0 && row < 1 << PixelFont.WIDTH, "a row of '" + (char) c + "' wider than 5: " + row);
                set += Integer.bitCount(row);
            }
            assertEquals(c == ' ', set == 0, "'" + (char) c + "' has " + set + " pixels set");
        }
    }

    @Test
    void distinctCharactersHaveDistinctGlyphs() {
        Map<String, Character> seen = new HashMap<>();
        String box = Arrays.toString(PixelFont.rows(0x7f)) + "/0";
        for (int c = ' '; c <= '~'; c++) {
            // How far down a glyph is drawn is part of how it looks.
            String key = Arrays.toString(PixelFont.rows(c)) + "/" + PixelFont.drop(c);
            Character before = seen.put(key, (char) c);
            assertNull(before, "'" + before + "' and '" + (char) c + "' look the same");
            assertFalse(key.equals(box), "'" + (char) c + "' looks like the box for a missing character");
        }
    }

    @Test
    void drawSetsExactlyTheGlyphsPixels() {
        int scale = 3, x = 4, y = 5;
        for (int c = ' '; c <= '~'; c++) {
            BufferedImage image = drawn(String.valueOf((char) c), x, y, scale);
            byte[] rows = PixelFont.rows(c);
            int drop = PixelFont.drop(c);
            for (int py = 0; py < image.getHeight(); py++)
                for (int px = 0; px < image.getWidth(); px++) {
                    int col = Math.floorDiv(px - x, scale), row = Math.floorDiv(py - y, scale) - drop;
                    boolean expected = col >= 0 && col < PixelFont.WIDTH && row >= 0 && row < PixelFont.HEIGHT
                            && (rows[row] >> (PixelFont.WIDTH - 1 - col) & 1) != 0;
                    assertEquals(expected, rgb(image, px, py) == BLACK, "'" + (char) c + "' at " + px + "," + py);
                }
        }
    }

    @Test
    void widthAndHeightAreTheExtentDrawn() {
        // Each starts with a glyph touching the left edge and ends with one touching the right, and
        // reaches from the top row down to a tail.
        for (String text : List.of("Hello, world", "MiB per sequence", "Kg", "0.00e+04 by"))
            for (int scale = 1; scale <= 3; scale++) {
                Rectangle box = ink(drawn(text, 7, 3, scale), WHITE);
                assertEquals(new Rectangle(7, 3, PixelFont.width(text, scale), PixelFont.height(scale)), box, text + " at scale " + scale);
            }
        assertEquals(0, PixelFont.width("", 2));
        assertNull(ink(drawn("", 7, 3, 2), WHITE), "the empty string draws nothing");
        assertEquals((3 * PixelFont.ADVANCE - 1) * 2, PixelFont.width("a b", 2), "a space is as wide as any character");
    }

    @Test
    void aCharacterOutsideTheTableIsABox() {
        byte[] box = {0b11111, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b11111};
        for (String text : List.of("\u00e9", "\t", "\u20ac", "\ud83d\ude00")) {
            assertArrayEquals(box, PixelFont.rows(text.codePointAt(0)));
            assertEquals(PixelFont.width("a", 2), PixelFont.width(text, 2), "one box per character, surrogate pairs included");
            Rectangle ink = ink(drawn(text, 0, 0, 2), WHITE);
            assertEquals(new Rectangle(0, 0, PixelFont.width(text, 2), PixelFont.HEIGHT * 2), ink);
        }
    }

    // ---- the plot -------------------------------------------------------------------------------

    @Test
    void eachLabelIsDrawnInBlackWhereItBelongsAndClearOfEverythingElse() throws IOException {
        // A label that starts and ends at a glyph's edges and has a capital and a tail, so that its
        // ink fills its whole box.
        String label = "Kept per sequence";
        int w = PixelFont.width(label, ChartFrame.TEXT_SCALE), h = PixelFont.height(ChartFrame.TEXT_SCALE);
        checkLabel(label, chart -> chart.withTitle(label), PixelFont.width(label, ChartFrame.TITLE_SCALE) + 1, PixelFont.height(ChartFrame.TITLE_SCALE));
        checkLabel(label, chart -> chart.withXLabel(label), w, h);
        // Turned a quarter: as wide as text is high, as high as it is wide.
        checkLabel(label, chart -> chart.withYLabel(label), h, w);
        checkLabel(label, chart -> chart.withLastName(label), w, h);
    }

    /** Draws the chart with and without one label: what differs must be that label's box, black in one, and blank in the other. */
    private void checkLabel(String label, UnaryOperator<Chart> withLabel, int width, int height) throws IOException {
        Chart without = new Chart("", "", "", "");
        BufferedImage a = without.render(dir.resolve("without.png")), b = withLabel.apply(without).render(dir.resolve("with.png"));
        Rectangle changed = null;
        for (int y = 0; y < a.getHeight(); y++)
            for (int x = 0; x < a.getWidth(); x++)
                if (rgb(a, x, y) != rgb(b, x, y)) {
                    assertEquals(BLACK, rgb(b, x, y), label + " at " + x + "," + y);
                    changed = changed == null ? new Rectangle(x, y, 1, 1) : changed.union(new Rectangle(x, y, 1, 1));
                }
        assertNotNull(changed, "nothing drawn for " + label);
        assertEquals(width, changed.width, "width of " + changed);
        assertEquals(height, changed.height, "height of " + changed);
        assertTrue(new Rectangle(0, 0, a.getWidth(), a.getHeight()).contains(changed), changed + " is off the image");
        // Nothing else drawn where the label goes, and a pixel of space around it.
        Rectangle around = new Rectangle(changed.x - 1, changed.y - 1, changed.width + 2, changed.height + 2);
        for (int y = around.y; y < around.y + around.height; y++)
            for (int x = around.x; x < around.x + around.width; x++)
                assertEquals(WHITE, rgb(a, x, y), "something under " + label + " at " + x + "," + y);
    }

    @Test
    void neitherClassUsesAFont() throws IOException {
        for (Class<?> type : List.of(LinePlot.class, PixelFont.class))
            try (InputStream in = type.getResourceAsStream(type.getSimpleName() + ".class")) {
                String constants = new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
                for (String api : List.of("java/awt/Font", "drawString", "FontMetrics", "TextLayout", "GlyphVector", "drawChars"))
                    assertFalse(constants.contains(api), type.getSimpleName() + " refers to " + api);
            }
    }

    // ---- helpers --------------------------------------------------------------------------------

    /** One panel of the demo's chart, with values large enough for the widest tick labels, and the name of its last series. */
    private record Chart(String title, String yLabel, String xLabel, String lastName) {
        Chart withTitle(String t) {
            return new Chart(t, yLabel, xLabel, lastName);
        }

        Chart withYLabel(String t) {
            return new Chart(title, t, xLabel, lastName);
        }

        Chart withXLabel(String t) {
            return new Chart(title, yLabel, t, lastName);
        }

        Chart withLastName(String t) {
            return new Chart(title, yLabel, xLabel, t);
        }

        BufferedImage render(Path file) throws IOException {
            double[] x = {256, 512, 1024, 2048, 4096, 131072};
            List<LinePlot.Series> memory = List.of(new LinePlot.Series("attention", new double[] {500, 1000, 2000, 4000, 8000, 16000}),
                    new LinePlot.Series(lastName, new double[] {0.07, 0.07, 0.07, Double.NaN, 0.07, 0.07}));
            LinePlot.write(file, xLabel, x, List.of(new LinePlot.Panel(title, yLabel, memory)));
            return ImageIO.read(file.toFile());
        }
    }

    private static BufferedImage drawn(String text, int x, int y, int scale) {
        BufferedImage image = new BufferedImage(x + PixelFont.width(text, scale) + 10, y + PixelFont.height(scale) + 10, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        g.setColor(Color.BLACK);
        PixelFont.draw(g, text, x, y, scale);
        g.dispose();
        return image;
    }

    /** The bounds of the pixels that are not the background, or null where there are none. */
    private static Rectangle ink(BufferedImage image, int background) {
        Rectangle box = null;
        for (int y = 0; y < image.getHeight(); y++)
            for (int x = 0; x < image.getWidth(); x++)
                if (rgb(image, x, y) != background) box = box == null ? new Rectangle(x, y, 1, 1) : box.union(new Rectangle(x, y, 1, 1));
        return box;
    }

    private static int rgb(BufferedImage image, int x, int y) {
        return image.getRGB(x, y) & 0xffffff;
    }
}
