//! Progress display on standard error (hidden when it is not a terminal).

use indicatif::{ProgressBar, ProgressStyle};

/// A byte-counting bar for `prepare`.
pub struct BytesBar(pub ProgressBar);

impl BytesBar {
    pub fn new(label: &str) -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        BytesBar(bar)
    }
}

impl rewarm_data::prepare::Progress for BytesBar {
    fn start(&self, total_bytes: u64) {
        self.0.set_length(total_bytes);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
