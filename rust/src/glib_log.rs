//! Route the library's `log` records into GLib's logging, in the log domain
//! `stagehand`, so they land wherever a GLib daemon's messages go (its
//! journal, its `g_log_set_handler()`, `G_MESSAGES_DEBUG=stagehand`). The C
//! library and the cxx bridge install it; a Rust daemon built on GLib may too.
//!
//! `log::error!` becomes a critical (GLib's errors abort), `warn!` a warning,
//! `info!` an info message and `debug!`/`trace!` debug messages; GLib hides
//! info and debug unless `G_MESSAGES_DEBUG` names the domain. stagehand logs
//! runtime failures as warnings: a critical can abort a host daemon that runs
//! with `G_DEBUG=fatal-criticals`.

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
    // g_log(), not g_log_structured(): handlers set with g_log_set_handler()
    // and g_test_expect_message() see these messages too.
    GlibLoggerFormat::Plain,
    GlibLoggerDomain::CrateTarget,
));

/// Install the logger once, unless the process already has one (a Rust
/// daemon's own logger is kept). The C library and the cxx bridge call this
/// at every entry point; after the first call it is one atomic load.
pub fn route_log_to_glib() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if log::set_logger(&LOGGER).is_ok() {
            // GLib does the filtering (G_MESSAGES_DEBUG); pass everything.
            log::set_max_level(log::LevelFilter::Debug);
        }
    });
}
