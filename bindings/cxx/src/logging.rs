//! Route the library's `log` records into GLib's logging, in the log domain
//! `stagehand`, as the C library does: they land wherever the C++ daemon's
//! GLib messages go (its journal, its `g_log_set_handler()`,
//! `G_MESSAGES_DEBUG=stagehand`).
//!
//! Installed on the first fallible call, and only if no logger is set yet:
//! a Rust crate that embeds this bridge and sets its own logger first keeps
//! it (or turns the `glib-log` feature off).

use std::sync::Once;

use glib::{GlibLogger, GlibLoggerDomain, GlibLoggerFormat};

/// `GlibLogger` uses a record's target as the domain; the library's targets
/// are module paths (`stagehand::stage`), so pin the domain to `stagehand`.
struct Domain(GlibLogger);

impl log::Log for Domain {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        self.0.log(
            &log::Record::builder()
                .args(*record.args())
                .level(record.level())
                .target("stagehand")
                .module_path(record.module_path())
                .file(record.file())
                .line(record.line())
                .build(),
        );
    }

    fn flush(&self) {}
}

static LOGGER: Domain = Domain(GlibLogger::new(
    GlibLoggerFormat::Plain,
    GlibLoggerDomain::CrateTarget,
));

/// Install the logger once; afterwards one atomic load.
pub(crate) fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            // GLib does the filtering (G_MESSAGES_DEBUG); pass everything.
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}
