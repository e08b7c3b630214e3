//! systemd unit files, read just enough to run what they say inside a
//! booted [`crate::Machine`] the way systemd would.
//!
//! The test bed has no systemd, but the commands a unit runs, their order and
//! how a failure stops the rest are what a test must get right, so tests
//! read them from the real unit files (with their drop-ins) instead of
//! repeating them by hand. Syntax is checked by `systemd-analyze verify`;
//! this module only interprets what tests need: `[Section]`s, `Key=value`
//! lines, an empty assignment resetting a list, `Environment=`, `Exec*=`
//! with the `-` prefix, `$VAR`/`${VAR}` expansion, and `ConditionPathExists=`
//! (with the `|` and `!` prefixes).
//! Anything fancier (quoting, specifiers, line continuations) panics rather
//! than being misread.

use std::path::Path;
use std::process::Output;

use crate::Machine;

#[derive(Debug, Clone)]
struct Entry {
    section: String,
    key: String,
    value: String,
}

/// A unit file and its drop-ins, in the order systemd applies them.
#[derive(Debug, Clone)]
pub struct UnitFile {
    name: String,
    entries: Vec<Entry>,
}

/// One command line of an `Exec*=` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecCommand {
    /// The program and its arguments, environment variables expanded.
    pub argv: Vec<String>,
    /// Prefixed with `-`: a failure is ignored and the next command runs.
    pub ignore_failure: bool,
}

/// What running a unit's commands did.
#[derive(Debug)]
pub struct ExecRun {
    /// Each command that ran, with its output, in order.
    pub ran: Vec<(ExecCommand, Output)>,
    /// Whether a command failed without `-`, which stops the rest (systemd
    /// then considers the unit failed).
    pub failed: bool,
}

impl ExecRun {
    /// Everything the commands printed, for assertion messages.
    pub fn transcript(&self) -> String {
        let mut s = String::new();
        for (c, o) in &self.ran {
            s.push_str(&format!(
                "$ {}\n[{}]\n{}{}",
                c.argv.join(" "),
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        s
    }
}

impl UnitFile {
    /// Read `path`, then each drop-in in order, replacing every `@key@` of
    /// `substitutions` (meson's `configure_file` syntax, used by unit templates).
    pub fn load(
        path: impl AsRef<Path>,
        dropins: &[&Path],
        substitutions: &[(&str, &str)],
    ) -> UnitFile {
        let path = path.as_ref();
        let read = |p: &Path| {
            let mut text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("reading unit file {}: {e}", p.display()));
            for (k, v) in substitutions {
                text = text.replace(&format!("@{k}@"), v);
            }
            text
        };
        let name = path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".in")
            .to_string();
        let mut unit = UnitFile::parse(&name, &read(path));
        for d in dropins {
            let more = UnitFile::parse(&name, &read(d));
            unit.entries.extend(more.entries);
        }
        unit
    }

    /// Parse unit file text.
    pub fn parse(name: &str, text: &str) -> UnitFile {
        let mut section = String::new();
        let mut entries = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            assert!(
                !line.ends_with('\\'),
                "{name}:{}: line continuations are not supported here",
                n + 1
            );
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_string();
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{name}:{}: not key=value: {line}", n + 1));
            entries.push(Entry {
                section: section.clone(),
                key: key.trim().to_string(),
                value: value.trim().to_string(),
            });
        }
        UnitFile {
            name: name.into(),
            entries,
        }
    }

    /// The unit name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every value of `section`/`key` in order; an empty assignment resets
    /// the list, as systemd does for list settings.
    pub fn values(&self, section: &str, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.entries {
            if e.section == section && e.key == key {
                if e.value.is_empty() {
                    out.clear();
                } else {
                    out.push(e.value.clone());
                }
            }
        }
        out
    }

    /// The last value of a single-valued setting.
    pub fn value(&self, section: &str, key: &str) -> Option<String> {
        self.values(section, key).pop()
    }

    /// The whitespace-separated words of a list setting (`After=`, `Wants=`, ...).
    pub fn words(&self, section: &str, key: &str) -> Vec<String> {
        self.values(section, key)
            .iter()
            .flat_map(|v| v.split_whitespace().map(String::from))
            .collect()
    }

    /// `Environment=` assignments of `[Service]`.
    pub fn environment(&self) -> Vec<(String, String)> {
        self.words("Service", "Environment")
            .iter()
            .map(|w| {
                assert!(
                    !w.contains('"'),
                    "{}: quoted Environment= unsupported",
                    self.name
                );
                let (k, v) = w
                    .split_once('=')
                    .unwrap_or_else(|| panic!("{}: bad Environment= word {w}", self.name));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    /// The command lines of `[Service]` `key` (`ExecStart`, `ExecStop`, ...).
    pub fn exec(&self, key: &str) -> Vec<ExecCommand> {
        let env = self.environment();
        let lookup = |var: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == var)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        self.values("Service", key)
            .iter()
            .map(|line| {
                assert!(
                    !line.contains('"') && !line.contains('\'') && !line.contains('%'),
                    "{}: quoting and specifiers are not supported here: {line}",
                    self.name
                );
                let mut words = line.split_whitespace();
                let first = words.next().unwrap();
                let prog = first.trim_start_matches(['-', '@', ':', '+', '!']);
                let ignore_failure = first[..first.len() - prog.len()].contains('-');
                let mut argv = vec![prog.to_string()];
                for w in words {
                    if let Some(var) = w.strip_prefix('$').filter(|v| !v.starts_with('{')) {
                        // "$VAR" as a word: split at whitespace.
                        argv.extend(lookup(var).split_whitespace().map(String::from));
                    } else {
                        let mut s = w.to_string();
                        while let Some(start) = s.find("${") {
                            let end = s[start..].find('}').expect("unterminated ${") + start;
                            let v = lookup(&s[start + 2..end]);
                            s.replace_range(start..=end, &v);
                        }
                        argv.push(s);
                    }
                }
                ExecCommand {
                    argv,
                    ignore_failure,
                }
            })
            .collect()
    }
}

impl Machine<'_> {
    /// Whether the unit's `ConditionPathExists=` conditions hold inside the
    /// machine, as systemd evaluates them: `!` negates; every plain
    /// condition must hold, and of the triggering ones (`|` prefix, before
    /// any `!`) at least one. A unit whose conditions fail is skipped by
    /// systemd without running anything.
    pub fn unit_conditions_met(&self, unit: &UnitFile) -> bool {
        let mut any_trigger = false;
        let mut trigger_met = false;
        for c in unit.values("Unit", "ConditionPathExists") {
            let (trigger, c) = match c.strip_prefix('|') {
                Some(rest) => (true, rest),
                None => (false, c.as_str()),
            };
            let (negate, path) = match c.strip_prefix('!') {
                Some(p) => (true, p),
                None => (false, c),
            };
            let holds = self.run(&["test", "-e", path]).status.success() != negate;
            if trigger {
                any_trigger = true;
                trigger_met |= holds;
            } else if !holds {
                return false;
            }
        }
        !any_trigger || trigger_met
    }

    /// Run a unit's `key` commands inside the machine as systemd does: in
    /// order, stopping at the first failure that is not prefixed with `-`.
    pub fn run_unit(&self, unit: &UnitFile, key: &str) -> ExecRun {
        let mut ran = Vec::new();
        let mut failed = false;
        for cmd in unit.exec(key) {
            let out = self.run(&cmd.argv);
            let ok = out.status.success();
            let ignore = cmd.ignore_failure;
            ran.push((cmd, out));
            if !ok && !ignore {
                failed = true;
                break;
            }
        }
        ExecRun { ran, failed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_reset_prefixes_and_environment() {
        let u = UnitFile::parse(
            "x.service",
            "[Unit]\nAfter=a.target b.target\nAfter=c.service\n# c\n[Service]\n\
             Environment=T=30 W=two\nExecStop=/bin/one\nExecStop=\nExecStop=-/bin/two --t ${T} $W\n",
        );
        assert_eq!(
            u.words("Unit", "After"),
            ["a.target", "b.target", "c.service"]
        );
        let e = u.exec("ExecStop");
        assert_eq!(e.len(), 1, "empty assignment resets: {e:?}");
        assert!(e[0].ignore_failure);
        assert_eq!(e[0].argv, ["/bin/two", "--t", "30", "two"]);
        assert_eq!(u.value("Service", "Nope"), None);
    }
}
