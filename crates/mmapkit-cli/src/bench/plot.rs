//! `--plot FILE.svg`: grouped bars, one group per scenario, one bar per method.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::measurement::Measurement;
use super::verdict::Verdict;

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws each method's throughput relative to the fastest in its scenario.
pub fn draw(path: &Path, title: &str, results: &[Measurement], verdicts: &[Verdict]) -> anyhow::Result<()> {
    let mut methods: Vec<&'static str> = Vec::new();
    for m in results {
        if !methods.contains(&m.method) {
            methods.push(m.method);
        }
    }
    let slots = methods.len() + 1; // one gap between groups
    let groups = verdicts.len();
    let root = SVGBackend::new(path, (1400, 640)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let labels: Vec<String> = verdicts
        .iter()
        .map(|v| results.iter().find(|m| m.scenario == v.scenario).map(|m| m.label.clone()).unwrap_or_default())
        .collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d((0..(groups * slots) as u32).into_segmented(), 0.0..1.45)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(groups * slots)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if (*i as usize) % slots == (slots - 1) / 2 => {
                labels.get(*i as usize / slots).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .y_desc("throughput relative to the fastest method (1.0 = fastest)")
        .x_desc("scenario (block size, cache state, threads)")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| fail(&e))?;
    for (j, method) in methods.iter().enumerate() {
        let color = COLORS[j % COLORS.len()];
        let bars = verdicts.iter().enumerate().filter_map(|(g, v)| {
            let best = results.iter().filter(|m| m.scenario == v.scenario).map(|m| m.bytes_per_sec).fold(0.0, f64::max);
            let m = results.iter().find(|m| m.scenario == v.scenario && m.method == *method)?;
            let x = (g * slots + j) as u32;
            let y = if best > 0.0 { m.bytes_per_sec / best } else { 0.0 };
            Some(Rectangle::new([(SegmentValue::Exact(x), 0.0), (SegmentValue::Exact(x + 1), y)], color.filled()))
        });
        chart
            .draw_series(bars)
            .map_err(|e| fail(&e))?
            .label(*method)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e)).with_context(|| format!("cannot write {}", path.display()))
}
