//! A minimal stderr logger: warnings always, `-v` for info, `-vv` for debug.
//! Under systemd, stderr goes to the journal.

struct Stderr(log::LevelFilter);

impl log::Log for Stderr {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.0
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let level = match r.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                _ => "",
            };
            eprintln!("stagehand: {level}{}", r.args());
        }
    }
    fn flush(&self) {}
}

/// Install the logger for the given verbosity.
pub fn init(verbose: u8) {
    let level = match verbose {
        0 => log::LevelFilter::Warn,
        1 => log::LevelFilter::Info,
        _ => log::LevelFilter::Debug,
    };
    let _ = log::set_boxed_logger(Box::new(Stderr(level)));
    log::set_max_level(level);
}
