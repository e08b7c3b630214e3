//! `stagehand guard`: the interrupted-operation guard for shell units
//! (docs/guard.md).
//!
//! `begin` and `commit` run in different processes (a prelaunch unit and a
//! completion unit), so `commit` cannot hold the library's token: it rebuilds
//! it from the stamp with `redline::resume`, which requires the step to be
//! *started* with the same name and digest. The digest therefore has to be
//! given to `commit` exactly as to `begin` (the same `--digest-file` is the
//! easy way).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use stagehand::redline;

use crate::CliError;

/// Arguments of `stagehand guard`.
#[derive(Args, Debug)]
pub struct GuardArgs {
    #[command(subcommand)]
    action: Action,
}

/// Where the stamps are and which step.
#[derive(Args, Debug)]
struct Step {
    /// The step name (1-128 of A-Z a-z 0-9 - _ . @ +, starting with a letter or digit).
    name: String,
    /// The directory holding the stamps; it must exist.
    #[arg(long, value_name = "DIR", default_value = redline::DEFAULT_DIR)]
    dir: PathBuf,
}

/// The configuration the step applies.
#[derive(Args, Debug)]
#[group(multiple = false)]
struct Digest {
    /// The configuration digest, in hex.
    #[arg(long, value_name = "HEX")]
    digest: Option<String>,
    /// Use the SHA-256 of this file's content as the digest.
    #[arg(long, value_name = "FILE")]
    digest_file: Option<PathBuf>,
}

impl Digest {
    fn resolve(&self) -> Result<Option<String>, CliError> {
        Ok(match (&self.digest, &self.digest_file) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(f)) => Some(redline::file_digest(f)?),
            (None, None) => None,
        })
    }
}

#[derive(Subcommand, Debug)]
enum Action {
    /// Cross the red line: record that the step started (durably), or refuse.
    ///
    /// Exit status 25: the step was interrupted before (inspect, then reset or
    /// --force); 26: it already completed with this digest (skip it); 27: it
    /// completed with another digest.
    Begin {
        #[command(flatten)]
        step: Step,
        #[command(flatten)]
        digest: Digest,
        /// Start the step afresh whatever the record says (interrupted, complete, corrupt).
        #[arg(long)]
        force: bool,
    },
    /// Record that the started step completed; name and digest must match its begin.
    Commit {
        #[command(flatten)]
        step: Step,
        #[command(flatten)]
        digest: Digest,
    },
    /// Show the step's record: absent, started or complete.
    Status {
        #[command(flatten)]
        step: Step,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Forget the step (any state, also a corrupt stamp), so the next begin starts it.
    Reset {
        #[command(flatten)]
        step: Step,
    },
}

/// Run `stagehand guard ...`.
pub fn run(args: &GuardArgs) -> Result<(), CliError> {
    match &args.action {
        Action::Begin {
            step,
            digest,
            force,
        } => {
            let digest = digest.resolve()?;
            let token = if *force {
                redline::begin_forced(&step.dir, &step.name, digest.as_deref())?
            } else {
                redline::begin(&step.dir, &step.name, digest.as_deref())?
            };
            println!(
                "step {} started (digest {})",
                step.name,
                show(&token.stamp().digest)
            );
            // Not committed here on purpose: `stagehand guard commit` does, in
            // the process that knows the step completed.
            drop(token);
        }
        Action::Commit { step, digest } => {
            let digest = digest.resolve()?;
            let token = redline::resume(&step.dir, &step.name, digest.as_deref())?;
            let done = redline::commit(token)?;
            println!(
                "step {} complete (digest {})",
                step.name,
                show(&done.digest)
            );
        }
        Action::Status { step, json } => {
            let path = redline::stamp_path(&step.dir, &step.name)?;
            let stamp = redline::status(&step.dir, &step.name)?;
            if *json {
                let mut v = match &stamp {
                    Some(s) => serde_json::to_value(s).expect("serializable"),
                    None => serde_json::json!({
                        "name": step.name,
                        "state": "absent",
                        "digest": null,
                        "run": null,
                        "started": null,
                        "completed": null,
                    }),
                };
                v["path"] = serde_json::json!(path);
                crate::print_json(&v);
            } else {
                match stamp {
                    None => println!("{}: absent", step.name),
                    Some(s) => {
                        print!(
                            "{}: {} (digest {}, started {}",
                            s.name,
                            s.phase.as_str(),
                            show(&s.digest),
                            s.started
                        );
                        match &s.completed {
                            Some(c) => println!(", completed {c})"),
                            None => println!(")"),
                        }
                    }
                }
            }
        }
        Action::Reset { step } => {
            // Say what is forgotten; a corrupt stamp is reset all the same.
            let before = redline::status(&step.dir, &step.name);
            if redline::reset(&step.dir, &step.name)? {
                match before {
                    Ok(Some(s)) => println!(
                        "step {} reset (was {}, digest {})",
                        step.name,
                        s.phase.as_str(),
                        show(&s.digest)
                    ),
                    _ => println!("step {} reset (its stamp was unreadable)", step.name),
                }
            } else {
                println!("step {} had no record", step.name);
            }
        }
    }
    Ok(())
}

fn show(d: &Option<String>) -> &str {
    d.as_deref().unwrap_or("none")
}
