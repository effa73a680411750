//! Every figure rewarm draws (`rewarm plan --plot` and `rewarm report`), with `plotters`: one [`Chart`]
//! description, rendered as SVG or PNG by the file name's extension. PNG text uses the vendored DejaVu Sans
//! (`fonts/`), registered at run time for plotters' `ab_glyph` feature, so no system fonts are needed.

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {why}\nHINT: {hint}")]
pub struct PlotError {
    pub path: String,
    pub why: String,
    pub hint: String,
}

fn plot_error(path: &Path, why: impl ToString) -> PlotError {
    PlotError {
        path: path.display().to_string(),
        why: why.to_string(),
        hint: "check that the folder exists and is writable; figures are .svg or .png".into(),
    }
}

static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Registers the vendored font under the generic family names plotters uses; idempotent.
fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for family in ["sans-serif", "serif", "monospace"] {
            if plotters::style::register_font(family, FontStyle::Normal, FONT).is_err() {
                // Unreachable with the vendored file; figures then fail with a font error naming the file.
                eprintln!("warning: the vendored font did not load");
            }
        }
    });
}

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Line,
    /// Markers only (scatter plots).
    Points,
    Dashed,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub style: Style,
    /// Text drawn next to each point (scatter plots name their runs).
    pub point_labels: Vec<String>,
    /// A shaded band behind the series, as (x, low, high): the spread over a method's seeds.
    pub band: Vec<(f64, f64, f64)>,
}

impl Series {
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            label: label.into(),
            points,
            style: Style::Line,
            point_labels: Vec::new(),
            band: Vec::new(),
        }
    }
}

/// Axis tick format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticks {
    /// Plain decimals (losses, fractions).
    Plain,
    /// 1.5e-3 (learning rates).
    Scientific,
    /// 120k, 1.5M (tokens, steps).
    Si,
}

/// A line or scatter chart: the one figure type of the report.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_ticks: Ticks,
    pub y_ticks: Ticks,
    pub series: Vec<Series>,
    /// Vertical markers (stage boundaries) with their names.
    pub vlines: Vec<(f64, String)>,
    /// Fixed ranges; by default the data's, padded.
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    pub size: (u32, u32),
}

impl Chart {
    pub fn new(title: impl Into<String>, x_label: &str, y_label: &str) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x_ticks: Ticks::Plain,
            y_ticks: Ticks::Plain,
            series: Vec::new(),
            vlines: Vec::new(),
            x_range: None,
            y_range: None,
            size: (900, 460),
        }
    }

    /// Writes the chart to `path`: SVG unless the name ends in `.png`.
    pub fn save(&self, path: &Path) -> Result<(), PlotError> {
        let png = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("png"));
        if png {
            let bytes = self.to_png().map_err(|e| plot_error(path, e))?;
            std::fs::write(path, bytes).map_err(|e| plot_error(path, e))
        } else {
            let svg = self.to_svg().map_err(|e| plot_error(path, e))?;
            std::fs::write(path, svg).map_err(|e| plot_error(path, e))
        }
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String, String> {
        register_fonts();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.draw(root)?;
        }
        Ok(out)
    }

    /// The chart as PNG bytes (RGB, 8 bits).
    pub fn to_png(&self) -> Result<Vec<u8>, String> {
        register_fonts();
        let (w, h) = self.size;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
            self.draw(root)?;
        }
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, w, h);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(&rgb).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        Ok(bytes)
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let band = |s: &Series| -> Vec<(f64, f64)> {
            s.band
                .iter()
                .flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)])
                .collect()
        };
        let bands: Vec<(f64, f64)> = self.series.iter().flat_map(band).collect();
        let all = || {
            self.series
                .iter()
                .flat_map(|s| s.points.iter())
                .chain(&bands)
        };
        let span = |lo: f64, hi: f64, pad: f64| -> (f64, f64) {
            if !(lo.is_finite() && hi.is_finite()) {
                return (0.0, 1.0);
            }
            if hi - lo < 1e-12 {
                let d = if lo.abs() > 0.0 { lo.abs() * 0.1 } else { 1.0 };
                return (lo - d, hi + d);
            }
            let d = (hi - lo) * pad;
            (lo - d, hi + d)
        };
        let fold = |f: fn(&(f64, f64)) -> f64| {
            all()
                .map(f)
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let x = self.x_range.unwrap_or_else(|| {
            let (lo, hi) = fold(|p| p.0);
            let (lo, hi) = self
                .vlines
                .iter()
                .fold((lo, hi), |(a, b), v| (a.min(v.0), b.max(v.0)));
            let (lo, hi) = span(lo, hi, 0.04);
            // Room on the right for the names written next to points.
            if self.series.iter().any(|s| !s.point_labels.is_empty()) {
                (lo, hi + (hi - lo) * 0.2)
            } else {
                (lo, hi)
            }
        });
        let y = self.y_range.unwrap_or_else(|| {
            let (lo, hi) = fold(|p| p.1);
            span(lo, hi, 0.06)
        });
        (x, y)
    }

    fn draw<DB: DrawingBackend>(&self, root: DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(draw_error)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(42)
            .y_label_area_size(72)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(draw_error)?;
        self.draw_mesh(&mut chart, x1 - x0, y1 - y0)?;
        for (x, name) in &self.vlines {
            draw_vline(&mut chart, *x, name, (y0, y1))?;
        }
        let mut legend = false;
        for (i, s) in self.series.iter().enumerate() {
            legend |= draw_series(&mut chart, s, PALETTE[i % PALETTE.len()])?;
        }
        if legend {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.4))
                .label_font(("sans-serif", 13))
                .position(SeriesLabelPosition::UpperRight)
                .draw()
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)
    }

    /// The grid, the axis names and the tick labels (formatted for the axes' spans).
    fn draw_mesh<DB: DrawingBackend>(
        &self,
        chart: &mut Plot<DB>,
        x_span: f64,
        y_span: f64,
    ) -> Result<(), String> {
        let (xt, yt) = (self.x_ticks, self.y_ticks);
        let xf = move |v: &f64| tick(*v, xt, x_span);
        let yf = move |v: &f64| tick(*v, yt, y_span);
        chart
            .configure_mesh()
            .x_desc(self.x_label.as_str())
            .y_desc(self.y_label.as_str())
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .light_line_style(BLACK.mix(0.05))
            .draw()
            .map_err(draw_error)
    }
}

/// The plotting area of a [`Chart`]: f64 on both axes.
type Plot<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn draw_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    e.to_string()
}

/// A vertical marker at `x` over `(y0, y1)`, its name at the top.
fn draw_vline<DB: DrawingBackend>(
    chart: &mut Plot<DB>,
    x: f64,
    name: &str,
    (y0, y1): (f64, f64),
) -> Result<(), String> {
    chart
        .draw_series(LineSeries::new(
            [(x, y0), (x, y1)],
            BLACK.mix(0.35).stroke_width(1),
        ))
        .map_err(draw_error)?;
    chart
        .draw_series(std::iter::once(
            EmptyElement::at((x, y1))
                + Text::new(name.to_owned(), (4, 4), ("sans-serif", 12).into_font()),
        ))
        .map_err(draw_error)?;
    Ok(())
}

/// Draws `s` in `color` (non-finite points left out), with its point labels; true if it has a legend entry.
fn draw_series<DB: DrawingBackend>(
    chart: &mut Plot<DB>,
    s: &Series,
    color: RGBColor,
) -> Result<bool, String> {
    draw_band(chart, &s.band, color)?;
    let points = s
        .points
        .iter()
        .copied()
        .filter(|p| p.0.is_finite() && p.1.is_finite());
    let drawn = match s.style {
        Style::Line => chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .map_err(draw_error)?,
        Style::Dashed => chart
            .draw_series(DashedLineSeries::new(points, 6, 4, color.stroke_width(2)))
            .map_err(draw_error)?,
        Style::Points => chart
            .draw_series(points.map(|p| Circle::new(p, 5, color.filled())))
            .map_err(draw_error)?,
    };
    if !s.label.is_empty() {
        let label = drawn.label(s.label.clone());
        if s.style == Style::Points {
            label.legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
        } else {
            label.legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if !s.point_labels.is_empty() {
        chart
            .draw_series(s.points.iter().zip(&s.point_labels).map(|(&p, l)| {
                EmptyElement::at(p) + Text::new(l.clone(), (7, -14), ("sans-serif", 12).into_font())
            }))
            .map_err(draw_error)?;
    }
    Ok(!s.label.is_empty())
}

/// A band as one filled polygon in a light shade of `color`: the lows left to right, the highs back
/// (non-finite points left out).
fn draw_band<DB: DrawingBackend>(
    chart: &mut Plot<DB>,
    band: &[(f64, f64, f64)],
    color: RGBColor,
) -> Result<(), String> {
    let finite: Vec<&(f64, f64, f64)> = band
        .iter()
        .filter(|b| b.0.is_finite() && b.1.is_finite() && b.2.is_finite())
        .collect();
    if finite.len() < 2 {
        return Ok(());
    }
    let outline: Vec<(f64, f64)> = finite
        .iter()
        .map(|b| (b.0, b.1))
        .chain(finite.iter().rev().map(|b| (b.0, b.2)))
        .collect();
    chart
        .draw_series(std::iter::once(Polygon::new(
            outline,
            color.mix(0.2).filled(),
        )))
        .map_err(draw_error)?;
    Ok(())
}

/// Tableau 10: distinct in colour and in greyscale.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Tick text for `v` on an axis spanning `span`: plain ticks get as many decimals as the span needs, the
/// same for every tick of the axis.
pub fn tick(v: f64, t: Ticks, span: f64) -> String {
    match t {
        Ticks::Plain => {
            let decimals = if span > 0.0 && span.is_finite() {
                (2 - span.log10().floor() as i32).clamp(0, 6) as usize
            } else {
                2
            };
            format!("{:.decimals$}", v + 0.0)
        }
        Ticks::Scientific => {
            if v == 0.0 {
                "0".into()
            } else {
                format!("{v:.1e}")
            }
        }
        Ticks::Si => {
            let a = v.abs();
            let (d, suffix) = if a >= 1e12 {
                (1e12, "T")
            } else if a >= 1e9 {
                (1e9, "G")
            } else if a >= 1e6 {
                (1e6, "M")
            } else if a >= 1e3 {
                (1e3, "k")
            } else {
                (1.0, "")
            };
            let x = v / d;
            let digits = if suffix.is_empty() || x.fract().abs() < 1e-9 {
                0
            } else {
                1
            };
            format!("{x:.digits$}{suffix}")
        }
    }
}

/// Learning rate over steps, with the replay fraction as a second series scaled to the LR axis (×peak LR)
/// and stage boundaries marked. `points` are (step, lr, replay fraction); `boundaries` (first step, stage
/// name). Used by `rewarm plan --plot` and the report; the format follows the file name (.svg or .png).
pub fn lr_plot(
    path: &Path,
    points: &[(u64, f64, f64)],
    boundaries: &[(u64, String)],
) -> Result<(), PlotError> {
    lr_chart("learning rate and replay fraction", points, boundaries).save(path)
}

/// The chart behind [`lr_plot`].
pub fn lr_chart(title: &str, points: &[(u64, f64, f64)], boundaries: &[(u64, String)]) -> Chart {
    let peak = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-12);
    let mut chart = Chart::new(title, "step", "learning rate");
    chart.y_ticks = Ticks::Scientific;
    chart.x_ticks = Ticks::Si;
    chart.y_range = Some((0.0, peak * 1.08));
    chart.series.push(Series::line(
        "learning rate",
        points.iter().map(|p| (p.0 as f64, p.1)).collect(),
    ));
    if points.iter().any(|p| p.2 > 0.0) {
        chart.series.push(Series {
            style: Style::Dashed,
            ..Series::line(
                "replay fraction × peak LR",
                points.iter().map(|p| (p.0 as f64, p.2 * peak)).collect(),
            )
        });
    }
    chart.vlines = boundaries
        .iter()
        .skip(1)
        .map(|(s, name)| (*s as f64, name.clone()))
        .collect();
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(tick(120_000.0, Ticks::Si, 1e6), "120k");
        assert_eq!(tick(1_500_000.0, Ticks::Si, 1e6), "1.5M");
        assert_eq!(tick(30.0, Ticks::Si, 60.0), "30");
        assert_eq!(tick(0.002, Ticks::Scientific, 0.01), "2.0e-3");
        assert_eq!(tick(6.8, Ticks::Plain, 3.0), "6.80");
        assert_eq!(tick(0.8, Ticks::Plain, 2.2), "0.80");
        assert_eq!(tick(0.05, Ticks::Plain, 0.25), "0.050");
        assert_eq!(tick(1200.0, Ticks::Plain, 5000.0), "1200");
    }

    #[test]
    fn svg_and_png_render_text_and_are_deterministic() {
        let points: Vec<(u64, f64, f64)> = (0..60)
            .map(|t| {
                (
                    t,
                    1e-3 * (t % 30) as f64 / 30.0,
                    if t < 30 { 0.0 } else { 0.25 },
                )
            })
            .collect();
        let b = vec![(0, "a".to_owned()), (30, "b".to_owned())];
        let chart = lr_chart("lr", &points, &b);
        let svg = chart.to_svg().unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("learning rate"));
        assert_eq!(svg, chart.to_svg().unwrap());
        let png = chart.to_png().unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert_eq!(png, chart.to_png().unwrap());
        // Text is rendered: the same chart without a title differs in pixels.
        let mut untitled = chart.clone();
        untitled.title.clear();
        assert_ne!(png, untitled.to_png().unwrap());
    }

    #[test]
    fn a_band_is_drawn_behind_its_series_and_widens_the_y_range() {
        let mut chart = Chart::new("mean of seeds", "tokens", "loss");
        let mut mean = Series::line("m", vec![(0.0, 5.0), (1.0, 4.0), (2.0, 3.5)]);
        mean.band = vec![(0.0, 4.8, 5.2), (1.0, 3.5, 4.6), (2.0, 3.0, 3.9)];
        chart.series.push(mean);
        let (_, (y0, y1)) = chart.ranges();
        assert!(y0 < 3.0 && y1 > 5.2, "{y0} {y1}");
        let svg = chart.to_svg().unwrap();
        assert!(svg.contains("<polygon"), "{svg}");
        let mut bare = chart.clone();
        bare.series[0].band.clear();
        assert!(!bare.to_svg().unwrap().contains("<polygon"));
        assert_ne!(chart.to_png().unwrap(), bare.to_png().unwrap());
    }
}
