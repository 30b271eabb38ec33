//! Plots as hand-written SVG: latency by percentile (the usual HdrHistogram
//! plot: x is 1/(1-percentile) on a log scale, y is latency in ms on a log
//! scale) and bar charts (throughput per second or per scenario).

use std::fmt::Write as _;

use hdrhistogram::Histogram;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];
/// Most bars drawn; longer series are summed into this many.
const MAX_BARS: usize = 120;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="100%" height="100%" fill="white"/><text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
}

/// Latency (ms, log scale) against 1/(1-percentile) (log scale), one line
/// per histogram.
pub fn latency_plot(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    let mut out = String::new();
    header(&mut out, title);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    // x: 1/(1-q) from 1 to 10^5 (99.999 %).
    let x_decades = 5.0;
    let x = |q: f64| {
        let inverse = 1.0 / (1.0 - q.min(0.99999));
        LEFT + plot_w * inverse.log10().clamp(0.0, x_decades) / x_decades
    };
    let max_us = series
        .iter()
        .map(|(_, h)| h.max())
        .max()
        .unwrap_or(1)
        .max(10);
    let min_us = series
        .iter()
        .filter(|(_, h)| !h.is_empty())
        .map(|(_, h)| h.min())
        .min()
        .unwrap_or(1)
        .max(1);
    let lo = (min_us as f64 / 1_000.0).log10().floor();
    let hi = (max_us as f64 / 1_000.0).log10().ceil().max(lo + 1.0);
    let y = |us: u64| {
        let v = (us.max(1) as f64 / 1_000.0).log10().clamp(lo, hi);
        TOP + plot_h * (1.0 - (v - lo) / (hi - lo))
    };
    for d in 0..=x_decades as i32 {
        let px = LEFT + plot_w * d as f64 / x_decades;
        let label = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"][d as usize];
        let _ = writeln!(
            out,
            r##"<line x1="{px}" y1="{TOP}" x2="{px}" y2="{}" stroke="#ddd"/><text x="{px}" y="{}" text-anchor="middle">{label}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 16.0
        );
    }
    let mut decade = lo;
    while decade <= hi {
        let py = TOP + plot_h * (1.0 - (decade - lo) / (hi - lo));
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{} ms</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 20.0
    );
    for (i, (name, h)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        if !h.is_empty() {
            let points: Vec<String> = h
                .iter_quantiles(5)
                .map(|v| {
                    format!(
                        "{:.1},{:.1}",
                        x(v.quantile_iterated_to()),
                        y(v.value_iterated_to())
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
        }
        let _ = writeln!(
            out,
            r#"<rect x="{}" y="{}" width="12" height="3" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            LEFT + 10.0,
            TOP + 10.0 + 16.0 * i as f64,
            LEFT + 28.0,
            TOP + 15.0 + 16.0 * i as f64,
            escape(name)
        );
    }
    out.push_str("</svg>\n");
    out
}

/// A bar chart of `bars` (label, value) with `x_label` under it.
pub fn bar_plot(title: &str, x_label: &str, bars: &[(String, f64)]) -> String {
    let bars: Vec<(String, f64)> = if bars.len() > MAX_BARS {
        let per = bars.len().div_ceil(MAX_BARS);
        bars.chunks(per)
            .map(|c| {
                (
                    c[0].0.clone(),
                    c.iter().map(|b| b.1).sum::<f64>() / c.len() as f64,
                )
            })
            .collect()
    } else {
        bars.to_vec()
    };
    let mut out = String::new();
    header(&mut out, title);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let top = bars.iter().map(|b| b.1).fold(1.0, f64::max) * 1.1;
    for tick in 0..=4 {
        let value = top * tick as f64 / 4.0;
        let py = TOP + plot_h * (1.0 - tick as f64 / 4.0);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" y1="{py}" x2="{}" y2="{py}" stroke="#ddd"/><text x="{}" y="{}" text-anchor="end">{value:.0}</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0
        );
    }
    let slot = plot_w / bars.len().max(1) as f64;
    let label_every = (bars.len() / 12).max(1);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = plot_h * value / top;
        let px = LEFT + slot * i as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"/>"#,
            px + slot * 0.1,
            TOP + plot_h - h,
            slot * 0.8,
            h,
            COLOURS[0]
        );
        if i % label_every == 0 {
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                px + slot / 2.0,
                TOP + plot_h + 16.0,
                escape(label)
            );
        }
    }
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 20.0,
        escape(x_label)
    );
    out.push_str("</svg>\n");
    out
}
