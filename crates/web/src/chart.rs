//! Bar charts as inline SVG, drawn on the server (no script, no library): the geometry is
//! computed here and `templates/chart.svg` writes it out, escaping every label, so a chart
//! is as safe as any other template. Used by the evaluation pages (metric by mode, support
//! label distribution).

use askama::Template;

/// Colours of the series, in order (readable on white, distinct in grey print).
const PALETTE: [&str; 6] = [
    "#1f5f99", "#d9822b", "#3a8d5c", "#8e44ad", "#b03a2e", "#6c7a89",
];

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 46.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 30.0;
const BOTTOM: f64 = 56.0;

/// One bar: its box in SVG units and what it shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// Where its value is written (centre, just above the bar).
    pub label_x: f64,
    pub label_y: f64,
    pub fill: String,
    pub group: String,
    pub series: String,
    pub value: f64,
    pub value_text: String,
}

/// A horizontal grid line with its value on the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    pub y: f64,
    /// The baseline of its label.
    pub label_y: f64,
    pub label: String,
}

/// A label under a group of bars.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupLabel {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegendItem {
    pub x: f64,
    pub text_x: f64,
    pub fill: String,
    pub label: String,
}

/// A bar chart, grouped (one bar per series in each group) or simple (one series).
#[derive(Debug, Clone, Template)]
#[template(path = "chart.svg", escape = "html")]
pub struct BarChart {
    /// The element id (unique on the page).
    pub id: String,
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub groups: Vec<GroupLabel>,
    pub legend: Vec<LegendItem>,
    pub legend_y: f64,
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// A step of 1, 2 or 5 times a power of ten giving about four grid lines up to `max`.
fn nice_step(max: f64) -> f64 {
    let rough = max / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(rough)
}

impl BarChart {
    /// `values[g][s]` is series `s` of group `g`, drawn on an axis from 0 to `y_max` (values
    /// outside are clamped, missing or non-finite ones drawn as 0). `format` writes a value.
    pub fn grouped(
        id: &str,
        title: &str,
        groups: &[String],
        series: &[String],
        values: &[Vec<f64>],
        y_max: f64,
        format: fn(f64) -> String,
    ) -> Self {
        let fills: Vec<String> = (0..series.len())
            .map(|i| PALETTE[i % PALETTE.len()].to_string())
            .collect();
        let mut chart = Self::layout(
            id, title, groups, series, values, &fills, y_max, format, false,
        );
        if series.len() > 1 {
            let mut x = chart.left;
            chart.legend = series
                .iter()
                .zip(&fills)
                .map(|(label, fill)| {
                    let item = LegendItem {
                        x: round1(x),
                        text_x: round1(x + 14.0),
                        fill: fill.clone(),
                        label: label.clone(),
                    };
                    x += 24.0 + 7.0 * label.chars().count() as f64;
                    item
                })
                .collect();
        }
        chart
    }

    /// One bar per label, each in its own colour, on an axis from 0 to a round number at
    /// least the largest value (counts).
    pub fn simple(id: &str, title: &str, bars: &[(String, f64, String)]) -> Self {
        let max = bars.iter().map(|b| b.1).fold(0.0, f64::max);
        let step = nice_step(max.max(1.0)).max(1.0);
        let y_max = (max / step).ceil().max(1.0) * step;
        let groups: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let values: Vec<Vec<f64>> = bars.iter().map(|b| vec![b.1]).collect();
        let fills: Vec<String> = bars.iter().map(|b| b.2.clone()).collect();
        let mut chart = Self::layout(
            id,
            title,
            &groups,
            &[String::new()],
            &values,
            &[],
            y_max,
            |v| format!("{v:.0}"),
            true,
        );
        for (bar, fill) in chart.bars.iter_mut().zip(fills) {
            bar.fill = fill;
        }
        chart
    }

    #[allow(clippy::too_many_arguments)]
    fn layout(
        id: &str,
        title: &str,
        groups: &[String],
        series: &[String],
        values: &[Vec<f64>],
        fills: &[String],
        y_max: f64,
        format: fn(f64) -> String,
        whole_ticks: bool,
    ) -> Self {
        let y_max = if y_max.is_finite() && y_max > 0.0 {
            y_max
        } else {
            1.0
        };
        let plot_w = WIDTH - LEFT - RIGHT;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let bottom_y = TOP + plot_h;
        let group_w = plot_w / groups.len().max(1) as f64;
        let bar_w = group_w * 0.8 / series.len().max(1) as f64;
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (g, group) in groups.iter().enumerate() {
            let x0 = LEFT + g as f64 * group_w + group_w * 0.1;
            labels.push(GroupLabel {
                x: round1(LEFT + (g as f64 + 0.5) * group_w),
                label: group.clone(),
            });
            for (s, name) in series.iter().enumerate() {
                let raw = values.get(g).and_then(|v| v.get(s)).copied().unwrap_or(0.0);
                let value = if raw.is_finite() { raw } else { 0.0 };
                let height = round1(value.clamp(0.0, y_max) / y_max * plot_h);
                let x = round1(x0 + s as f64 * bar_w);
                let width = round1((bar_w - 2.0).max(1.0));
                let y = round1(bottom_y - height);
                bars.push(Bar {
                    x,
                    y,
                    width,
                    height,
                    label_x: round1(x + width / 2.0),
                    label_y: round1(y - 3.0),
                    fill: fills
                        .get(s)
                        .cloned()
                        .unwrap_or_else(|| PALETTE[0].to_string()),
                    group: group.clone(),
                    series: name.clone(),
                    value,
                    value_text: format(value),
                });
            }
        }
        let step = if whole_ticks {
            nice_step(y_max).max(1.0)
        } else {
            nice_step(y_max)
        };
        let ticks = (0..)
            .map(|i| i as f64 * step)
            .take_while(|v| *v <= y_max + step * 1e-9)
            .map(|v| {
                let y = round1(bottom_y - v / y_max * plot_h);
                Tick {
                    y,
                    label_y: round1(y + 3.5),
                    label: if step < 1.0 {
                        format!("{v:.2}")
                    } else {
                        format!("{v:.0}")
                    },
                }
            })
            .collect();
        Self {
            id: id.to_string(),
            title: title.to_string(),
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            right: WIDTH - RIGHT,
            top: TOP,
            bottom: bottom_y,
            bars,
            ticks,
            groups: labels,
            legend: Vec::new(),
            legend_y: HEIGHT - 14.0,
        }
    }

    /// The SVG markup (escaped by the template), for `{{ chart|safe }}` in a page.
    pub fn svg(&self) -> Result<String, askama::Error> {
        self.render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_decimals(v: f64) -> String {
        format!("{v:.2}")
    }

    #[test]
    fn grouped_bars_are_proportional_and_clamped() {
        let groups = vec!["recall@5".to_string(), "mrr@10".to_string()];
        let series = vec!["bm25".to_string(), "hybrid".to_string()];
        let values = vec![vec![0.5, 1.0], vec![2.0, f64::NAN]];
        let c = BarChart::grouped(
            "m",
            "Metric by mode",
            &groups,
            &series,
            &values,
            1.0,
            two_decimals,
        );
        assert_eq!(c.bars.len(), 4);
        let full = c.bottom - c.top;
        assert!((c.bars[0].height - round1(full / 2.0)).abs() < 0.11);
        assert!((c.bars[1].height - full).abs() < 0.11);
        // Above the axis: clamped to it; not a number: nothing drawn.
        assert!((c.bars[2].height - full).abs() < 0.11);
        assert_eq!(c.bars[3].height, 0.0);
        assert_eq!(c.bars[3].value_text, "0.00");
        // Every bar stands on the axis and inside the plot.
        for b in &c.bars {
            assert!((b.y + b.height - c.bottom).abs() < 0.11, "{b:?}");
            assert!(b.x >= c.left && b.x + b.width <= c.right, "{b:?}");
        }
        // Bars of one series share a colour; series differ; a legend names them.
        assert_eq!(c.bars[0].fill, c.bars[2].fill);
        assert_ne!(c.bars[0].fill, c.bars[1].fill);
        assert_eq!(c.legend.len(), 2);
        let labels: Vec<&str> = c.ticks.iter().map(|t| t.label.as_str()).collect();
        assert_eq!(labels, ["0.00", "0.25", "0.50", "0.75", "1.00"]);
    }

    #[test]
    fn simple_bars_get_a_round_axis_and_their_colours() {
        let c = BarChart::simple(
            "l",
            "Support labels",
            &[
                ("supported".into(), 7.0, "#3a8d5c".into()),
                ("weak".into(), 2.0, "#d9822b".into()),
                ("uncited".into(), 0.0, "#6c7a89".into()),
            ],
        );
        assert_eq!(c.bars.len(), 3);
        assert_eq!(c.bars[1].fill, "#d9822b");
        assert_eq!(c.bars[0].value_text, "7");
        assert_eq!(c.ticks.last().unwrap().label, "8");
        assert!(c.legend.is_empty());
        // All zero: still a drawable axis.
        let empty = BarChart::simple("e", "None", &[("x".into(), 0.0, "#000".into())]);
        assert!(empty.ticks.len() >= 2 && empty.bars[0].height == 0.0);
    }

    #[test]
    fn svg_has_one_rect_per_bar_and_escapes_labels() {
        let groups = vec!["<script>alert(1)</script>".to_string()];
        let series = vec!["a&b".to_string(), "c".to_string()];
        let c = BarChart::grouped(
            "x",
            "T \"q\"",
            &groups,
            &series,
            &[vec![0.2, 0.4]],
            1.0,
            two_decimals,
        );
        let svg = c.svg().unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 2, "{svg}");
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&#60;script&#62;"), "{svg}");
        assert!(svg.contains("a&#38;b"), "{svg}");
        assert!(!svg.contains("0000000"), "coordinates are rounded: {svg}");
        assert!(svg.contains("viewBox=\"0 0 640 280\""), "{svg}");
    }
}
