//! `rewarm watch RUN_OR_SWEEP…`: a live terminal dashboard that follows run folders as `rewarm train`
//! writes them (docs/metrics.md#watching-a-run). It reads what `rewarm report` reads — plan.json and
//! metrics.jsonl — every refresh, so it can be started before, during or after training, on the
//! training machine or over SSH, and never writes anything.
//!
//! [`view`] turns a run folder into what is shown, [`draw`] draws it with `ratatui`; [`watch`] is the
//! interactive loop (crossterm: raw mode on the alternate screen, restored on exit and on panic) and
//! [`snapshot`] draws one frame as text (for logs and tests).

pub mod draw;
pub mod view;

use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::Terminal;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;
use view::RunView;

/// The runs under `inputs` (run folders, sweep folders, or a study folder: its pretraining runs and its
/// `runs/` sweep) as views, and what could not be read.
pub fn load(inputs: &[PathBuf]) -> (Vec<RunView>, Option<String>) {
    let mut folders = Vec::new();
    for input in inputs {
        folders.push(input.clone());
        let nested = input.join("runs");
        if nested.join("sweep.json").is_file() {
            folders.push(nested);
        }
    }
    match rewarm_report::run::discover(&folders) {
        Ok((runs, _notes)) => (runs.iter().map(RunView::of).collect(), None),
        Err(e) => (Vec::new(), Some(format!("{}: {}", e.path, e.why))),
    }
}

/// One frame of the dashboard, `width` × `height` characters, as lines of text.
pub fn snapshot(inputs: &[PathBuf], width: u16, height: u16) -> String {
    let (views, problem) = load(inputs);
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("a test backend");
    let status = problem.unwrap_or_else(|| "snapshot".into());
    terminal
        .draw(|f| draw::draw(f, &views, 0, &status))
        .expect("drawing to memory");
    buffer_text(terminal.backend().buffer())
}

/// The characters of a drawn buffer, one line per row, trailing spaces removed.
pub fn buffer_text(buffer: &ratatui::buffer::Buffer) -> String {
    let width = buffer.area.width as usize;
    let cells: Vec<&str> = buffer.content.iter().map(|c| c.symbol()).collect();
    let mut out = String::new();
    for row in cells.chunks(width) {
        out += row.concat().trim_end();
        out.push('\n');
    }
    out
}

/// Errors of the interactive dashboard.
#[derive(Debug)]
pub enum WatchError {
    /// Standard output is not a terminal.
    NotATerminal,
    Io(std::io::Error),
}

impl std::fmt::Display for WatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WatchError::NotATerminal => write!(
                f,
                "`rewarm watch` draws on a terminal, and standard output is not one\nHINT: run it in a \
                 terminal (over SSH too), or print one frame with `rewarm watch --once`"
            ),
            WatchError::Io(e) => write!(f, "the terminal: {e}"),
        }
    }
}

impl std::error::Error for WatchError {}

/// Follows `inputs` until q, Esc or Ctrl-C, reading them again every `refresh`; Tab and the arrow keys
/// page through runs when they do not fit side by side.
pub fn watch(inputs: &[PathBuf], refresh: Duration) -> Result<(), WatchError> {
    if !std::io::stdout().is_terminal() {
        return Err(WatchError::NotATerminal);
    }
    let mut terminal = ratatui::init();
    let result = run_loop(&mut terminal, inputs, refresh);
    ratatui::restore();
    result.map_err(WatchError::Io)
}

fn run_loop(
    terminal: &mut ratatui::DefaultTerminal,
    inputs: &[PathBuf],
    refresh: Duration,
) -> std::io::Result<()> {
    let mut page = 0usize;
    loop {
        let (views, problem) = load(inputs);
        let status = problem.unwrap_or_else(|| format!("every {}s", refresh.as_secs_f64()));
        terminal.draw(|f| draw::draw(f, &views, page, &status))?;
        // Wait for a key until the next refresh; a resize just redraws.
        if !event::poll(refresh)? {
            continue;
        }
        let Event::Key(key) = event::read()? else {
            continue;
        };
        if key.kind != KeyEventKind::Press {
            continue;
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        let pages = views
            .len()
            .div_ceil(draw::per_page(terminal.size()?.width))
            .max(1);
        match key.code {
            _ if ctrl_c => return Ok(()),
            KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
            KeyCode::Tab | KeyCode::Right => page = (page + 1) % pages,
            KeyCode::Left | KeyCode::BackTab => page = (page + pages - 1) % pages,
            _ => {}
        }
    }
}
