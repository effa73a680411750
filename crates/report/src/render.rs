//! Rendering: tables as aligned Markdown (also the terminal form) and HTML, fixed number formats, and the
//! report as report.md, report.html and terminal text.

use crate::report::Report;
use crate::stat::Stat;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A table as text cells; numbers are right-aligned.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    /// Right-align column i.
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
    /// A line said above the table (e.g. its unit when it is not the report's).
    pub caption: Option<String>,
}

impl Table {
    pub(crate) fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            right: (0..header.len()).map(|i| i > 0).collect(),
            rows: Vec::new(),
            caption: None,
        }
    }

    pub(crate) fn captioned(mut self, caption: Option<String>) -> Self {
        self.caption = caption;
        self
    }

    pub(crate) fn left(mut self, columns: &[usize]) -> Self {
        for &c in columns {
            self.right[c] = false;
        }
        self
    }

    /// A Markdown table padded to aligned columns (readable as plain text too).
    pub fn to_markdown(&self) -> String {
        let n = self.header.len();
        let width = |c: usize| {
            self.rows
                .iter()
                .map(|r| r[c].chars().count())
                .chain([self.header[c].chars().count(), 3])
                .max()
                .unwrap_or(3)
        };
        let widths: Vec<usize> = (0..n).map(width).collect();
        let pad = |s: &str, c: usize| {
            let fill = widths[c] - s.chars().count();
            if self.right[c] {
                format!("{}{s}", " ".repeat(fill))
            } else {
                format!("{s}{}", " ".repeat(fill))
            }
        };
        let line = |cells: &[String]| {
            let cells: Vec<String> = cells.iter().enumerate().map(|(c, s)| pad(s, c)).collect();
            format!("| {} |\n", cells.join(" | "))
        };
        let mut out = match &self.caption {
            Some(c) => format!("{c}\n\n"),
            None => String::new(),
        };
        out += &line(&self.header);
        let rule: Vec<String> = (0..n)
            .map(|c| {
                if self.right[c] {
                    format!("{}:", "-".repeat(widths[c] - 1))
                } else {
                    "-".repeat(widths[c])
                }
            })
            .collect();
        out += &format!("| {} |\n", rule.join(" | "));
        for r in &self.rows {
            out += &line(r);
        }
        out
    }

    pub fn to_html(&self) -> String {
        let mut out = String::from("<table>\n");
        if let Some(c) = &self.caption {
            let _ = writeln!(out, "<caption>{}</caption>", escape(c));
        }
        out += "<thead><tr>";
        for (c, h) in self.header.iter().enumerate() {
            let _ = write!(out, "<th{}>{}</th>", align(self.right[c]), escape(h));
        }
        out += "</tr></thead>\n<tbody>\n";
        for r in &self.rows {
            out += "<tr>";
            for (c, cell) in r.iter().enumerate() {
                let _ = write!(out, "<td{}>{}</td>", align(self.right[c]), escape(cell));
            }
            out += "</tr>\n";
        }
        out + "</tbody>\n</table>\n"
    }
}

fn align(right: bool) -> &'static str {
    if right {
        " class=\"num\""
    } else {
        ""
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

// Fixed number formats: the report must diff cleanly. Adding 0.0 turns −0.0 into 0.0.
pub(crate) fn loss(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:.4}", x + 0.0))
}
pub(crate) fn signed(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{:+.4}", x + 0.0))
}
pub(crate) fn ratio(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.3}×"))
}
pub(crate) fn sci(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| format!("{x:.3e}"))
}
/// A method's cell: `fmt`'s text of the one value, or `mean ± sd (n)` of several; `fmt(None)` without
/// any.
pub(crate) fn stat(s: Option<Stat>, fmt: fn(Option<f64>) -> String) -> String {
    s.map_or(fmt(None), |s| s.format(|x| fmt(Some(x))))
}
/// Steps: whole numbers as such, a mean over runs with one decimal.
pub(crate) fn steps(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| {
        if x.fract() == 0.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.1}")
        }
    })
}
/// Tokens (or another count) with thousands separators; a mean over runs rounded to a whole number.
pub(crate) fn tokens(x: Option<f64>) -> String {
    x.map_or("–".into(), |x| count(x.round() as u64))
}
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A file-name-safe stem.
pub(crate) fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_owned()
}

impl Report {
    /// report.md: figures are linked as `figures/<stem>.svg`.
    pub fn to_markdown(&self) -> String {
        let mut out = String::from("# rewarm report\n\n");
        if !self.stamp.is_empty() {
            out += &format!("{}\n\n", self.stamp);
        }
        for sec in &self.sections {
            out += &format!("## {}\n\n", sec.title);
            for p in &sec.text {
                out += &format!("{p}\n\n");
            }
            for t in &sec.tables {
                out += &t.to_markdown();
                out += "\n";
            }
            for p in &sec.footnotes {
                out += &format!("{p}\n\n");
            }
            for f in &sec.figures {
                out += &format!("![{f}](figures/{f}.svg)\n");
            }
            if !sec.figures.is_empty() {
                out += "\n";
            }
        }
        if !self.notes.is_empty() {
            out += "## Notes\n\n";
            for n in &self.notes {
                out += &format!("- {n}\n");
            }
            out += "\n";
        }
        out
    }

    /// The main tables for a terminal.
    pub fn to_terminal(&self) -> String {
        let mut out = String::new();
        for sec in self.sections.iter().filter(|s| s.terminal) {
            out += &format!("== {} ==\n", sec.title);
            if sec.tables.is_empty() {
                for p in &sec.text {
                    out += &format!("{p}\n");
                }
            }
            for t in &sec.tables {
                out += &t.to_markdown();
                out += "\n";
            }
            for p in &sec.footnotes {
                out += &format!("{p}\n");
            }
        }
        for n in &self.notes {
            out += &format!("note: {n}\n");
        }
        out
    }

    /// report.html: the same sections, figures inline as SVG (`svgs`: stem → document).
    pub fn to_html(&self, svgs: &BTreeMap<String, String>) -> String {
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>rewarm report</title>\n<style>\n\
             body { font-family: sans-serif; margin: 2em auto; max-width: 1300px; color: #222; }\n\
             body { padding: 0 1em; }\n\
             div.table { overflow-x: auto; }\n\
             table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }\n\
             th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; }\n\
             th { background: #f3f3f3; }\n\
             td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }\n\
             td { white-space: nowrap; }\n\
             figure { margin: 1em 0; }\n\
             svg { max-width: 100%; height: auto; }\n\
             </style>\n</head>\n<body>\n<h1>rewarm report</h1>\n",
        );
        if !self.stamp.is_empty() {
            out += &format!("<p>{}</p>\n", escape(&self.stamp));
        }
        for sec in &self.sections {
            out += &format!("<h2>{}</h2>\n", escape(&sec.title));
            for p in &sec.text {
                out += &format!("<p>{}</p>\n", escape(p));
            }
            for t in &sec.tables {
                // Cells do not wrap (a "mean ± sd (n)" split over lines is hard to read); a table wider
                // than the window scrolls on its own.
                out += &format!("<div class=\"table\">\n{}</div>\n", t.to_html());
            }
            for p in &sec.footnotes {
                out += &format!("<p>{}</p>\n", escape(p));
            }
            for f in &sec.figures {
                if let Some(svg) = svgs.get(f) {
                    out += &format!(
                        "<figure id=\"{f}\">\n{svg}\n<figcaption><a href=\"figures/{f}.png\">{f}.png</a></figcaption>\n</figure>\n"
                    );
                }
            }
        }
        if !self.notes.is_empty() {
            out += "<h2>Notes</h2>\n<ul>\n";
            for n in &self.notes {
                out += &format!("<li>{}</li>\n", escape(n));
            }
            out += "</ul>\n";
        }
        out + "</body>\n</html>\n"
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time (for the stamp line; no clock is read here).
pub fn utc(unix_seconds: u64) -> String {
    let days = (unix_seconds / 86_400) as i64;
    let secs = unix_seconds % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }

    #[test]
    fn counts_and_slugs() {
        assert_eq!(count(0), "0");
        assert_eq!(count(245_760), "245,760");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(
            slug("sweep/stages.1.replay.fraction=0.25"),
            "sweep-stages.1.replay.fraction-0.25"
        );
    }

    #[test]
    fn markdown_tables_are_aligned() {
        let mut t = Table::new(&["run", "loss"]);
        t.rows.push(vec!["a".into(), "2.0000".into()]);
        t.rows.push(vec!["long-name".into(), "∞".into()]);
        assert_eq!(
            t.to_markdown(),
            "| run       |   loss |\n| --------- | -----: |\n| a         | 2.0000 |\n| long-name |      ∞ |\n"
        );
    }
}
