package dev.isthmus.cli;

import static dev.isthmus.cli.ChartFrame.COLORS;
import static dev.isthmus.cli.ChartFrame.TEXT_SCALE;
import static dev.isthmus.cli.ChartFrame.TOP;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * A small PNG line chart drawn with Java2D: panels side by side, each with a log2 x axis (context
 * length) and a linear y axis from 0 ({@link ChartFrame}), one coloured line per series, a shared legend.
 */
final class LinePlot {
    /** One line: its name and y value at each x (NaN for none). */
    record Series(String name, double[] y) {}

    /** One panel: title, y-axis label and its series over the shared x values. */
    record Panel(String title, String yLabel, List<Series> series) {}

    private static final int PANEL_W = 560, PANEL_H = 420, RIGHT = 30, BOTTOM = 60, LEGEND_H = 30;

    static void write(Path file, String xLabel, double[] x, List<Panel> panels) throws IOException {
        BufferedImage image = new BufferedImage(PANEL_W * panels.size(), PANEL_H + LEGEND_H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        for (int p = 0; p < panels.size(); p++) drawPanel(g, p * PANEL_W, xLabel, x, panels.get(p));
        List<Series> names = panels.getFirst().series();
        int lx = ChartFrame.left(maxY(panels.getFirst())), textY = PANEL_H + 4, capsH = PixelFont.HEIGHT * TEXT_SCALE;
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
        int left = ChartFrame.left(maxY), w = PANEL_W - left - RIGHT, h = PANEL_H - TOP - BOTTOM;
        double minLog = log2(x[0]), maxLog = log2(x[x.length - 1]);
        if (maxLog == minLog) maxLog = minLog + 1;
        ChartFrame.draw(g, x0, w, h, panel.title(), panel.yLabel(), maxY);
        for (double xv : x) {
            int px = x0 + left + (int) Math.round((log2(xv) - minLog) / (maxLog - minLog) * w);
            String label = xv >= 1024 ? String.format(Locale.ROOT, "%.0fK", xv / 1024) : String.format(Locale.ROOT, "%.0f", xv);
            g.drawLine(px, TOP + h, px, TOP + h + 4);
            PixelFont.draw(g, label, px - PixelFont.width(label, TEXT_SCALE) / 2, TOP + h + 12, TEXT_SCALE);
        }
        PixelFont.draw(g, xLabel, x0 + left + w / 2 - PixelFont.width(xLabel, TEXT_SCALE) / 2, TOP + h + 34, TEXT_SCALE);
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
        return ChartFrame.maxY(panel.series().stream().flatMapToDouble(s -> Arrays.stream(s.y())).toArray());
    }

    private static double log2(double v) {
        return Math.log(v) / Math.log(2);
    }
}
