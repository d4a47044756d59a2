package dev.isthmus.cli;

import static dev.isthmus.cli.ChartFrame.COLORS;
import static dev.isthmus.cli.ChartFrame.TEXT_SCALE;
import static dev.isthmus.cli.ChartFrame.TOP;

import java.awt.Color;
import java.awt.Graphics2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;

/**
 * A small PNG bar chart drawn with Java2D: panels side by side over the same groups along x, one
 * coloured bar per series inside each group, a linear y axis from 0 ({@link ChartFrame}) and a
 * shared legend of the series. A value that is not finite leaves its bar out.
 */
final class BarPlot {
    /** One panel: title, y-axis label and values[group][series]. */
    record Panel(String title, String yLabel, double[][] values) {}

    private static final int PANEL_W = 560, PANEL_H = 420, RIGHT = 30, BOTTOM = 40, LEGEND_H = 30;

    static void write(Path file, List<String> groups, List<String> series, List<Panel> panels) throws IOException {
        for (Panel p : panels)
            if (p.values().length != groups.size() || Arrays.stream(p.values()).anyMatch(v -> v.length != series.size()))
                throw new IllegalArgumentException("panel " + p.title() + " needs " + groups.size() + " x " + series.size() + " values");
        BufferedImage image = new BufferedImage(PANEL_W * panels.size(), PANEL_H + LEGEND_H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, image.getWidth(), image.getHeight());
        for (int p = 0; p < panels.size(); p++) drawPanel(g, p * PANEL_W, groups, panels.get(p));
        int lx = ChartFrame.left(maxY(panels.getFirst())), textY = PANEL_H + 4, capsH = PixelFont.HEIGHT * TEXT_SCALE;
        for (int s = 0; s < series.size(); s++) {
            g.setColor(COLORS[s % COLORS.length]);
            g.fillRect(lx, textY, 14, capsH);
            g.setColor(Color.BLACK);
            PixelFont.draw(g, series.get(s), lx + 20, textY, TEXT_SCALE);
            lx += 36 + PixelFont.width(series.get(s), TEXT_SCALE);
        }
        g.dispose();
        ImageIO.write(image, "png", file.toFile());
    }

    private static void drawPanel(Graphics2D g, int x0, List<String> groups, Panel panel) {
        double maxY = maxY(panel);
        int left = ChartFrame.left(maxY), w = PANEL_W - left - RIGHT, h = PANEL_H - TOP - BOTTOM;
        ChartFrame.draw(g, x0, w, h, panel.title(), panel.yLabel(), maxY);
        int groupW = w / groups.size();
        for (int gi = 0; gi < groups.size(); gi++) {
            double[] values = panel.values()[gi];
            // A fifth of the group's width either side is left as space between groups.
            int barW = Math.max(1, groupW * 3 / 5 / values.length), gx = x0 + left + gi * groupW + groupW / 5;
            for (int s = 0; s < values.length; s++) {
                if (!Double.isFinite(values[s])) continue;
                int barH = (int) Math.round(Math.max(0, values[s]) / maxY * h);
                g.setColor(COLORS[s % COLORS.length]);
                g.fillRect(gx + s * barW, TOP + h - barH, barW - 1, barH);
            }
            g.setColor(Color.BLACK);
            String label = groups.get(gi);
            PixelFont.draw(g, label, x0 + left + gi * groupW + groupW / 2 - PixelFont.width(label, TEXT_SCALE) / 2, TOP + h + 12, TEXT_SCALE);
        }
    }

    private static double maxY(Panel panel) {
        return ChartFrame.maxY(Arrays.stream(panel.values()).flatMapToDouble(Arrays::stream).toArray());
    }
}
