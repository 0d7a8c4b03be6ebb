//! The per-budget fan chart as inline SVG, drawn on the server: no JavaScript, prints and
//! screenshots the same everywhere. Written by hand because it is a few polylines and two band
//! paths; a plotting crate would bring a font and raster stack for that.

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
    coords
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart's scales and the SVG drawn so far.
struct Canvas<'a> {
    c: &'a FanChart<'a>,
    first: Day,
    plot_w: f64,
    plot_h: f64,
    top_value: f64,
    svg: String,
}

impl Canvas<'_> {
    fn x(&self, day: Day) -> f64 {
        let n = self.c.fan.len();
        LEFT + self.plot_w * self.first.days_until(day) as f64 / (n.max(2) - 1) as f64
    }

    fn y(&self, v: f64) -> f64 {
        TOP + self.plot_h * (1.0 - v / self.top_value)
    }

    fn draw(&mut self, element: String) {
        self.svg.push_str(&element);
    }

    /// Grid lines with the value axis, and the first, middle and last day.
    fn axes(&mut self) {
        for i in 0..=4 {
            let v = self.top_value * f64::from(i) / 4.0;
            let yy = self.y(v);
            self.draw(format!(
                "<line class=\"grid\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\"/>\
                 <text class=\"axis\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                W - RIGHT,
                LEFT - 6.0,
                yy + 4.0,
                format_whole(v)
            ));
        }
        let fan = self.c.fan;
        let n = fan.len();
        for (p, anchor) in [
            (fan[0], "start"),
            (fan[n / 2], "middle"),
            (fan[n - 1], "end"),
        ] {
            let x = self.x(p.day);
            self.draw(format!(
                "<text class=\"axis\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
                H - BOTTOM + 18.0,
                p.day
            ));
        }
    }

    /// Daily spend as bars on their own scale along the bottom.
    fn bars(&mut self) {
        let c = self.c;
        let max_daily = c.fan.iter().filter_map(|p| p.actual).fold(0.0, f64::max);
        if max_daily <= 0.0 {
            return;
        }
        let bar_w = (self.plot_w / c.fan.len() as f64 * 0.7).max(1.0);
        for p in c.fan {
            if let Some(a) = p.actual {
                let h = self.plot_h * BAR_SHARE * a / max_daily;
                let x = self.x(p.day) - bar_w / 2.0;
                self.draw(format!(
                    "<rect class=\"daily\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar_w:.1}\" height=\"{h:.1}\">\
                     <title>{}: {} {}</title></rect>",
                    TOP + self.plot_h - h,
                    p.day,
                    format_whole(a),
                    esc(c.currency)
                ));
            }
        }
    }

    /// The 95% and 80% bands and the forecast mean, from the last actual day so they open out
    /// of the actual line.
    fn bands(&mut self) {
        let fan = self.c.fan;
        let band = match fan.iter().rposition(|p| !p.forecast) {
            Some(i) => &fan[i..],
            None => fan,
        };
        if !band.iter().any(|p| p.forecast) {
            return;
        }
        type Bound = fn(&FanPoint) -> f64;
        let bounds: [(&str, Bound, Bound); 2] = [
            ("band-95", |p| p.lo95, |p| p.hi95),
            ("band-80", |p| p.lo80, |p| p.hi80),
        ];
        for (class, lo, hi) in bounds {
            let upper = band.iter().map(|p| (self.x(p.day), self.y(hi(p))));
            let lower = band
                .iter()
                .rev()
                .map(|p| (self.x(p.day), self.y(lo(p).max(0.0))));
            let polygon = points(upper.chain(lower));
            self.draw(format!("<polygon class=\"{class}\" points=\"{polygon}\"/>"));
        }
        let mean = points(band.iter().map(|p| (self.x(p.day), self.y(p.cumulative))));
        self.draw(format!(
            "<polyline class=\"forecast-mean\" points=\"{mean}\"/>"
        ));
    }

    /// Cumulative actual spend, the budget line, and the evaluation day.
    fn lines(&mut self) {
        let c = self.c;
        let actual: Vec<(f64, f64)> = c
            .fan
            .iter()
            .filter(|p| !p.forecast)
            .map(|p| (self.x(p.day), self.y(p.cumulative)))
            .collect();
        if !actual.is_empty() {
            let line = points(actual.into_iter());
            self.draw(format!("<polyline class=\"actual\" points=\"{line}\"/>"));
        }
        let by = self.y(c.amount);
        self.draw(format!(
            "<line class=\"budget-line\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{by:.1}\" y2=\"{by:.1}\"/>\
             <text class=\"budget-label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">budget {} {}</text>",
            W - RIGHT,
            W - RIGHT - 4.0,
            by - 5.0,
            format_whole(c.amount),
            esc(c.currency)
        ));
        let last = c.fan[c.fan.len() - 1].day;
        if let Some(day) = c.as_of.filter(|d| *d >= self.first && *d <= last) {
            let xx = self.x(day);
            self.draw(format!(
                "<line class=\"today\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>",
                TOP + self.plot_h
            ));
        }
    }

    /// A flag on each day actions were taken, and a dot on each anomaly.
    fn markers(&mut self) {
        let c = self.c;
        for (day, text) in c.actions {
            if c.fan.iter().any(|p| p.day == *day) {
                let xx = self.x(*day);
                self.draw(format!(
                    "<g class=\"action-marker\"><line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\"/>\
                     <path d=\"M{xx:.1},{TOP} l5,-8 h-10 z\"/><title>{day}: {}</title></g>",
                    TOP + self.plot_h,
                    esc(text)
                ));
            }
        }
        for (day, actual, expected) in c.anomalies {
            if let Some(p) = c.fan.iter().find(|p| p.day == *day) {
                let (cx, cy) = (self.x(p.day), self.y(p.cumulative));
                self.draw(format!(
                    "<circle class=\"anomaly\" cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4.5\"><title>{day}: anomaly, \
                     {} {cur} against {} expected</title></circle>",
                    format_whole(*actual),
                    format_whole(*expected),
                    cur = esc(c.currency)
                ));
            }
        }
    }
}

/// The chart as an `<svg>` element.
pub fn render(c: &FanChart) -> String {
    if c.fan.is_empty() {
        return format!(
            "<p class=\"no-chart\" data-budget=\"{}\">No data for this period yet.</p>",
            esc(c.budget)
        );
    }
    let top_value = c
        .fan
        .iter()
        .map(|p| p.hi95.max(p.cumulative))
        .fold(c.amount, f64::max)
        * 1.08;
    let mut canvas = Canvas {
        c,
        first: c.fan[0].day,
        plot_w: W - LEFT - RIGHT,
        plot_h: H - TOP - BOTTOM,
        top_value,
        svg: format!(
            "<svg class=\"fan-chart\" data-budget=\"{b}\" viewBox=\"0 0 {W} {H}\" role=\"img\" \
             aria-label=\"Cumulative spend of {b} against its budget\" xmlns=\"http://www.w3.org/2000/svg\">",
            b = esc(c.budget)
        ),
    };
    canvas.axes();
    canvas.bars();
    canvas.bands();
    canvas.lines();
    canvas.markers();
    canvas.svg.push_str("</svg>");
    canvas.svg
}
