package dev.isthmus.cli;

import java.awt.Color;
import java.awt.Graphics2D;
import java.util.Locale;

/**
 * What the PNG charts share: a panel's title, its linear y axis from 0 to a nice number with six
 * grid lines and tick labels, the frame of the plot area and the y-axis label turned upright. Text
 * is drawn with {@link PixelFont}, so that a chart can be drawn on a machine with no fonts installed.
 */
final class ChartFrame {
    private ChartFrame() {}

    static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd),
            new Color(0xff7f0e), new Color(0x8c564b)};
    /** Image pixels per font pixel: the panel titles, and all other text. */
    static final int TITLE_SCALE = 2, TEXT_SCALE = 2;
    /** The title's top edge, and the plot area's top below it. */
    static final int TITLE_Y = 14, TOP = TITLE_Y + PixelFont.height(TITLE_SCALE) + 14;
    /** The rotated y-axis label's left edge; the plot area starts at least MIN_LEFT in. */
    private static final int Y_LABEL_X = 14, MIN_LEFT = 80;

    /**
     * Draws the title, grid, ticks, frame and y label of a panel whose plot area is {@code w} x
     * {@code h} pixels at ({@code x0 + left(maxY)}, TOP).
     */
    static void draw(Graphics2D g, int x0, int w, int h, String title, String yLabel, double maxY) {
        int left = left(maxY), digitsH = PixelFont.HEIGHT * TEXT_SCALE;
        g.setColor(Color.BLACK);
        // Drawn twice a pixel apart, to stand out as a bold font would.
        PixelFont.draw(g, title, x0 + left, TITLE_Y, TITLE_SCALE);
        PixelFont.draw(g, title, x0 + left + 1, TITLE_Y, TITLE_SCALE);
        for (int i = 0; i <= 5; i++) {
            int py = TOP + h - i * h / 5;
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(x0 + left, py, x0 + left + w, py);
            g.setColor(Color.BLACK);
            String label = yTick(maxY, i);
            PixelFont.draw(g, label, x0 + left - 8 - PixelFont.width(label, TEXT_SCALE), py - digitsH / 2, TEXT_SCALE);
        }
        g.drawRect(x0 + left, TOP, w, h);
        // Turned a quarter counterclockwise, reading upwards, centred on the plot area: the font's
        // rectangles turn with the transform and stay on whole pixels.
        int yLabelW = PixelFont.width(yLabel, TEXT_SCALE);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.translate(x0 + Y_LABEL_X, TOP + h / 2 + yLabelW / 2);
        rotated.rotate(-Math.PI / 2);
        PixelFont.draw(rotated, yLabel, 0, 0, TEXT_SCALE);
        rotated.dispose();
    }

    /** The top of a y axis: a nice number at or above the largest finite value, 1 when there is none above 0. */
    static double maxY(double... values) {
        double maxY = 0;
        for (double v : values)
            if (Double.isFinite(v)) maxY = Math.max(maxY, v);
        return maxY == 0 ? 1 : niceCeiling(maxY);
    }

    /** The plot area's left margin: room for the y-axis label, then the widest tick label. */
    static int left(double maxY) {
        int widest = 0;
        for (int i = 0; i <= 5; i++) widest = Math.max(widest, PixelFont.width(yTick(maxY, i), TEXT_SCALE));
        return Math.max(MIN_LEFT, Y_LABEL_X + PixelFont.height(TEXT_SCALE) + 12 + widest + 8);
    }

    /** The label of the i-th of the six y ticks, from 0 to maxY. */
    private static String yTick(double maxY, int i) {
        return String.format(Locale.ROOT, "%.3g", maxY * i / 5);
    }

    /** The smallest 1, 2 or 5 times a power of ten at or above v. */
    private static double niceCeiling(double v) {
        double power = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 5, 10})
            if (m * power >= v) return m * power;
        return 10 * power;
    }
}
