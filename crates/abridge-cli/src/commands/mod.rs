pub mod bench;
pub mod compress;
pub mod distill;
pub mod eval;
pub mod models;
pub mod recover;
pub mod score;
pub mod serve;
pub mod soft;
pub mod soft_train;

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress_bar(total: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} tokens ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}
