// Tests for nanochat/svg_chart: tick choice, labels, and the SVG a chart is made of.
#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "nanochat/formats/svg_chart.h"

using namespace nanochat;

TEST(SvgChart, NiceTicks) {
  auto unit = nice_ticks(0, 1);
  ASSERT_EQ(unit.size(), 6u);
  for (size_t i = 0; i < unit.size(); i++) EXPECT_NEAR(unit[i], 0.2 * double(i), 1e-12);
  auto t = nice_ticks(0, 5000);
  EXPECT_EQ(t.front(), 0);
  EXPECT_EQ(t.back(), 5000);
  EXPECT_EQ(t[1], 1000);
  auto loss = nice_ticks(2.87, 10.4);
  EXPECT_LE(loss.front(), 2.87);
  EXPECT_GE(loss.back(), 10.4);
  EXPECT_EQ(loss[1] - loss[0], 1);
  EXPECT_EQ(loss.front(), 2);
  EXPECT_EQ(loss.back(), 11);
  auto flat = nice_ticks(3.0, 3.0);  // a single value still gets an axis around it
  EXPECT_LT(flat.front(), 3.0);
  EXPECT_GT(flat.back(), 3.0);
  EXPECT_EQ(format_tick(0.6000000000000001), "0.6");
  EXPECT_EQ(format_tick(5000), "5000");
  EXPECT_EQ(format_tick(-0.0), "0");
}

TEST(SvgChart, LineChartElements) {
  ChartSeries s{"train/loss", {0, 100, 200, 300}, {10.5, 6.0, NAN, 4.0}};
  std::string svg = svg_line_chart("Base <model> & loss", "step", "loss", {s});
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("Base &lt;model&gt; &amp; loss"), std::string::npos);
  EXPECT_NE(svg.find(">step</text>"), std::string::npos);
  EXPECT_NE(svg.find(">loss</text>"), std::string::npos);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("<polyline[^>]*points=\"([^\"]*)\"")));
  std::string pts = m[1];
  EXPECT_EQ(std::count(pts.begin(), pts.end(), ','), 3);  // the NaN point is skipped
  size_t circles = 0;
  for (size_t p = svg.find("<circle"); p != std::string::npos; p = svg.find("<circle", p + 1)) circles++;
  EXPECT_EQ(circles, 3u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) n++;
    return n;
  };
  EXPECT_EQ(count(svg, "<rect"), 1u);  // the background only: no legend box for one series
  // Two series get a legend; no data gets a "no data" note instead of axes.
  std::string two = svg_line_chart("t", "x", "y", {s, ChartSeries{"val", {0, 300}, {9, 5}}});
  EXPECT_NE(two.find(">val</text>"), std::string::npos);
  EXPECT_EQ(count(two, "<rect"), 2u);
  EXPECT_EQ(count(two, "<polyline"), 2u);
  std::string empty = svg_line_chart("t", "x", "y", {ChartSeries{"a", {}, {}}});
  EXPECT_NE(empty.find("no data"), std::string::npos);
  EXPECT_EQ(empty.find("<polyline"), std::string::npos);
}
