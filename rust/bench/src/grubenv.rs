//! The `grubenv` benchmark: arming and blessing the GRUB environment block
//! counter, against the `grub-editenv` runs greenboot makes for the same change.

use std::process::Command;

use crate::{time, Row, Target};

/// One grubenv operation, in-process (what `mark-good` and the finalize unit do).
pub fn grubenv_op(op: &str, file: &std::path::Path) {
    use stagehand::bootloader::{BootCounter, GrubenvCounter, Target};
    let target = Target {
        id: "bench:0000000000000000000000000000000000000000000000000000000000000000.0"
            .parse()
            .expect("an id"),
        bootcsum: String::new(),
        bootserial: 0,
    };
    let c = GrubenvCounter::new(file);
    match op {
        "grubenv-arm" => c.arm(&target, 3).expect("arm"),
        _ => {
            c.bless(&target).expect("bless");
        }
    }
}

/// fsync + fdatasync calls `cmd` makes (all its processes), counted by strace.
fn count_syncs(cmd: &mut Command) -> usize {
    let out = tempfile::NamedTempFile::new().expect("temporary file");
    let prog = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let ok = Command::new("strace")
        .args(["-f", "-c", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(out.path())
        .arg(prog)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .expect("strace (apt-get install strace)")
        .success();
    assert!(ok, "{cmd:?} failed under strace");
    std::fs::read_to_string(out.path())
        .expect("strace output")
        .lines()
        .filter(|l| l.ends_with(" fsync") || l.ends_with(" fdatasync"))
        .map(|l| {
            l.split_whitespace()
                .nth(3)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Arming and blessing the grubenv counter against the `grub-editenv` runs
/// greenboot makes for the same change (arming: `set boot_success=0`, then
/// `set boot_counter=3`; success: `set boot_success=1`, then `unset
/// boot_counter`), on the same file. greenboot passes `-` (the default
/// block, /boot/grub/grubenv here); the benchmark names a scratch file
/// instead so the host's bootloader is never touched — the same code path.
/// Wall time (target: <= 5 ms in-process) and fsyncs (a durable atomic
/// replace needs two: the new file, then the directory after the rename).
pub fn bench_grubenv(reps: usize) -> Vec<Row> {
    use stagehand::bootloader::grubenv::GrubEnv;
    let t = tempfile::tempdir_in("/var/tmp").expect("temporary directory");
    let file = t.path().join("grubenv");
    let blessed = {
        let mut env = GrubEnv::new();
        env.set("saved_entry", b"ostree-0-bench").expect("set");
        env.set("boot_success", b"1").expect("set");
        env.to_bytes().expect("fits")
    };
    let armed = {
        let mut env = GrubEnv::parse(&blessed).expect("parses");
        env.set("boot_counter", b"3").expect("set");
        env.set("boot_success", b"0").expect("set");
        env.to_bytes().expect("fits")
    };
    let exe = std::env::current_exe().expect("own path");
    let editenv = |args: &[&str]| {
        let ok = Command::new("grub-editenv")
            .arg(&file)
            .args(args)
            .status()
            .expect("grub-editenv (apt-get install grub-common)")
            .success();
        assert!(ok, "grub-editenv {args:?} failed");
    };
    let reset = |bytes: &[u8]| std::fs::write(&file, bytes).expect("reset");
    let peer_arm = || {
        editenv(&["set", "boot_success=0"]);
        editenv(&["set", "boot_counter=3"]);
    };
    let peer_bless = || {
        editenv(&["set", "boot_success=1"]);
        editenv(&["unset", "boot_counter"]);
    };
    // Sanity: both sides make the same change.
    reset(&blessed);
    peer_arm();
    let theirs_armed = GrubEnv::read(&file).expect("read").expect("exists");
    assert_eq!(
        theirs_armed.vars(),
        GrubEnv::parse(&armed).expect("parses").vars()
    );

    let sh_arm = "grub-editenv F set boot_success=0; grub-editenv F set boot_counter=3";
    let sh_bless = "grub-editenv F set boot_success=1; grub-editenv F unset boot_counter";
    let syncs = |op: &str, start: &[u8]| {
        reset(start);
        let ours = count_syncs(Command::new(&exe).args(["__inner", op]).arg(&file));
        reset(start);
        let script = if op == "grubenv-arm" {
            sh_arm
        } else {
            sh_bless
        };
        let f = file.to_str().expect("UTF-8 path");
        let theirs = count_syncs(Command::new("sh").args(["-c", &script.replace('F', f)]));
        (ours, theirs)
    };
    let mut rows = Vec::new();
    for (op, start, peer, what) in [
        ("grubenv-arm", &blessed, &peer_arm as &dyn Fn(), sh_arm),
        ("grubenv-bless", &armed, &peer_bless as &dyn Fn(), sh_bless),
    ] {
        let (s_ours, s_theirs) = syncs(op, start);
        let mut in_process = Vec::new();
        let mut one_process = Vec::new();
        let mut theirs = Vec::new();
        for i in 0..reps {
            let sides: [&mut dyn FnMut(); 3] = [
                &mut || {
                    reset(start);
                    in_process.push(time(|| grubenv_op(op, &file)));
                },
                &mut || {
                    reset(start);
                    one_process.push(time(|| {
                        let ok = Command::new(&exe)
                            .args(["__inner", op])
                            .arg(&file)
                            .status()
                            .expect("spawn")
                            .success();
                        assert!(ok);
                    }));
                },
                &mut || {
                    reset(start);
                    theirs.push(time(peer));
                },
            ];
            // Rotate the order so no side always runs on a warmer cache.
            for k in 0..3 {
                (sides[(i + k) % 3])();
            }
        }
        let verb = if op == "grubenv-arm" { "arm" } else { "bless" };
        rows.push(Row {
            name: format!("grubenv {verb} (in-process)"),
            ours: in_process,
            theirs: theirs.clone(),
            target: Target::Millis(5.0),
            note: format!("fsyncs {s_ours} vs {s_theirs}; vs greenboot: {what}"),
        });
        rows.push(Row {
            name: format!("grubenv {verb} (own process)"),
            ours: one_process,
            theirs,
            target: Target::Information,
            note: "information: one process linking stagehand (libostree, GLib: their start-up \
                   dominates) vs the two grub-editenv processes"
                .into(),
        });
    }
    rows
}
