//! Figures drawn with `plotters` (SVG).

use plotters::prelude::*;
use std::path::Path;

#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {why}")]
pub struct PlotError {
    pub path: String,
    pub why: String,
}

/// Learning rate over steps (left axis) and replay fraction (as a second series scaled to the LR axis),
/// with stage boundaries marked.
pub fn lr_plot(
    path: &Path,
    points: &[(u64, f64, f64)],
    boundaries: &[(u64, String)],
) -> Result<(), PlotError> {
    let err = |e: String| PlotError {
        path: path.display().to_string(),
        why: e,
    };
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let max_step = points.last().map_or(1, |p| p.0 + 1);
    let max_lr = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-12) * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "learning rate (blue) and replay fraction × peak LR (orange)",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(70)
        .build_cartesian_2d(0u64..max_step, 0.0..max_lr)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc("learning rate")
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), &BLUE))
        .map_err(|e| err(e.to_string()))?;
    let peak = max_lr / 1.05;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.0, p.2 * peak)),
            &RGBColor(230, 120, 20),
        ))
        .map_err(|e| err(e.to_string()))?;
    for (step, _) in boundaries.iter().skip(1) {
        chart
            .draw_series(LineSeries::new(
                [(*step, 0.0), (*step, max_lr)],
                BLACK.mix(0.3),
            ))
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}
