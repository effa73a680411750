//! The report's first section, what a reader came for: one table per method with its final loss on each
//! set beside the count baselines, AVG, forgetting, adaptation, tokens against the union retrain and the
//! verdict against it; then one figure per validation set with every method and the stage boundaries.
//! Every number here is also in a detailed section below (with bits per byte and per-set breakdowns).

use super::against_union::difference;
use super::cost::tokens_vs_union;
use super::final_loss::{
    count_notes, count_rows, flagged, incomplete, set_chart, UNFINISHED, UNFINISHED_NOTE,
};
use super::forgetting::RunMeans;
use super::{Ctx, Figures, Unit};
use crate::counts::{CountBaselines, FLAG};
use crate::method::Method;
use crate::render::{loss, ratio, signed, slug, stat, Table};
use crate::report::Section;
use std::collections::BTreeSet;

/// The summary table and the per-set figures.
pub(crate) fn summary_section(ctx: &Ctx, figs: &mut Figures) -> Section {
    let k = ctx.k;
    let sets: BTreeSet<String> = ctx.runs.iter().flat_map(|r| r.sets()).collect();
    let mut sec = Section::new("Summary", true);
    sec.text.push(format!(
        "Final loss = mean of the last {k} evaluation{} of each set, in nats per token; AVG = their mean \
         over sets. Forgetting (old sets, + = forgotten) and adaptation (new sets, + = learned) are means \
         over sets. Tokens × union = the method's tokens over its union retrain's (mean over seeds). Against the union: \
         Δ AVG (σ of the difference) and the verdict, \"≈\" within 2σ. A method with several seeds shows \
         mean ± sd (n). The sections below break each column down, in bits per byte too.",
        if k == 1 { "" } else { "s" }
    ));
    let counts = CountBaselines::of(ctx.runs);
    sec.tables.push(summary_table(ctx, &sets, &counts));
    sec.footnotes = count_notes(ctx, &sets, &counts);
    if ctx.methods.iter().any(|m| incomplete(ctx, m)) {
        sec.footnotes.push(UNFINISHED_NOTE.to_owned());
    }
    for set in &sets {
        let name = figs.add(format!("loss-set-{}", slug(set)), set_chart(ctx, set));
        sec.figures.push(name);
    }
    sec
}

/// A row per method, then the count baselines' rows (losses only).
fn summary_table(ctx: &Ctx, sets: &BTreeSet<String>, counts: &CountBaselines) -> Table {
    let mut header: Vec<&str> = vec![ctx.who()];
    header.extend(sets.iter().map(String::as_str));
    let tail = [
        "AVG",
        "forgetting",
        "adaptation",
        "tokens × union",
        "against the union",
    ];
    header.extend(tail);
    let mut t = Table::new(&header).left(&[header.len() - 1]);
    let means: Vec<RunMeans> = (0..ctx.runs.len())
        .map(|i| RunMeans::of(ctx, i, Unit::Nats))
        .collect();
    for m in &ctx.methods {
        t.rows.push(method_row(ctx, m, sets, counts, &means));
    }
    for mut row in count_rows(counts, sets, Unit::Nats) {
        row.extend(std::iter::repeat_n("–".to_owned(), tail.len() - 1));
        t.rows.push(row);
    }
    t
}

/// Method `m`'s final losses (flagged when not below the bigram), AVG, forgetting, adaptation, tokens
/// against its union baseline and the verdict.
fn method_row(
    ctx: &Ctx,
    m: &Method,
    sets: &BTreeSet<String>,
    counts: &CountBaselines,
    means: &[RunMeans],
) -> Vec<String> {
    let mark = if incomplete(ctx, m) { UNFINISHED } else { "" };
    let mut row = vec![m.name.clone() + mark];
    for set in sets {
        let flag = if flagged(ctx, counts, m, set) {
            FLAG
        } else {
            ""
        };
        row.push(stat(ctx.stat(m, |i| ctx.final_loss(i, set, Unit::Nats)), loss) + flag);
    }
    let cell = |f: fn(&RunMeans) -> Option<f64>, fmt| stat(ctx.stat(m, |i| f(&means[i])), fmt);
    row.push(cell(|r| r.retained, loss));
    row.push(cell(|r| r.forgetting, signed));
    row.push(cell(|r| r.adaptation, signed));
    // The mean only: seeds of a method train the same tokens (the cost section has the spread).
    let tokens = ctx.stat(m, |i| tokens_vs_union(ctx, i));
    row.push(ratio(tokens.map(|s| s.mean)));
    row.push(against_union(ctx, m));
    row
}

/// "Δ (σ …) verdict" of method `m`'s AVG against its union baseline's; "baseline" for the union itself.
fn against_union(ctx: &Ctx, m: &Method) -> String {
    let Some(b) = ctx.baseline_method(m).map(|b| &ctx.methods[b]) else {
        return "–".into();
    };
    if b == m {
        return "baseline".into();
    }
    let Some(d) = difference(ctx, m, b, Unit::Nats) else {
        return "–".into();
    };
    let delta = signed(Some(d.delta));
    match d.sigma {
        Some(s) => format!("{delta} (σ {}) {}", loss(Some(s)), d.verdict.text()),
        None => format!("{delta} ({})", d.verdict.text()),
    }
}
