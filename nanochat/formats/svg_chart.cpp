// svg_chart: see svg_chart.h.
#include "nanochat/formats/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/core.h>

namespace nanochat {

namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* kPalette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"};

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) return {0.0, 1.0};
  if (hi < lo) std::swap(lo, hi);
  if (hi == lo) {  // a flat line still gets an axis around it
    double pad = lo == 0 ? 1.0 : std::fabs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  double raw = (hi - lo) / std::max(target, 1);
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  double first = std::floor(lo / step + 1e-9) * step, last = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> ticks;
  for (int i = 0; first + i * step <= last + step * 1e-6 && i < 1000; i++) {
    double t = first + i * step;
    if (std::fabs(t) < step * 1e-9) t = 0.0;  // no "-0" or 1e-17 labels
    ticks.push_back(t);
  }
  return ticks;
}

std::string format_tick(double v) {
  if (v == 0) return "0";
  return fmt::format("{:.6g}", v);
}

std::string svg_line_chart(const std::string& title, const std::string& x_label, const std::string& y_label,
                           const std::vector<ChartSeries>& series, int width, int height) {
  const double left = 72, right = 24, top = 44, bottom = 56;
  const double pw = width - left - right, ph = height - top - bottom;
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  size_t points = 0;
  for (const auto& s : series) {
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); i++) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
      points++;
    }
  }
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect x=\"0\" y=\"0\" width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"26\" text-anchor=\"middle\" font-size=\"16\" font-weight=\"bold\">{3}</text>\n",
      width, height, left + pw / 2, xml_escape(title));
  if (points == 0) {
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no data</text>\n</svg>\n",
                       left + pw / 2, top + ph / 2);
    return svg;
  }
  auto xt = nice_ticks(xmin, xmax), yt = nice_ticks(ymin, ymax);
  double x0 = xt.front(), x1 = xt.back(), y0 = yt.front(), y1 = yt.back();
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

  // grid and tick labels
  svg += "<g stroke=\"#e5e5e5\" stroke-width=\"1\">\n";
  for (double t : xt)
    svg += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\"/>\n", px(t), top, top + ph);
  for (double t : yt)
    svg += fmt::format("<line x1=\"{1}\" y1=\"{0:.1f}\" x2=\"{2}\" y2=\"{0:.1f}\"/>\n", py(t), left, left + pw);
  svg += "</g>\n<g fill=\"#333\">\n";
  for (double t : xt)
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(t), top + ph + 18,
                       format_tick(t));
  for (double t : yt)
    svg +=
        fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 8, py(t) + 4, format_tick(t));
  svg += "</g>\n";
  // axes and their labels
  svg += fmt::format("<path d=\"M{0} {1} V{2} H{3}\" fill=\"none\" stroke=\"#333\" stroke-width=\"1.2\"/>\n", left, top,
                     top + ph, left + pw);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n", left + pw / 2,
                     height - 14, xml_escape(x_label));
  svg += fmt::format(
      "<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 18 {0})\">{1}</text>\n",
      top + ph / 2, xml_escape(y_label));
  // the lines
  for (size_t k = 0; k < series.size(); k++) {
    const auto& s = series[k];
    const char* color = kPalette[k % (sizeof(kPalette) / sizeof(kPalette[0]))];
    std::string pts;
    size_t n = 0;
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); i++) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      pts += fmt::format("{}{:.1f},{:.1f}", n++ ? " " : "", px(s.x[i]), py(s.y[i]));
    }
    if (n == 0) continue;
    svg += fmt::format(
        "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"{}\"/>\n", color,
        pts);
    if (n <= 40) {  // short series (evaluations every N steps): show where the measurements are
      svg += fmt::format("<g fill=\"{}\">\n", color);
      for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); i++) {
        if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
        svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.8\"/>\n", px(s.x[i]), py(s.y[i]));
      }
      svg += "</g>\n";
    }
  }
  if (series.size() > 1) {
    double lx = left + pw - 150, ly = top + 10;
    svg += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"142\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" stroke=\"#ccc\"/>\n",
        lx, ly, 8 + 18 * series.size());
    for (size_t k = 0; k < series.size(); k++) {
      const char* color = kPalette[k % (sizeof(kPalette) / sizeof(kPalette[0]))];
      double yy = ly + 16 + 18 * k;
      svg += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2.5\"/>\n",
                         lx + 8, yy - 4, lx + 30, color);
      svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", lx + 36, yy, xml_escape(series[k].label));
    }
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace nanochat
