//! `--plot FILE.svg` of a limited run: throughput over time, one panel per
//! thread count, one line per method, on a log scale (the methods differ by
//! orders of magnitude beyond memory).

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;

use super::LimitedRun;

const COLORS: [RGBColor; 4] =
    [RGBColor(214, 39, 40), RGBColor(255, 127, 14), RGBColor(31, 119, 180), RGBColor(44, 160, 44)];

/// Draws every run's per-second rate against time.
pub fn draw(path: &Path, title: &str, runs: &[LimitedRun]) -> anyhow::Result<()> {
    let mut scenarios: Vec<(&str, &str)> = Vec::new();
    for run in runs {
        if !scenarios.iter().any(|(id, _)| *id == run.scenario) {
            scenarios.push((&run.scenario, &run.title));
        }
    }
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("cannot draw {}: {e}", path.display());
    let root = SVGBackend::new(path, (700 * scenarios.len().max(1) as u32, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|e| fail(&e))?;
    let panels = root.split_evenly((1, scenarios.len().max(1)));
    let rates = runs.iter().flat_map(|r| r.ticks.iter().map(|t| t.rate()));
    let top = rates.clone().fold(1.0, f64::max) * 2.0;
    let bottom = rates.filter(|&r| r > 0.0).fold(top, f64::min).max(1.0) / 2.0;
    let end = runs.iter().flat_map(|r| r.ticks.last().map(|t| t.at)).fold(1.0, f64::max);
    for (panel, (id, title)) in panels.iter().zip(&scenarios) {
        let mut chart = ChartBuilder::on(panel)
            .caption(*title, ("sans-serif", 16))
            .margin(14)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..end, (bottom..top).log_scale())
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds since the method started (file evicted before)")
            .y_desc("4 KiB reads per second (log scale)")
            .y_label_formatter(&|v| crate::common::units::format_count(*v))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, run) in runs.iter().filter(|r| r.scenario == *id).enumerate() {
            let color = COLORS[i % COLORS.len()];
            // A second with no reads sits on the bottom edge of the log scale.
            let points = run.ticks.iter().map(|t| (t.at, t.rate().max(bottom)));
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(format!(
                    "{} (steady {})",
                    run.method,
                    crate::common::units::format_count(run.steady_ops_per_sec)
                ))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e)).with_context(|| format!("cannot write {}", path.display()))
}
