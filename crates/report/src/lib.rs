//! rewarm's reports and figures. One plotting module serves `rewarm plan --plot` and the reports.

pub mod plot;
