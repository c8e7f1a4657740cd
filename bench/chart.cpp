#include "bench/chart.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

namespace vireo::bench {
namespace {

constexpr double kLeft = 80;        // y axis labels
constexpr double kLegendW = 330;    // legend column right of the plot
constexpr double kRight = 20;
constexpr double kBarW = 22;
constexpr double kBarGap = 4;
constexpr double kGroupPad = 36;
constexpr double kMinGroupW = 150;
constexpr double kTitleH = 48;      // chart title band
constexpr double kPanelTitleH = 46;  // title + subtitle
constexpr double kPlotH = 240;
constexpr double kLabelsH = 52;     // group label + note under the x axis
constexpr double kPanelGap = 24;
constexpr double kFootH = 16;

const char* const kPalette[] = {"#1f5fa8", "#7fb0e6", "#2e8b57", "#94d3a2", "#d9822b",
                                "#f2bd85", "#b03a48", "#e8959f", "#6a4c93", "#b9a5d6"};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Three significant digits: 3.15, 31.5, 315, 3150.
std::string value_text(double v) {
  if (v >= 1000) return fmt("%.0f", v);
  if (v >= 100) return fmt("%.0f", v);
  if (v >= 10) return fmt("%.1f", v);
  return fmt("%.2f", v);
}

// A round axis top above max and its tick step (1, 2, 2.5 or 5 times a power of ten; ~5 ticks).
std::pair<double, double> nice_axis(double max) {
  if (!(max > 0)) return {1, 0.2};
  double raw = max / 5;
  double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag * 10;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  }
  return {std::ceil(max / step) * step, step};
}

double group_width(const Group& g) {
  return std::max(kMinGroupW, double(g.bars.size()) * (kBarW + kBarGap) + kGroupPad);
}

double plot_width(const Panel& p) {
  double w = 0;
  for (const auto& g : p.groups) w += group_width(g);
  return std::max(w, kMinGroupW);
}

std::vector<std::string> series_of(const Panel& p) {
  std::vector<std::string> out;
  for (const auto& g : p.groups)
    for (const auto& b : g.bars)
      if (std::find(out.begin(), out.end(), b.series) == out.end()) out.push_back(b.series);
  return out;
}

std::string text(double x, double y, const std::string& s, const char* extra = "") {
  return "<text x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y) + "\" " + extra + ">" + xml_escape(s) + "</text>\n";
}

std::string line(double x1, double y1, double x2, double y2, const char* style) {
  return "<line x1=\"" + fmt("%.1f", x1) + "\" y1=\"" + fmt("%.1f", y1) + "\" x2=\"" + fmt("%.1f", x2) + "\" y2=\"" +
         fmt("%.1f", y2) + "\" " + style + "/>\n";
}

class PanelWriter {
 public:
  PanelWriter(const Panel& p, double top) : p_(p), top_(top), series_(series_of(p)) {
    double max = 0;
    for (const auto& g : p.groups)
      for (const auto& b : g.bars) max = std::max({max, b.value / p.scale, b.max / p.scale});
    std::tie(axis_max_, step_) = nice_axis(max * 1.12);  // room for the value labels
  }

  std::string write() {
    std::string s = text(kLeft, top_ + 18, p_.title, "class=\"panel-title\" font-size=\"16\" font-weight=\"bold\"");
    if (!p_.subtitle.empty())
      s += text(kLeft, top_ + 32, p_.subtitle, "font-size=\"11\" fill=\"#555555\" class=\"panel-subtitle\"");
    s += axis();
    double x = kLeft;
    for (const auto& g : p_.groups) {
      s += group(g, x);
      x += group_width(g);
    }
    return s + legend(kLeft + plot_width(p_) + 20);
  }

 private:
  double plot_top() const { return top_ + kPanelTitleH; }
  double y_of(double v) const { return plot_top() + kPlotH * (1 - std::min(v, axis_max_) / axis_max_); }
  std::string colour(const std::string& series) const {
    auto at = std::find(series_.begin(), series_.end(), series) - series_.begin();
    return kPalette[std::size_t(at) % std::size(kPalette)];
  }

  std::string axis() const {
    double bottom = plot_top() + kPlotH, right = kLeft + plot_width(p_);
    std::string s;
    for (double v = 0; v <= axis_max_ + step_ / 2; v += step_) {
      s += line(kLeft, y_of(v), right, y_of(v), "stroke=\"#dddddd\" stroke-width=\"1\"");
      s += text(kLeft - 6, y_of(v) + 4, value_text(v), "font-size=\"11\" text-anchor=\"end\"");
    }
    s += line(kLeft, plot_top(), kLeft, bottom, "stroke=\"#333333\" stroke-width=\"1\"");
    s += line(kLeft, bottom, right, bottom, "stroke=\"#333333\" stroke-width=\"1\"");
    double mid = plot_top() + kPlotH / 2;
    s += "<text x=\"24\" y=\"" + fmt("%.1f", mid) + "\" font-size=\"13\" text-anchor=\"middle\" transform=\"rotate(-90 24 " +
         fmt("%.1f", mid) + ")\" class=\"y-label\">" + xml_escape(p_.unit) + "</text>\n";
    return s;
  }

  std::string bar(const Bar& b, double x) const {
    double v = b.value / p_.scale, y = y_of(v), bottom = plot_top() + kPlotH;
    std::string s = "<rect class=\"bar\" data-series=\"" + xml_escape(b.series) + "\" data-value=\"" + fmt("%g", b.value) +
                    "\" x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y) + "\" width=\"" + fmt("%.1f", kBarW) +
                    "\" height=\"" + fmt("%.1f", bottom - y) + "\" fill=\"" + colour(b.series) + "\"/>\n";
    double cx = x + kBarW / 2, label_y = y - 4;
    if (b.runs > 1 && b.max > b.min) {
      double y_min = y_of(b.min / p_.scale), y_max = y_of(b.max / p_.scale);
      s += line(cx, y_min, cx, y_max, "stroke=\"#222222\" stroke-width=\"1\"");
      s += line(cx - 4, y_min, cx + 4, y_min, "stroke=\"#222222\" stroke-width=\"1\"");
      s += line(cx - 4, y_max, cx + 4, y_max, "stroke=\"#222222\" stroke-width=\"1\"");
      label_y = std::min(label_y, y_max - 4);
    }
    std::string transform = "transform=\"rotate(-90 " + fmt("%.1f", cx + 4) + " " + fmt("%.1f", label_y) + ")\"";
    return s + "<text x=\"" + fmt("%.1f", cx + 4) + "\" y=\"" + fmt("%.1f", label_y) + "\" font-size=\"11\" " + transform +
           " class=\"value\">" + xml_escape(value_text(v)) + "</text>\n";
  }

  std::string group(const Group& g, double x) const {
    double w = group_width(g), used = double(g.bars.size()) * (kBarW + kBarGap) - kBarGap;
    double bx = x + (w - used) / 2;
    std::string s;
    for (const auto& b : g.bars) {
      s += bar(b, bx);
      bx += kBarW + kBarGap;
    }
    double below = plot_top() + kPlotH;
    s += text(x + w / 2, below + 18, g.label, "font-size=\"12\" text-anchor=\"middle\" class=\"group\"");
    if (!g.note.empty()) s += text(x + w / 2, below + 34, g.note, "font-size=\"10\" text-anchor=\"middle\" class=\"note\"");
    return s;
  }

  std::string legend(double x) const {
    std::string s;
    double y = plot_top() + 4;
    for (const auto& name : series_) {
      s += "<rect x=\"" + fmt("%.1f", x) + "\" y=\"" + fmt("%.1f", y) + "\" width=\"12\" height=\"12\" fill=\"" +
           colour(name) + "\"/>\n";
      s += text(x + 18, y + 10, name, "font-size=\"11\" class=\"legend\"");
      y += 18;
    }
    return s;
  }

  const Panel& p_;
  double top_;
  std::vector<std::string> series_;
  double axis_max_ = 1;
  double step_ = 1;
};

}  // namespace

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string render_svg(const std::string& title, const std::vector<Panel>& panels,
                       const std::vector<std::string>& footnotes) {
  double width = 640;
  for (const auto& p : panels) {
    width = std::max(width, kLeft + plot_width(p) + 20 + kLegendW + kRight);
    // Titles must not be clipped: ~0.6 em per character (16 px bold title, 11 px subtitle).
    width = std::max({width, kLeft + 10.0 * double(p.title.size()) + kRight,
                      kLeft + 6.6 * double(p.subtitle.size()) + kRight});
  }
  double panel_h = kPanelTitleH + kPlotH + kLabelsH + kPanelGap;
  double height = kTitleH + panel_h * double(panels.size()) + kFootH * double(footnotes.size()) + 12;
  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
                  fmt("%.0f", width) + "\" height=\"" + fmt("%.0f", height) + "\" viewBox=\"0 0 " + fmt("%.0f", width) +
                  " " + fmt("%.0f", height) + "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + fmt("%.0f", width) + "\" height=\"" + fmt("%.0f", height) + "\" fill=\"#ffffff\"/>\n";
  s += text(width / 2, 30, title, "font-size=\"20\" font-weight=\"bold\" text-anchor=\"middle\" class=\"title\"");
  double top = kTitleH;
  for (const auto& p : panels) {
    s += PanelWriter(p, top).write();
    top += panel_h;
  }
  for (const auto& f : footnotes) {
    s += text(kLeft, top + 10, f, "font-size=\"11\" fill=\"#555555\" class=\"footnote\"");
    top += kFootH;
  }
  return s + "</svg>\n";
}

}  // namespace vireo::bench
