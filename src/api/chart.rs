//! The per-budget fan chart as inline SVG, drawn on the server: no JavaScript, prints and
//! screenshots the same everywhere. Written by hand because it is a few polylines and two band
//! paths; a plotting crate would bring a font and raster stack for that.

use std::fmt::Write;

use super::page::esc;
use crate::budget::FanPoint;
use crate::domain::Day;
use crate::domain::money::format_whole;

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 40.0;
/// Share of the plot height the daily bars may take: they sit under the cumulative lines.
const BAR_SHARE: f64 = 0.22;

/// What one chart shows.
pub struct FanChart<'a> {
    /// The budget, for labels and test hooks.
    pub budget: &'a str,
    /// The period, day by day.
    pub fan: &'a [FanPoint],
    /// The budget amount.
    pub amount: f64,
    /// The currency code.
    pub currency: &'a str,
    /// The evaluation day.
    pub as_of: Option<Day>,
    /// Days the forecast smoothed out as anomalies, with actual and expected cost.
    pub anomalies: &'a [(Day, f64, f64)],
    /// Days actions were taken, with a description.
    pub actions: &'a [(Day, String)],
}

fn points(coords: impl Iterator<Item = (f64, f64)>) -> String {
    let mut s = String::new();
    for (x, y) in coords {
        let _ = write!(s, "{x:.1},{y:.1} ");
    }
    s.trim_end().to_string()
}

/// The chart as an `<svg>` element.
pub fn render(c: &FanChart) -> String {
    let n = c.fan.len();
    if n == 0 {
        return format!(
            "<p class=\"no-chart\" data-budget=\"{}\">No data for this period yet.</p>",
            esc(c.budget)
        );
    }
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - TOP - BOTTOM;
    let top_value = c
        .fan
        .iter()
        .map(|p| p.hi95.max(p.cumulative))
        .fold(c.amount, f64::max)
        * 1.08;
    let max_daily = c.fan.iter().filter_map(|p| p.actual).fold(0.0, f64::max);
    let first = c.fan[0].day;
    let x = |day: Day| LEFT + plot_w * first.days_until(day) as f64 / (n.max(2) - 1) as f64;
    let y = |v: f64| TOP + plot_h * (1.0 - v / top_value);
    let bar_w = (plot_w / n as f64 * 0.7).max(1.0);

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg class=\"fan-chart\" data-budget=\"{b}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
         aria-label=\"Cumulative spend of {b} against its budget\" xmlns=\"http://www.w3.org/2000/svg\">",
        b = esc(c.budget)
    );
    // Grid and value axis.
    for i in 0..=4 {
        let v = top_value * f64::from(i) / 4.0;
        let yy = y(v);
        let _ = write!(
            s,
            "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
             <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            format_whole(v)
        );
    }
    for (p, anchor) in [
        (c.fan[0], "start"),
        (c.fan[n / 2], "middle"),
        (c.fan[n - 1], "end"),
    ] {
        let _ = write!(
            s,
            "<text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x(p.day),
            H - BOTTOM + 18.0,
            p.day
        );
    }
    // Daily spend as bars on their own scale along the bottom.
    if max_daily > 0.0 {
        for p in c.fan {
            if let Some(a) = p.actual {
                let h = plot_h * BAR_SHARE * a / max_daily;
                let _ = write!(
                    s,
                    "<rect class=\"daily\" x=\"{:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\">\
                     <title>{}: {} {}</title></rect>",
                    x(p.day) - bar_w / 2.0,
                    TOP + plot_h - h,
                    p.day,
                    format_whole(a),
                    esc(c.currency)
                );
            }
        }
    }
    // Bands from the last actual day, so they open out of the actual line.
    let start = c.fan.iter().rposition(|p| !p.forecast);
    let band: Vec<&FanPoint> = match start {
        Some(i) => c.fan[i..].iter().collect(),
        None => c.fan.iter().collect(),
    };
    if band.iter().any(|p| p.forecast) {
        for (class, lo, hi) in [
            (
                "band-95",
                band.iter().map(|p| p.lo95).collect::<Vec<_>>(),
                band.iter().map(|p| p.hi95).collect::<Vec<_>>(),
            ),
            (
                "band-80",
                band.iter().map(|p| p.lo80).collect(),
                band.iter().map(|p| p.hi80).collect(),
            ),
        ] {
            let upper = band.iter().zip(&hi).map(|(p, v)| (x(p.day), y(*v)));
            let lower = band
                .iter()
                .zip(&lo)
                .rev()
                .map(|(p, v)| (x(p.day), y(v.max(0.0))));
            let _ = write!(
                s,
                "<polygon class=\"{class}\" points=\"{}\"/>",
                points(upper.chain(lower))
            );
        }
        let mean = band.iter().map(|p| (x(p.day), y(p.cumulative)));
        let _ = write!(
            s,
            "<polyline class=\"forecast-mean\" points=\"{}\"/>",
            points(mean)
        );
    }
    let actual: Vec<&FanPoint> = c.fan.iter().filter(|p| !p.forecast).collect();
    if !actual.is_empty() {
        let line = actual.iter().map(|p| (x(p.day), y(p.cumulative)));
        let _ = write!(
            s,
            "<polyline class=\"actual\" points=\"{}\"/>",
            points(line)
        );
    }
    // The budget line.
    let by = y(c.amount);
    let _ = write!(
        s,
        "<line class=\"budget-line\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{by:.1}\" y2=\"{by:.1}\"/>\
         <text class=\"budget-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">budget {} {}</text>",
        W - RIGHT,
        W - RIGHT - 4.0,
        by - 5.0,
        format_whole(c.amount),
        esc(c.currency)
    );
    if let Some(day) = c.as_of.filter(|d| *d >= first && *d <= c.fan[n - 1].day) {
        let xx = x(day);
        let _ = write!(
            s,
            "<line class=\"today\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>",
            TOP + plot_h
        );
    }
    for (day, text) in c.actions {
        if let Some(p) = c.fan.iter().find(|p| p.day == *day) {
            let xx = x(p.day);
            let _ = write!(
                s,
                "<g class=\"action-marker\"><line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
                 <path d=\"M{:.1},{TOP} l5,-8 h-10 z\"/><title>{day}: {}</title></g>",
                TOP + plot_h,
                xx,
                esc(text)
            );
        }
    }
    for (day, actual, expected) in c.anomalies {
        if let Some(p) = c.fan.iter().find(|p| p.day == *day) {
            let _ = write!(
                s,
                "<circle class=\"anomaly\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"4.5\"><title>{day}: anomaly, \
                 {} {cur} against {} expected</title></circle>",
                x(p.day),
                y(p.cumulative),
                format_whole(*actual),
                format_whole(*expected),
                cur = esc(c.currency)
            );
        }
    }
    s.push_str("</svg>");
    s
}
