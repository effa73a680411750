//! Drawing the dashboard: one panel per run, side by side as the width allows (pages of them otherwise),
//! each with a status line, the validation losses per set with the stage boundaries, the training loss,
//! the learning rate and the stability gap so far; a footer with the keys.

use crate::view::RunView;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

/// A panel narrower than this is unreadable: runs beyond what fits go to further pages.
const MIN_PANEL_WIDTH: u16 = 60;
const SET_COLORS: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Magenta,
    Color::LightRed,
    Color::LightBlue,
];

/// How many runs fit side by side in `width` columns (at least one).
pub fn per_page(width: u16) -> usize {
    (width / MIN_PANEL_WIDTH).clamp(1, 4) as usize
}

/// The whole screen: page `page` of `views`, and a footer saying `status`.
pub fn draw(frame: &mut Frame, views: &[RunView], page: usize, status: &str) {
    let [body, footer] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(frame.area());
    let n = per_page(body.width);
    let pages = views.len().div_ceil(n).max(1);
    let page = page % pages;
    let shown: Vec<&RunView> = views.iter().skip(page * n).take(n).collect();
    if shown.is_empty() {
        let text = Paragraph::new("no runs with metrics yet; waiting for `rewarm train` to log")
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" rewarm watch "),
            );
        frame.render_widget(text, body);
    }
    let columns = Layout::horizontal(vec![
        Constraint::Ratio(1, shown.len().max(1) as u32);
        shown.len()
    ])
    .split(body);
    for (view, area) in shown.iter().zip(columns.iter()) {
        draw_run(frame, view, *area);
    }
    let runs = if views.len() > n {
        format!(
            "runs {}–{} of {} (Tab / ← → for more)",
            page * n + 1,
            page * n + shown.len(),
            views.len()
        )
    } else {
        format!(
            "{} run{}",
            views.len(),
            if views.len() == 1 { "" } else { "s" }
        )
    };
    let keys = format!(" q quit · {runs} · {status}");
    frame.render_widget(
        Paragraph::new(keys).style(Style::default().fg(Color::Gray)),
        footer,
    );
}

/// One run's panel.
fn draw_run(frame: &mut Frame, view: &RunView, area: Rect) {
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" {} ", view.name));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let gap_lines = view.gap.as_ref().map_or(1, |g| g.sets.len() as u16 + 1)
        + u16::from(view.representation.is_some());
    let rows = Layout::default()
        .direction(Direction::Vertical)
        .constraints([
            Constraint::Length(2),
            Constraint::Percentage(45),
            Constraint::Percentage(25),
            Constraint::Min(5),
            Constraint::Length(gap_lines),
        ])
        .split(inner);
    frame.render_widget(
        Paragraph::new(status_lines(view)).wrap(Wrap { trim: true }),
        rows[0],
    );
    let eval: Vec<(String, &[(f64, f64)])> = view
        .eval
        .iter()
        .map(|(set, points)| (set.clone(), points.as_slice()))
        .collect();
    draw_chart(frame, rows[1], "validation loss", &eval, view);
    let train = [("train".to_owned(), view.train_loss.as_slice())];
    draw_chart(frame, rows[2], "train loss", &train, view);
    let lr = [("lr".to_owned(), view.lr_curve.as_slice())];
    draw_chart(frame, rows[3], "learning rate", &lr, view);
    frame.render_widget(Paragraph::new(gap_text(view)), rows[4]);
}

/// Where the run is and how fast it goes.
fn status_lines(view: &RunView) -> Vec<Line<'static>> {
    let steps = match view.planned_steps {
        Some(p) => format!("step {}/{p}", view.step),
        None => format!("step {}", view.step),
    };
    let first = format!(
        "stage {} ({}/{}) · {steps} · {} tokens",
        view.stage,
        view.stage_index + 1,
        view.stages.max(1),
        si(view.tokens as f64)
    );
    let mut second = view
        .tokens_per_second
        .map_or("–".into(), |s| format!("{} tok/s", si(s)));
    second += &match view.eta_seconds {
        Some(s) if s > 0.0 => format!(" · ETA ≈ {}", duration(s)),
        Some(_) => " · done".into(),
        None => " · ETA –".into(),
    };
    if let Some(lr) = view.lr {
        second += &format!(" · lr {lr:.2e}");
    }
    if let Some(r) = view.replay_fraction.filter(|&r| r > 0.0) {
        second += &format!(" · replay ρ {r}");
    }
    vec![Line::from(first), Line::from(second)]
}

/// "gap since <stage> @ <step>: en +0.43 at +16 (not recovered) · de 0", then the representation.
fn gap_text(view: &RunView) -> Vec<Line<'static>> {
    let mut lines = stability_gap_lines(view);
    if let Some(r) = &view.representation {
        let value = |i: usize| match r.at_boundary {
            Some(b) => format!("{:.3} → {:.3}", b[i], r.now[i]),
            None => format!("{:.3}", r.now[i]),
        };
        lines.push(Line::from(format!(
            "representation: RankMe {} · α-ReQ {} · dormant {}",
            value(0),
            value(1),
            value(2)
        )));
    }
    lines
}

fn stability_gap_lines(view: &RunView) -> Vec<Line<'static>> {
    let Some(g) = &view.gap else {
        return vec![Line::from("stability gap: no boundary passed yet")];
    };
    let mut lines = vec![Line::from(format!(
        "stability gap since {} @ step {} (depth, peak, recovery):",
        g.stage, g.boundary
    ))];
    for (set, gap) in &g.sets {
        let text = if gap.depth == 0.0 {
            format!("  {set}: no rise")
        } else {
            let recovery = gap
                .recovery
                .map_or("not recovered".into(), |r| format!("recovered at +{r}"));
            format!(
                "  {set}: +{:.3} at +{} steps, {recovery}",
                gap.depth, gap.peak_after
            )
        };
        lines.push(Line::from(text));
    }
    lines
}

/// A line chart of `series` over steps (0 to the planned steps), with the stage boundaries as vertical
/// gray lines.
fn draw_chart(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    series: &[(String, &[(f64, f64)])],
    view: &RunView,
) {
    let x_max = view
        .planned_steps
        .unwrap_or(view.step)
        .max(view.step)
        .max(1) as f64;
    let ys = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1));
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !lo.is_finite() {
        let empty = Paragraph::new(format!("{title}: nothing logged yet"));
        frame.render_widget(empty, area);
        return;
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-3).max(1e-12);
    let (lo, hi) = (lo - pad, hi + pad);
    let walls: Vec<[(f64, f64); 2]> = view
        .boundaries
        .iter()
        .map(|(x, _)| [(*x, lo), (*x, hi)])
        .collect();
    let mut datasets: Vec<Dataset> = walls
        .iter()
        .map(|w| {
            Dataset::default()
                .graph_type(GraphType::Line)
                .style(Style::default().fg(Color::DarkGray))
                .data(w)
        })
        .collect();
    for (i, (name, points)) in series.iter().enumerate() {
        datasets.push(
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::default().fg(SET_COLORS[i % SET_COLORS.len()]))
                .data(points),
        );
    }
    let fmt = |y: f64| {
        if hi < 1e-2 {
            format!("{y:.1e}")
        } else {
            format!("{y:.2}")
        }
    };
    let chart = Chart::new(datasets)
        .block(Block::default().title(title.to_owned()))
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(["0".to_owned(), format!("{}", x_max as u64)]),
        )
        .y_axis(Axis::default().bounds([lo, hi]).labels([fmt(lo), fmt(hi)]));
    frame.render_widget(chart, area);
}

/// 1234567 → "1.2M".
fn si(x: f64) -> String {
    match x {
        x if x >= 1e9 => format!("{:.1}G", x / 1e9),
        x if x >= 1e6 => format!("{:.1}M", x / 1e6),
        x if x >= 1e4 => format!("{:.1}k", x / 1e3),
        x => format!("{x:.0}"),
    }
}

/// 4000 s → "1h 06m".
fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m {:02}s", s / 60, s % 60),
        _ => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
    }
}
