package dev.isthmus.cli;

import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
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
 * length) and a linear y axis from 0, one coloured line per series, a shared legend.
 */
final class LinePlot {
    /** One line: its name and y value at each x (NaN for none). */
    record Series(String name, double[] y) {}

    /** One panel: title, y-axis label and its series over the shared x values. */
    record Panel(String title, String yLabel, List<Series> series) {}

    private static final Color[] COLORS = {new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0x9467bd),
            new Color(0xff7f0e), new Color(0x8c564b)};
    private static final int PANEL_W = 560, PANEL_H = 420, LEFT = 80, RIGHT = 20, TOP = 40, BOTTOM = 60;

    static void write(Path file, String xLabel, double[] x, List<Panel> panels) throws IOException {
        int legendH = 30;
        BufferedImage image = new BufferedImage(PANEL_W * panels.size(), PANEL_H + legendH, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int p = 0; p < panels.size(); p++) drawPanel(g, p * PANEL_W, xLabel, x, panels.get(p));
        List<Series> names = panels.getFirst().series();
        int lx = LEFT;
        for (int s = 0; s < names.size(); s++) {
            g.setColor(COLORS[s % COLORS.length]);
            g.fillRect(lx, PANEL_H + 8, 18, 4);
            g.setColor(Color.BLACK);
            g.drawString(names.get(s).name(), lx + 24, PANEL_H + 15);
            lx += 34 + g.getFontMetrics().stringWidth(names.get(s).name());
        }
        g.dispose();
        ImageIO.write(image, "png", file.toFile());
    }

    private static void drawPanel(Graphics2D g, int x0, String xLabel, double[] x, Panel panel) {
        int w = PANEL_W - LEFT - RIGHT, h = PANEL_H - TOP - BOTTOM;
        double maxY = 0;
        for (Series s : panel.series())
            for (double v : s.y())
                if (Double.isFinite(v)) maxY = Math.max(maxY, v);
        maxY = maxY == 0 ? 1 : niceCeiling(maxY);
        double minLog = log2(x[0]), maxLog = log2(x[x.length - 1]);
        if (maxLog == minLog) maxLog = minLog + 1;
        g.setColor(Color.BLACK);
        g.setFont(g.getFont().deriveFont(Font.BOLD, 14f));
        g.drawString(panel.title(), x0 + LEFT, TOP - 15);
        g.setFont(g.getFont().deriveFont(Font.PLAIN, 12f));
        for (int i = 0; i <= 5; i++) {
            int py = TOP + h - i * h / 5;
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(x0 + LEFT, py, x0 + LEFT + w, py);
            g.setColor(Color.BLACK);
            String label = String.format(Locale.ROOT, "%.3g", maxY * i / 5);
            g.drawString(label, x0 + LEFT - 8 - g.getFontMetrics().stringWidth(label), py + 4);
        }
        for (double xv : x) {
            int px = x0 + LEFT + (int) Math.round((log2(xv) - minLog) / (maxLog - minLog) * w);
            String label = xv >= 1024 ? String.format(Locale.ROOT, "%.0fK", xv / 1024) : String.format(Locale.ROOT, "%.0f", xv);
            g.drawLine(px, TOP + h, px, TOP + h + 4);
            g.drawString(label, px - g.getFontMetrics().stringWidth(label) / 2, TOP + h + 18);
        }
        g.drawRect(x0 + LEFT, TOP, w, h);
        g.drawString(xLabel, x0 + LEFT + w / 2 - g.getFontMetrics().stringWidth(xLabel) / 2, TOP + h + 40);
        Graphics2D rotated = (Graphics2D) g.create();
        rotated.rotate(-Math.PI / 2);
        rotated.drawString(panel.yLabel(), -(TOP + h / 2 + g.getFontMetrics().stringWidth(panel.yLabel()) / 2), x0 + 18);
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
                int px = x0 + LEFT + (int) Math.round((log2(x[i]) - minLog) / (maxLog - minLog) * w);
                int py = TOP + h - (int) Math.round(y[i] / maxY * h);
                g.fillOval(px - 3, py - 3, 6, 6);
                if (prevX >= 0) g.drawLine(prevX, prevY, px, py);
                prevX = px;
                prevY = py;
            }
        }
        g.setStroke(new BasicStroke(1f));
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
