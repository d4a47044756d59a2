package dev.isthmus.cli;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A small PNG line chart drawn with Java2D: panels side by side, each with a log2 x axis (context
 * length) and a linear y axis from 0, one coloured line per series, a shared legend. Text is drawn
 * with {@link PixelFont}, so that the chart can be drawn on a machine with no fonts installed.
 */
final class LinePlot {
    /** One line: its name and y value at each x (NaN for none). */
    record Series(String name, double[] y) {}

    /** One panel: title, y-axis label and its series over the shared x values. */
    record Panel(String title, String yLabel, List<Series> series) {}

    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd),
            new Color(0xff7f0e), new Color(0x8c564b)};
    /** Image pixels per font pixel: the panel titles, and all other text. */
    static final int TITLE_SCALE = 2, TEXT_SCALE = 2;
    private static final int PANEL_W = 560, PANEL_H = 420, RIGHT = 30, BOTTOM = 60, LEGEND_H = 30;
    /** The title's top edge, and the plot area's top below it. */
    private static final int TITLE_Y = 14, TOP = TITLE_Y + PixelFont.height(TITLE_SCALE) + 14;
    /** The rotated y-axis label's left edge; the plot area starts at least MIN_LEFT in. */
    private static final int Y_LABEL_X = 14, MIN_LEFT = 80;

    static void write(Path file, String xLabel, double[] x, List<Panel> panels) throws IOException {
        BufferedImage image = new BufferedImage(PANEL_W * panels.size(), PANEL_H + LEGEND_H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        for (int p = 0; p < panels.size(); p++) drawPanel(g, p * PANEL_W, xLabel, x, panels.get(p));
        List<Series> names = panels.getFirst().series();
        int lx = left(maxY(panels.getFirst())), textY = PANEL_H + 4, capsH = PixelFont.HEIGHT * TEXT_SCALE;
        for (int s = 0; s < names.size(); s++) {
            g.setColor(COLORS[s % COLORS.length]);
            g.fillRect(lx, textY + capsH / 2 - 2, 18, 4);
            g.setColor(Color.BLACK);
            PixelFont.draw(g, names.get(s).name(), lx + 24, textY, TEXT_SCALE);
            lx += 40 + PixelFont.width(names.get(s).name(), TEXT_SCALE);
        }
        g.dispose();
        ImageIO.write(image, "png", file.toFile());
    }

    private static void drawPanel(Graphics2D g, int x0, String xLabel, double[] x, Panel panel) {
        double maxY = maxY(panel);
        int left = left(maxY), w = PANEL_W - left - RIGHT, h = PANEL_H - TOP - BOTTOM, digitsH = PixelFont.HEIGHT * TEXT_SCALE;
        double minLog = log2(x[0]), maxLog = log2(x[x.length - 1]);
        if (maxLog == minLog) maxLog = minLog + 1;
        g.setColor(Color.BLACK);
        // Drawn twice a pixel apart, to stand out as a bold font would.
        PixelFont.draw(g, panel.title(), x0 + left, TITLE_Y, TITLE_SCALE);
        PixelFont.draw(g, panel.title(), x0 + left + 1, TITLE_Y, TITLE_SCALE);
        for (int i = 0; i <= 5; i++) {
            int py = TOP + h - i * h / 5;
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(x0 + left, py, x0 + left + w, py);
            g.setColor(Color.BLACK);
            String label = yTick(maxY, i);
            PixelFont.draw(g, label, x0 + left - 8 - PixelFont.width(label, TEXT_SCALE), py - digitsH / 2, TEXT_SCALE);
        }
        for (double xv : x) {
            int px = x0 + left + (int) Math.round((log2(xv) - minLog) / (maxLog - minLog) * w);
            String label = xv >= 1024 ? String.format(Locale.ROOT, "%.0fK", xv / 1024) : String.format(Locale.ROOT, "%.0f", xv);
            g.drawLine(px, TOP + h, px, TOP + h + 4);
            PixelFont.draw(g, label, px - PixelFont.width(label, TEXT_SCALE) / 2, TOP + h + 12, TEXT_SCALE);
        }
        g.drawRect(x0 + left, TOP, w, h);
        PixelFont.draw(g, xLabel, x0 + left + w / 2 - PixelFont.width(xLabel, TEXT_SCALE) / 2, TOP + h + 34, TEXT_SCALE);
        // Turned a quarter counterclockwise, reading upwards, centred on the plot area: the font's
        // rectangles turn with the transform and stay on whole pixels.
        int yLabelW = PixelFont.width(panel.yLabel(), TEXT_SCALE);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.translate(x0 + Y_LABEL_X, TOP + h / 2 + yLabelW / 2);
        rotated.rotate(-Math.PI / 2);
        PixelFont.draw(rotated, panel.yLabel(), 0, 0, TEXT_SCALE);
        rotated.dispose();
        g.setStroke(new BasicStroke(2f));
        for (int s = 0; s < panel.series().size(); s++) {
            g.setColor(COLORS[s % COLORS.length]);
            double[] y = panel.series().get(s).y();
            int prevX = -1, prevY = -1;
            for (int i = 0; i < x.length; i++) {
                if (!Double.isFinite(y[i])) {
                    prevX = -1;
                    continue;
                }
                int px = x0 + left + (int) Math.round((log2(x[i]) - minLog) / (maxLog - minLog) * w);
                int py = TOP + h - (int) Math.round(y[i] / maxY * h);
                g.fillOval(px - 3, py - 3, 6, 6);
                if (prevX >= 0) g.drawLine(prevX, prevY, px, py);
                prevX = px;
                prevY = py;
            }
        }
        g.setStroke(new BasicStroke(1f));
    }

    /** The top of the panel's y axis: a nice number at or above its largest value. */
    private static double maxY(Panel panel) {
        double maxY = 0;
        for (Series s : panel.series())
            for (double v : s.y())
                if (Double.isFinite(v)) maxY = Math.max(maxY, v);
        return maxY == 0 ? 1 : niceCeiling(maxY);
    }

    /** The label of the i-th of the six y ticks, from 0 to maxY. */
    private static String yTick(double maxY, int i) {
        return String.format(Locale.ROOT, "%.3g", maxY * i / 5);
    }

    /** The plot area's left margin: room for the y-axis label, then the widest tick label. */
    private static int left(double maxY) {
        int widest = 0;
        for (int i = 0; i <= 5; i++) widest = Math.max(widest, PixelFont.width(yTick(maxY, i), TEXT_SCALE));
        return Math.max(MIN_LEFT, Y_LABEL_X + PixelFont.height(TEXT_SCALE) + 12 + widest + 8);
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }

    /** The smallest 1, 2 or 5 times a power of ten at or above v. */
    private static double niceCeiling(double v) {
        double power = Math.pow(10, Math.floor(Math.log10(v)));
        for (double m : new double[] {1, 2, 5, 10})
            if (m * power >= v) return m * power;
        return 10 * power;
    }
}
