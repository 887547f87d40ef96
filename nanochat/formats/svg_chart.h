// svg_chart: simple line charts as standalone SVG files (the report's loss and bits-per-byte curves).
//
//   nanochat::ChartSeries s{"train/loss", steps, losses};
//   std::string svg = nanochat::svg_line_chart("Base model: train loss", "step", "loss", {s});
//   nanochat::write_file_atomic(dir / "base-train-loss.svg", svg);
//
// Axes with "nice" ticks (1, 2, 5 x 10^k), grid lines, tick labels, axis labels, a title, a legend when there is
// more than one series, and a marker per point when a series is short. Points with non-finite values are skipped.
// Plain SVG 1.1 with no scripts or external fonts, so browsers, GitHub and rsvg-convert render it the same.
// Not covered: log axes, several y axes, dates on the x axis.
#pragma once

#include <string>
#include <vector>

namespace nanochat {

struct ChartSeries {
  std::string label;
  std::vector<double> x, y;
};

// Tick positions covering [lo, hi] with about `target` steps of 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
// A tick label: shortest of plain/scientific, no trailing zeros ("0.5", "1200", "1e+06").
std::string format_tick(double v);

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<ChartSeries>& series, int width = 720, int height = 420);

}  // namespace nanochat
