//! The configuration file, `/etc/stagehand/stagehand.conf`.
//!
//! ```ini
//! # /etc/stagehand/stagehand.conf — every key is optional; these are the defaults.
//! [bootloader]
//! # auto | grubenv | bls | none   (docs/boot-assessment.md explains the detection)
//! backend = auto
//! # boots a new deployment gets before the bootloader falls back (1..16)
//! tries = 3
//! # the GRUB environment block (default: /boot/grub2/grubenv, else /boot/grub/grubenv)
//! # grubenv = /boot/grub2/grubenv
//!
//! [health]
//! # keep the last known-good deployment while a new one is on trial
//! keep-two-known-good = true
//! # time after boot by which boot-complete.target must be reached (10s..24h)
//! deadline = 10min
//! # reboot into the rollback when a boot is marked bad
//! auto-reboot = false
//! ```
//!
//! The syntax is the part of GLib's key-file format that this needs:
//! `[section]` lines, `key = value` lines, `#` comment lines, blank lines;
//! whitespace around keys and values is ignored, and there are no inline
//! comments (a `#` after a value is part of it, and then refused as a bad
//! value). It is parsed here rather than with `glib::KeyFile` because every
//! error must name its line, and `GKeyFile` reports none and silently lets a
//! repeated key win.
//!
//! Anything not understood is an error ([`Error::Config`], with the file and
//! the line): an unknown section or key, a repeated key, a bad value, a key
//! outside a section. A typo must not silently fall back to a default that
//! changes what happens at boot. A missing file means all defaults; a file
//! that cannot be read is an I/O error.
//!
//! Booleans are `true`/`false` (also `yes`/`no`, `1`/`0`); durations are a
//! number with an optional unit: `s` (the default), `min`, `h`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use crate::bootloader::MAX_TRIES;
use crate::error::{Error, Result};
use crate::fsutil;

/// Where the configuration lives on a booted system.
pub const DEFAULT_PATH: &str = "/etc/stagehand/stagehand.conf";

/// A configuration file larger than this is refused (it would be a mistake).
const MAX_SIZE: u64 = 64 * 1024;

/// The shortest and longest accepted health deadline.
pub const DEADLINE_RANGE: (Duration, Duration) =
    (Duration::from_secs(10), Duration::from_secs(24 * 3600));

/// Which boot counter to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BackendChoice {
    /// Detect it (see [`crate::bootloader::select`]).
    #[default]
    Auto,
    /// The GRUB environment block.
    Grubenv,
    /// systemd boot counting in BLS entry names.
    Bls,
    /// No bootloader counter.
    None,
}

/// The settings, with their defaults where the file says nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    /// `[bootloader] backend`: which boot counter (default: auto).
    pub backend: BackendChoice,
    /// `[bootloader] tries`: boots a new deployment gets (default 3).
    pub tries: u32,
    /// `[bootloader] grubenv`: the GRUB environment block, as the booted
    /// system sees it (default: detected).
    pub grubenv: Option<PathBuf>,
    /// `[health] keep-two-known-good`: keep the last known-good deployment
    /// while a new one is on trial (default true).
    pub keep_two_known_good: bool,
    /// `[health] deadline`: time after boot by which `boot-complete.target`
    /// must be reached, or the boot counts as failed (default 10 minutes).
    #[serde(serialize_with = "secs")]
    pub health_deadline: Duration,
    /// `[health] auto-reboot`: reboot into the rollback when a boot is
    /// marked bad (default false: the system stays up for a person to look).
    pub auto_reboot: bool,
    /// The file these settings came from (`None`: no file, all defaults).
    pub source: Option<PathBuf>,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_secs())
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendChoice::Auto,
            tries: 3,
            grubenv: None,
            keep_two_known_good: true,
            health_deadline: Duration::from_secs(600),
            auto_reboot: false,
            source: None,
        }
    }
}

/// Sections and their keys, for the parser and the error messages.
const KEYS: &[(&str, &[&str])] = &[
    ("bootloader", &["backend", "tries", "grubenv"]),
    (
        "health",
        &["keep-two-known-good", "deadline", "auto-reboot"],
    ),
];

impl Config {
    /// Load [`DEFAULT_PATH`].
    pub fn load_default() -> Result<Config> {
        Config::load(Path::new(DEFAULT_PATH))
    }

    /// Load the file at `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config> {
        match fsutil::read_bounded(path, MAX_SIZE) {
            Ok(None) => Ok(Config::default()),
            Ok(Some(bytes)) => Config::parse(path, &bytes),
            Err(Error::Corrupt { .. }) => Err(Error::Config {
                path: path.to_owned(),
                line: 0,
                msg: format!("larger than {MAX_SIZE} bytes; not a stagehand configuration"),
            }),
            Err(e) => Err(e),
        }
    }

    /// Parse the text of a configuration file (`path` is for messages and
    /// [`Config::source`]).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Config> {
        let err = |line: usize, msg: String| Error::Config {
            path: path.to_owned(),
            line,
            msg,
        };
        let mut cfg = Config {
            source: Some(path.to_owned()),
            ..Config::default()
        };
        let mut section: Option<&'static str> = None;
        let mut seen_sections: Vec<(&str, usize)> = Vec::new();
        let mut seen_keys: Vec<(&str, &str, usize)> = Vec::new();
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let lineno = i + 1;
            let line = std::str::from_utf8(raw)
                .map_err(|_| err(lineno, "not valid UTF-8".into()))?
                .trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[') {
                let name = name
                    .strip_suffix(']')
                    .ok_or_else(|| err(lineno, format!("{line:?}: a section line is [name]")))?
                    .trim();
                let (known, _) = KEYS.iter().find(|(s, _)| *s == name).ok_or_else(|| {
                    err(
                        lineno,
                        format!(
                            "unknown section [{name}] (known: {})",
                            KEYS.iter()
                                .map(|(s, _)| format!("[{s}]"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })?;
                if let Some((_, first)) = seen_sections.iter().find(|(s, _)| s == known) {
                    return Err(err(
                        lineno,
                        format!("section [{name}] again (first on line {first})"),
                    ));
                }
                seen_sections.push((known, lineno));
                section = Some(known);
                continue;
            }
            let (key, value) = line.split_once('=').ok_or_else(|| {
                err(
                    lineno,
                    format!("{line:?} is neither [section], key = value nor a # comment"),
                )
            })?;
            let (key, value) = (key.trim(), value.trim());
            let sec = section.ok_or_else(|| {
                err(
                    lineno,
                    format!(
                        "key {key:?} before any [section] (it belongs in one of {})",
                        {
                            KEYS.iter()
                                .map(|(s, _)| format!("[{s}]"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                )
            })?;
            let keys = KEYS
                .iter()
                .find(|(s, _)| *s == sec)
                .map(|(_, k)| *k)
                .unwrap_or(&[]);
            let key: &'static str = keys.iter().find(|k| **k == key).copied().ok_or_else(|| {
                err(
                    lineno,
                    format!(
                        "unknown key {key:?} in [{sec}] (known: {})",
                        keys.join(", ")
                    ),
                )
            })?;
            if let Some((_, _, first)) = seen_keys.iter().find(|(s, k, _)| *s == sec && *k == key) {
                return Err(err(
                    lineno,
                    format!("{key} is set again (first on line {first})"),
                ));
            }
            seen_keys.push((sec, key, lineno));
            if value.is_empty() {
                return Err(err(
                    lineno,
                    format!("{key} has no value (leave the line out for the default)"),
                ));
            }
            let bad = |what: &str| err(lineno, format!("{key} = {value:?}: {what}"));
            match key {
                "backend" => {
                    cfg.backend = match value {
                        "auto" => BackendChoice::Auto,
                        "grubenv" => BackendChoice::Grubenv,
                        "bls" => BackendChoice::Bls,
                        "none" => BackendChoice::None,
                        _ => return Err(bad("expected auto, grubenv, bls or none")),
                    }
                }
                "tries" => {
                    cfg.tries = value
                        .parse::<u32>()
                        .ok()
                        .filter(|t| (1..=MAX_TRIES).contains(t))
                        .ok_or_else(|| bad(&format!("expected a number from 1 to {MAX_TRIES}")))?;
                }
                "grubenv" => {
                    let p = PathBuf::from(value);
                    if !p.is_absolute() {
                        return Err(bad("expected an absolute path"));
                    }
                    cfg.grubenv = Some(p);
                }
                "keep-two-known-good" => {
                    cfg.keep_two_known_good = parse_bool(value).ok_or_else(|| bad(BOOL))?
                }
                "auto-reboot" => cfg.auto_reboot = parse_bool(value).ok_or_else(|| bad(BOOL))?,
                "deadline" => {
                    let (lo, hi) = DEADLINE_RANGE;
                    cfg.health_deadline = parse_duration(value)
                        .filter(|d| (lo..=hi).contains(d))
                        .ok_or_else(|| {
                        bad("expected a duration from 10s to 24h (a number with s, min or h)")
                    })?;
                }
                _ => unreachable!("every known key is handled"),
            }
        }
        Ok(cfg)
    }
}

const BOOL: &str = "expected true or false";

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// `600`, `600s`, `10min`, `1h` (whitespace between number and unit allowed).
fn parse_duration(v: &str) -> Option<Duration> {
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit.trim_start() {
        "" | "s" | "sec" => 1,
        "min" | "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("/etc/stagehand/stagehand.conf"), text.as_bytes())
    }

    #[track_caller]
    fn fails(text: &str, line: usize, needle: &str) {
        match parse(text) {
            Err(Error::Config { path, line: l, msg }) => {
                assert_eq!(path, Path::new("/etc/stagehand/stagehand.conf"));
                assert_eq!(l, line, "{msg}");
                assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
            }
            other => panic!("{text:?}: expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.backend, BackendChoice::Auto);
        assert_eq!(c.tries, 3);
        assert_eq!(c.grubenv, None);
        assert!(c.keep_two_known_good);
        assert_eq!(c.health_deadline, Duration::from_secs(600));
        assert!(!c.auto_reboot);
        // An empty file and a file of comments are the defaults too.
        let empty = parse("").unwrap();
        assert_eq!(
            Config {
                source: None,
                ..empty
            },
            c
        );
        let commented = parse("# nothing\n\n[bootloader]\n  # still nothing\n[health]\n").unwrap();
        assert_eq!(commented.tries, 3);
    }

    #[test]
    fn every_key() {
        let c = parse(
            "[bootloader]\nbackend = grubenv\ntries=5\n  grubenv =  /boot/efi/EFI/x/grubenv  \n\
             [health]\nkeep-two-known-good = no\ndeadline = 90s\nauto-reboot = true\n",
        )
        .unwrap();
        assert_eq!(c.backend, BackendChoice::Grubenv);
        assert_eq!(c.tries, 5);
        assert_eq!(
            c.grubenv.as_deref(),
            Some(Path::new("/boot/efi/EFI/x/grubenv"))
        );
        assert!(!c.keep_two_known_good);
        assert_eq!(c.health_deadline, Duration::from_secs(90));
        assert!(c.auto_reboot);
        for (v, b) in [
            ("auto", BackendChoice::Auto),
            ("bls", BackendChoice::Bls),
            ("none", BackendChoice::None),
        ] {
            assert_eq!(
                parse(&format!("[bootloader]\nbackend={v}\n"))
                    .unwrap()
                    .backend,
                b
            );
        }
        for (v, s) in [
            ("600", 600),
            ("10min", 600),
            ("2 h", 7200),
            ("10s", 10),
            ("24h", 86400),
        ] {
            assert_eq!(
                parse(&format!("[health]\ndeadline={v}\n"))
                    .unwrap()
                    .health_deadline,
                Duration::from_secs(s),
                "{v}"
            );
        }
        for (v, b) in [
            ("true", true),
            ("yes", true),
            ("1", true),
            ("false", false),
            ("0", false),
        ] {
            assert_eq!(
                parse(&format!("[health]\nauto-reboot={v}\n"))
                    .unwrap()
                    .auto_reboot,
                b
            );
        }
        assert_eq!(parse("[bootloader]\ntries=1\n").unwrap().tries, 1);
        assert_eq!(parse("[bootloader]\ntries=16\n").unwrap().tries, 16);
    }

    #[test]
    fn every_bad_value() {
        fails(
            "[bootloader]\nbackend = grub\n",
            2,
            "expected auto, grubenv, bls or none",
        );
        fails("[bootloader]\nbackend = GRUBENV\n", 2, "expected auto");
        for t in ["0", "17", "-1", "three", "3.0", "99999999999"] {
            fails(&format!("[bootloader]\ntries = {t}\n"), 2, "from 1 to 16");
        }
        fails("[bootloader]\ngrubenv = boot/grubenv\n", 2, "absolute path");
        fails(
            "[health]\nkeep-two-known-good = maybe\n",
            2,
            "true or false",
        );
        fails("[health]\nauto-reboot = on\n", 2, "true or false");
        for d in ["5s", "25h", "0", "ten", "10 days", "-5", "10min # comment"] {
            fails(&format!("[health]\ndeadline = {d}\n"), 2, "from 10s to 24h");
        }
        fails("[bootloader]\ntries =\n", 2, "has no value");
    }

    #[test]
    fn structure_errors_name_the_line() {
        fails("\n\n[boot]\n", 3, "unknown section [boot]");
        fails(
            "[bootloader]\ntry = 3\n",
            2,
            "unknown key \"try\" in [bootloader]",
        );
        fails(
            "[health]\ntries = 3\n",
            2,
            "unknown key \"tries\" in [health]",
        );
        fails("tries = 3\n", 1, "before any [section]");
        fails(
            "[bootloader]\ntries = 3\n\ntries = 4\n",
            4,
            "first on line 2",
        );
        fails(
            "[bootloader]\n[health]\n[bootloader]\n",
            3,
            "first on line 1",
        );
        fails("[bootloader]\njust words\n", 2, "neither [section]");
        fails("[bootloader\n", 1, "[name]");
        fails("[bootloader]\n\u{0}", 2, "neither");
        match Config::parse(Path::new("/x.conf"), b"[health]\nauto-reboot = \xff\n") {
            Err(Error::Config { line: 2, msg, .. }) => assert!(msg.contains("UTF-8")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn files() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("stagehand.conf");
        assert_eq!(Config::load(&missing).unwrap(), Config::default());
        std::fs::write(&missing, "[bootloader]\ntries = 4\n").unwrap();
        let c = Config::load(&missing).unwrap();
        assert_eq!(c.tries, 4);
        assert_eq!(c.source.as_deref(), Some(missing.as_path()));
        std::fs::write(&missing, "[bootloader]\ntries = 40\n").unwrap();
        let e = Config::load(&missing).unwrap_err();
        assert_eq!(e.code(), crate::ErrorCode::Config);
        assert!(
            e.to_string()
                .starts_with(&format!("{}:2: tries = \"40\"", missing.display())),
            "{e}"
        );
        std::fs::write(&missing, vec![b'#'; MAX_SIZE as usize + 1]).unwrap();
        assert_eq!(
            Config::load(&missing).unwrap_err().code(),
            crate::ErrorCode::Config
        );
        // A directory is not a configuration file.
        assert_eq!(
            Config::load(d.path()).unwrap_err().code(),
            crate::ErrorCode::Io
        );
    }
}
