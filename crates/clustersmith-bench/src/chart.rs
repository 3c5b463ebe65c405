//! An SVG chart of topology-agreement time against N, per tool and node-timeout, from the
//! result file's rows (medians with min–max whiskers, log scales on both axes).

use std::fmt::Write as _;

use crate::report::Row;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

struct Series {
    label: String,
    color: &'static str,
    dashed: bool,
    /// (N, median, min, max) in seconds.
    points: Vec<(f64, f64, f64, f64)>,
}

pub fn svg(rows: &[Row], metric: &str, start: &str) -> String {
    let mut timeouts: Vec<u64> = rows.iter().map(|r| r.node_timeout_ms).collect();
    timeouts.sort_unstable();
    timeouts.dedup();
    let mut series = Vec::new();
    for (ti, timeout) in timeouts.iter().enumerate() {
        for (tool, color) in [("clustersmith", "#1b7837"), ("redis-cli", "#b2182b")] {
            let points = rows
                .iter()
                .filter(|r| r.metric == metric && r.start == start && r.node_timeout_ms == *timeout)
                .filter_map(|r| {
                    let s = if tool == "clustersmith" {
                        r.clustersmith
                    } else {
                        r.redis_cli
                    }?;
                    Some((r.nodes as f64, s.median / 1e3, s.min / 1e3, s.max / 1e3))
                })
                .collect::<Vec<_>>();
            if !points.is_empty() {
                series.push(Series {
                    label: format!("{tool}, node-timeout {timeout}"),
                    color,
                    dashed: ti > 0,
                    points,
                });
            }
        }
    }
    let all = series.iter().flat_map(|s| s.points.iter());
    let (mut x_min, mut x_max, mut y_min, mut y_max) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (n, _, lo, hi) in all {
        x_min = x_min.min(*n);
        x_max = x_max.max(*n);
        y_min = y_min.min(*lo);
        y_max = y_max.max(*hi);
    }
    if series.is_empty() {
        (x_min, x_max, y_min, y_max) = (1.0, 10.0, 0.1, 1.0);
    }
    // Whole decades on the time axis.
    let y_lo = 10f64.powf(y_min.max(1e-3).log10().floor());
    let y_hi = 10f64.powf(y_max.max(y_lo * 10.0).log10().ceil());
    let (x_lo, x_hi) = ((x_min * 0.8).ln(), (x_max * 1.2).ln());
    let px = |n: f64| LEFT + (n.ln() - x_lo) / (x_hi - x_lo) * (WIDTH - LEFT - RIGHT);
    let py = |t: f64| {
        let t = t.max(y_lo);
        HEIGHT
            - BOTTOM
            - (t.log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10()) * (HEIGHT - TOP - BOTTOM)
    };

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="22" font-size="14">Time to {metric} ({start} nodes), median with min–max</text>"#
    );
    // Axes and grid.
    let mut decade = y_lo;
    while decade <= y_hi * 1.0001 {
        let y = py(decade);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            seconds(decade)
        );
        decade *= 10.0;
    }
    let mut sizes: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    sizes.sort_by(f64::total_cmp);
    sizes.dedup();
    for n in &sizes {
        let x = px(*n);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{n}</text>"##,
            HEIGHT - BOTTOM,
            HEIGHT - BOTTOM + 16.0
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">nodes (N, half primaries, one replica each)</text>"#,
        (LEFT + WIDTH - RIGHT) / 2.0,
        HEIGHT - 12.0
    );
    let _ = writeln!(
        out,
        r#"<rect x="{LEFT}" y="{TOP}" width="{:.1}" height="{:.1}" fill="none" stroke="black"/>"#,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
    // Series.
    for (i, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let path: Vec<String> = s
            .points
            .iter()
            .map(|(n, med, _, _)| format!("{:.1},{:.1}", px(*n), py(*med)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            s.color
        );
        for (n, med, lo, hi) in &s.points {
            let x = px(*n);
            let _ = writeln!(
                out,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{}"/><circle cx="{x:.1}" cy="{:.1}" r="3.5" fill="{}"/>"#,
                py(*lo),
                py(*hi),
                s.color,
                py(*med),
                s.color
            );
        }
        let ly = TOP + 14.0 + i as f64 * 20.0;
        let lx = WIDTH - RIGHT + 12.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 24.0,
            s.color,
            lx + 30.0,
            ly + 4.0,
            s.label
        );
    }
    out.push_str("</svg>\n");
    out
}

fn seconds(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.0} s")
    } else {
        format!("{:.0} ms", t * 1000.0)
    }
}
