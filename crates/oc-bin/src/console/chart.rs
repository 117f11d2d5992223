//! The last hour of an instance drawn as inline SVG by the server: events per minute stacked by type (bars, left
//! axis) and the median change-to-delivery latency of each minute (a line, right axis). No chart library; the
//! figures are also given as text for screen readers.

use chrono::{DateTime, Duration, Utc};
use maud::{Markup, html};

/// Minutes on the chart.
pub(super) const MINUTES: usize = 60;

/// Events of one minute, by type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) created: u32,
    pub(super) updated: u32,
    pub(super) deleted: u32,
}

impl Counts {
    fn total(&self) -> u32 {
        self.created + self.updated + self.deleted
    }
}

/// What the chart shows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChartData {
    /// The first minute.
    pub(super) start: DateTime<Utc>,
    /// Events per minute.
    pub(super) counts: [Counts; MINUTES],
    /// Median change-to-delivery latency per minute, in seconds (of the delivered events sampled).
    pub(super) latency: [Option<f64>; MINUTES],
    /// True when more events were recorded than the chart reads.
    pub(super) truncated: bool,
}

impl ChartData {
    /// Nothing yet, from `start`.
    pub(super) fn new(start: DateTime<Utc>) -> ChartData {
        ChartData { start, counts: [Counts::default(); MINUTES], latency: [None; MINUTES], truncated: false }
    }

    /// The minute of `at` on the chart, when it is on it.
    pub(super) fn minute_of(&self, at: DateTime<Utc>) -> Option<usize> {
        let ms = (at - self.start).num_milliseconds();
        // before the start is off the chart (a division would round -1 s to minute 0)
        usize::try_from(ms).ok().map(|ms| ms / 60_000).filter(|m| *m < MINUTES)
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 56.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 52.0;

/// A round axis maximum at or above `v` (1, 2, 5 × 10^n).
fn nice(v: f64) -> f64 {
    if v <= 1.0 {
        return 1.0;
    }
    let exp = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * exp).find(|c| *c >= v).unwrap_or(10.0 * exp)
}

fn fmt(v: f64) -> String {
    if v >= 10.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.1}") }
}

/// The chart as an `<svg>` element followed by its figures in a paragraph.
pub(super) fn render(d: &ChartData) -> Markup {
    html! {
        (render_svg(d))
        p.chart-summary #chart-summary { (describe(d)) }
    }
}

/// The figures of the chart in a sentence.
fn describe(d: &ChartData) -> String {
    let total: Counts = d.counts.iter().fold(Counts::default(), |a, c| Counts {
        created: a.created + c.created,
        updated: a.updated + c.updated,
        deleted: a.deleted + c.deleted,
    });
    let mut sampled: Vec<f64> = d.latency.iter().flatten().copied().collect();
    sampled.sort_by(f64::total_cmp);
    let median = sampled.get(sampled.len() / 2).copied();
    format!(
        "{} {} in the last hour{}: {} created, {} updated, {} deleted. {}",
        total.total(),
        if total.total() == 1 { "event" } else { "events" },
        if d.truncated { " (only the newest counted)" } else { "" },
        total.created,
        total.updated,
        total.deleted,
        match median {
            Some(m) => format!("Median change-to-delivery latency {} s.", fmt(m)),
            None => "No delivery in the last hour.".to_string(),
        }
    )
}

/// The chart alone, a standalone SVG document (`chart.svg`).
pub(super) fn render_svg(d: &ChartData) -> Markup {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / MINUTES as f64;
    let max_count = nice(d.counts.iter().map(Counts::total).max().unwrap_or(0) as f64);
    let max_latency = nice(d.latency.iter().flatten().copied().fold(0.0, f64::max));
    let y_count = |c: f64| TOP + plot_h - c / max_count * plot_h;
    let y_latency = |s: f64| TOP + plot_h - s / max_latency * plot_h;
    let description = describe(d);
    let points: String = d
        .latency
        .iter()
        .enumerate()
        .filter_map(|(i, l)| l.map(|s| format!("{:.1},{:.1}", LEFT + slot * (i as f64 + 0.5), y_latency(s))))
        .collect::<Vec<_>>()
        .join(" ");
    let bars = d.counts.iter().enumerate().flat_map(|(i, c)| {
        let x = LEFT + slot * i as f64 + 1.0;
        let w = (slot - 2.0).max(1.0);
        let mut base = 0.0;
        [("created", c.created), ("updated", c.updated), ("deleted", c.deleted)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(move |(kind, n)| {
                let y0 = y_count(base);
                base += f64::from(n);
                let y1 = y_count(base);
                (kind, x, y1, w, y0 - y1, i, n)
            })
            .collect::<Vec<_>>()
    });
    let legend_y = HEIGHT - 10.0;
    html! {
        svg.chart xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-labelledby="chart-svg-title chart-svg-desc" {
            title #chart-svg-title { "Events per minute and change-to-delivery latency, last hour" }
            desc #chart-svg-desc { (description) }
            // axes and grid
            @for f in [0.0, 0.5, 1.0] {
                @let y = TOP + plot_h - f * plot_h;
                line.grid x1=(LEFT) x2=(LEFT + plot_w) y1=(y) y2=(y) {}
                text.axis x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" { (fmt(max_count * f)) }
                text.axis.latency x=(LEFT + plot_w + 6.0) y=(y + 4.0) { (fmt(max_latency * f)) " s" }
            }
            @for m in (0..=MINUTES).step_by(10) {
                @let x = LEFT + slot * m as f64;
                @let at = d.start + Duration::minutes(m as i64);
                text.axis x=(format!("{x:.1}")) y=(TOP + plot_h + 16.0) text-anchor="middle" { (at.format("%H:%M")) }
            }
            @for (kind, x, y, w, h, i, n) in bars {
                rect class=(kind) x=(format!("{x:.1}")) y=(format!("{y:.1}")) width=(format!("{w:.1}"))
                    height=(format!("{h:.1}")) {
                    title { (n) " " (kind) " at " ((d.start + Duration::minutes(i as i64)).format("%H:%M")) }
                }
            }
            @if !points.is_empty() {
                polyline.latency points=(points) {}
            }
            // legend
            rect.key.created x=(LEFT) y=(legend_y - 9.0) width="10" height="10" {}
            text.legend x=(LEFT + 14.0) y=(legend_y) { "CREATED" }
            rect.key.updated x=(LEFT + 90.0) y=(legend_y - 9.0) width="10" height="10" {}
            text.legend x=(LEFT + 104.0) y=(legend_y) { "UPDATED" }
            rect.key.deleted x=(LEFT + 180.0) y=(legend_y - 9.0) width="10" height="10" {}
            text.legend x=(LEFT + 194.0) y=(legend_y) { "DELETED" }
            line.key.latency x1=(LEFT + 270.0) x2=(LEFT + 290.0) y1=(legend_y - 4.0) y2=(legend_y - 4.0) {}
            text.legend x=(LEFT + 296.0) y=(legend_y) { "latency change→delivery (median, right axis)" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_maxima_are_round() {
        for (v, want) in [(0.0, 1.0), (1.0, 1.0), (3.0, 5.0), (7.0, 10.0), (12.0, 20.0), (60.0, 100.0)] {
            assert_eq!(nice(v), want, "{v}");
        }
    }

    #[test]
    fn minutes_outside_the_hour_are_off_the_chart() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let d = ChartData::new(start);
        assert_eq!(d.minute_of(start), Some(0));
        assert_eq!(d.minute_of(start + Duration::seconds(59 * 60 + 59)), Some(59));
        assert_eq!(d.minute_of(start + Duration::minutes(60)), None);
        assert_eq!(d.minute_of(start - Duration::seconds(1)), None);
    }

    #[test]
    fn the_chart_draws_each_type_and_the_latency() {
        let start = DateTime::parse_from_rfc3339("2026-01-01T10:00:00Z").unwrap().with_timezone(&Utc);
        let mut d = ChartData::new(start);
        d.counts[5] = Counts { created: 2, updated: 1, deleted: 0 };
        d.counts[6].deleted = 1;
        d.latency[5] = Some(4.5);
        let svg = render(&d).into_string();
        assert_eq!(svg.matches("<rect class=\"created\"").count(), 1, "{svg}");
        assert_eq!(svg.matches("<rect class=\"deleted\"").count(), 1);
        assert!(svg.contains("<polyline class=\"latency\""));
        assert!(svg.contains("4 events in the last hour: 2 created, 1 updated, 1 deleted"));
        assert!(svg.contains("Median change-to-delivery latency 4.5 s"));
    }
}
