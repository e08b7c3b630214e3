//! The boot counter backends against their real peers: `grub-editenv` reads
//! what stagehand writes and the other way round, real GRUB (`grub-emu`) runs
//! the counting snippet exactly like the Rust model and writes in place into
//! a block stagehand replaced by rename on a real ext4, counted BLS entries in
//! a real test-bed sysroot's `/boot/loader/entries` are read and blessed, and
//! the configuration file through the real binary.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use stagehand::bootloader::grubenv::{
    self, simulate_boot, GrubChoice, GrubEnv, GrubenvCounter, BLOCK_SIZE,
};
use stagehand::bootloader::{BlsCounter, BootCounter, CounterState, Target};
use stagehand::ErrorCode;
use stagehand_testbed::crashpoints::{self, Run};
use stagehand_testbed::{run_ok, Testbed};

// --- helpers ----------------------------------------------------------------

fn editenv(file: &Path, args: &[&str]) -> String {
    run_ok(Command::new("grub-editenv").arg(file).args(args))
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().canonicalize().unwrap();
    (t, dir)
}

/// A dummy target: the grubenv backend ignores it.
fn any_target() -> Target {
    Target {
        id: "testos:0000000000000000000000000000000000000000000000000000000000000000.0"
            .parse()
            .unwrap(),
        bootcsum: "0".into(),
        bootserial: 0,
    }
}

/// Variables with every kind of value grub-editenv can store, in order.
const OTHERS: &[(&str, &str)] = &[
    ("saved_entry", "ostree-0-1234"),
    ("backslash", "a\\b\\\\c"),
    ("newline", "first\nsecond"),
    ("equals", "x=y=z"),
    ("hash", "#not a comment"),
    ("spaces", "  padded  "),
    ("empty", ""),
    ("utf8", "grüße ✓"),
    ("trailing_backslash", "end\\"),
];

fn grub_editenv_block(dir: &Path) -> PathBuf {
    let f = dir.join("grubenv");
    editenv(&f, &["create"]);
    for (k, v) in OTHERS {
        editenv(&f, &["set", &format!("{k}={v}")]);
    }
    f
}

fn expected_list(extra: &[(&str, &str)]) -> String {
    OTHERS
        .iter()
        .chain(extra)
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect()
}

// --- grub-editenv interoperability ------------------------------------------

#[test]
fn grub_editenv_reads_what_stagehand_writes() {
    let (_t, dir) = scratch();
    let f = grub_editenv_block(&dir);
    let before = std::fs::read(&f).unwrap();
    let c = GrubenvCounter::new(&f);
    c.arm(&any_target(), 3).unwrap();
    assert_eq!(
        editenv(&f, &["list"]),
        expected_list(&[("boot_counter", "3"), ("boot_success", "0")])
    );
    // Every byte of grub-editenv's lines is where it was; ours are appended.
    let after = std::fs::read(&f).unwrap();
    assert_eq!(after.len(), BLOCK_SIZE);
    let used = before.iter().rposition(|b| *b == b'\n').unwrap() + 1;
    assert_eq!(after[..used], before[..used]);
    assert!(after[used..].starts_with(b"boot_counter=3\nboot_success=0\n#"));

    assert!(c.bless(&any_target()).unwrap());
    assert_eq!(
        editenv(&f, &["list"]),
        expected_list(&[("boot_success", "1")])
    );
    // And grub-editenv can keep editing our file.
    editenv(&f, &["set", "boot_counter=7"]);
    editenv(&f, &["unset", "hash"]);
    let env = GrubEnv::read(&f).unwrap().unwrap();
    assert_eq!(env.get_str("boot_counter"), Some("7"));
    assert_eq!(env.get("hash"), None);
}

#[test]
fn stagehand_reads_what_grub_editenv_writes() {
    let (_t, dir) = scratch();
    let f = grub_editenv_block(&dir);
    let env = GrubEnv::read(&f).unwrap().unwrap();
    let want: Vec<(String, String)> = OTHERS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(env.vars(), want);
    for (k, v) in OTHERS {
        assert_eq!(env.get(k), Some(v.as_bytes()), "{k}");
    }
    // Re-serialized without a change, it is the same file byte for byte.
    assert_eq!(env.to_bytes().unwrap(), std::fs::read(&f).unwrap());

    // The counter as greenboot and GRUB leave it.
    editenv(&f, &["set", "boot_counter=2", "boot_success=0"]);
    let c = GrubenvCounter::new(&f);
    assert_eq!(
        c.state(&any_target()).unwrap(),
        CounterState::Counting {
            left: 2,
            done: None
        }
    );
    editenv(&f, &["set", "boot_counter=-1"]);
    assert_eq!(
        c.state(&any_target()).unwrap(),
        CounterState::Exhausted { done: None }
    );
    // greenboot's success marking, interrupted between its two runs, and done.
    editenv(&f, &["set", "boot_success=1"]);
    assert_eq!(c.state(&any_target()).unwrap(), CounterState::NotArmed);
    editenv(&f, &["unset", "boot_counter"]);
    assert_eq!(c.state(&any_target()).unwrap(), CounterState::NotArmed);
}

#[test]
fn a_round_trip_through_stagehand_keeps_grub_editenv_variables() {
    let (_t, dir) = scratch();
    let f = grub_editenv_block(&dir);
    let original = std::fs::read(&f).unwrap();
    let c = GrubenvCounter::new(&f);
    c.arm(&any_target(), 5).unwrap();
    let mut env = GrubEnv::read(&f).unwrap().unwrap();
    assert_eq!(simulate_boot(&mut env), GrubChoice::Default);
    std::fs::write(&f, env.to_bytes().unwrap()).unwrap();
    assert!(c.disarm(&any_target()).unwrap());
    // boot_success=0 stays (disarm gives no verdict); remove it with
    // grub-editenv and the file is grub-editenv's original again.
    editenv(&f, &["unset", "boot_success"]);
    assert_eq!(std::fs::read(&f).unwrap(), original);
    assert_eq!(editenv(&f, &["list"]), expected_list(&[]));
}

#[test]
fn a_missing_block_is_created_like_grub_editenv_does() {
    let (_t, dir) = scratch();
    let ours = dir.join("grubenv");
    let c = GrubenvCounter::new(&ours);
    assert_eq!(c.state(&any_target()).unwrap(), CounterState::NotArmed);
    // Bless and disarm do not create it.
    assert!(!c.bless(&any_target()).unwrap());
    assert!(!c.disarm(&any_target()).unwrap());
    assert!(!ours.exists());
    c.arm(&any_target(), 3).unwrap();
    let theirs = dir.join("theirs");
    editenv(&theirs, &["create"]);
    editenv(&theirs, &["set", "boot_counter=3", "boot_success=0"]);
    assert_eq!(
        std::fs::read(&ours).unwrap(),
        std::fs::read(&theirs).unwrap()
    );
    assert_eq!(
        std::fs::metadata(&ours).unwrap().mode() & 0o7777,
        std::fs::metadata(&theirs).unwrap().mode() & 0o7777
    );
}

// --- refusals -----------------------------------------------------------------

fn block(body: &[u8]) -> Vec<u8> {
    let mut b = grubenv::HEADER.as_bytes().to_vec();
    b.extend_from_slice(body);
    b.resize(BLOCK_SIZE, b'#');
    b
}

type Op<'a> = Box<dyn Fn() -> stagehand::Result<()> + 'a>;

#[test]
fn malformed_blocks_are_refused_and_left_untouched() {
    let (_t, dir) = scratch();
    let f = dir.join("grubenv");
    let good = block(b"boot_counter=2\nboot_success=0\n");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty file", Vec::new()),
        ("truncated", good[..512].to_vec()),
        ("one byte short", good[..BLOCK_SIZE - 1].to_vec()),
        ("one byte long", [good.clone(), b"#".to_vec()].concat()),
        ("twice the size", [good.clone(), good.clone()].concat()),
        ("no header", {
            let mut b = good.clone();
            b[2] = b'g';
            b
        }),
        (
            "garbage",
            (0..BLOCK_SIZE).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("a line without =", block(b"boot_counter=2\nnonsense\n")),
        ("no newline before padding", block(b"boot_counter=2")),
        ("dangling escape", block(b"boot_counter=2\\\n")),
        ("NUL byte", block(b"boot_counter=2\nx=\0\n")),
        ("zeros", vec![0; BLOCK_SIZE]),
    ];
    let c = GrubenvCounter::new(&f);
    let t = any_target();
    for (what, bytes) in &cases {
        std::fs::write(&f, bytes).unwrap();
        let ino = std::fs::metadata(&f).unwrap().ino();
        let ops: [(&str, Op); 4] = [
            ("arm", Box::new(|| c.arm(&t, 3))),
            ("bless", Box::new(|| c.bless(&t).map(drop))),
            ("disarm", Box::new(|| c.disarm(&t).map(drop))),
            ("state", Box::new(|| c.state(&t).map(drop))),
        ];
        for (op, f_op) in &ops {
            let e = f_op().unwrap_err();
            assert_eq!(e.code(), ErrorCode::Corrupt, "{what}: {op}: {e}");
            assert!(e.to_string().contains(f.to_str().unwrap()), "{e}");
            assert_eq!(
                &std::fs::read(&f).unwrap(),
                bytes,
                "{what}: {op} changed the file"
            );
            assert_eq!(
                std::fs::metadata(&f).unwrap().ino(),
                ino,
                "{what}: {op} replaced it"
            );
            assert_eq!(listing(&dir), ["grubenv"], "{what}: {op}");
        }
    }
}

#[test]
fn a_change_that_would_overflow_the_block_is_refused() {
    let (_t, dir) = scratch();
    let f = dir.join("grubenv");
    editenv(&f, &["create"]);
    // Fill the block with grub-editenv until only 10 bytes are left.
    let free = std::fs::read(&f)
        .unwrap()
        .iter()
        .rev()
        .take_while(|b| **b == b'#')
        .count();
    let filler = "x".repeat(free - "filler=\n".len() - 10);
    editenv(&f, &["set", &format!("filler={filler}")]);
    let before = std::fs::read(&f).unwrap();
    let c = GrubenvCounter::new(&f);
    let e = c.arm(&any_target(), 3).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Unsupported, "{e}");
    assert!(e.to_string().contains("1024"), "{e}");
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(listing(&dir), ["grubenv"]);
    // grub-editenv agrees that it does not fit.
    let out = Command::new("grub-editenv")
        .arg(&f)
        .args(["set", "boot_counter=3", "boot_success=0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn replacing_keeps_symlinks_and_leaves_no_temporary_files() {
    let (_t, dir) = scratch();
    // Fedora's old layout: /boot/grub2/grubenv -> ../efi/EFI/fedora/grubenv.
    std::fs::create_dir_all(dir.join("grub2")).unwrap();
    std::fs::create_dir_all(dir.join("efi/EFI/fedora")).unwrap();
    let real = dir.join("efi/EFI/fedora/grubenv");
    editenv(&real, &["create"]);
    let link = dir.join("grub2/grubenv");
    std::os::unix::fs::symlink("../efi/EFI/fedora/grubenv", &link).unwrap();
    // A temporary file a killed stagehand writer left behind.
    std::fs::write(dir.join("efi/EFI/fedora/.grubenv.tmp4242"), b"junk").unwrap();
    let c = GrubenvCounter::new(&link);
    c.arm(&any_target(), 2).unwrap();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        editenv(&link, &["list"]),
        "boot_counter=2\nboot_success=0\n"
    );
    assert_eq!(listing(&dir.join("efi/EFI/fedora")), ["grubenv"]);
    assert_eq!(listing(&dir.join("grub2")), ["grubenv"]);
    // A dangling link (the ESP is not mounted) is an error, not a new file.
    std::fs::remove_file(&real).unwrap();
    let e = c.arm(&any_target(), 2).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    assert!(e.to_string().contains("mounted"), "{e}");
    assert!(!real.exists());
    // Repeating a change writes nothing (no new inode, no fsync).
    let f = dir.join("plain");
    editenv(&f, &["create"]);
    let c = GrubenvCounter::new(&f);
    c.arm(&any_target(), 3).unwrap();
    let ino = std::fs::metadata(&f).unwrap().ino();
    c.arm(&any_target(), 3).unwrap();
    assert_eq!(std::fs::metadata(&f).unwrap().ino(), ino);
    assert!(c.bless(&any_target()).unwrap());
    assert!(!c.bless(&any_target()).unwrap());
}

// --- crash safety ---------------------------------------------------------------

/// Kill `stagehand bootloader arm`/`bless` at each of its mutating system
/// calls: the block is always the old or the new one, whole, and it is
/// fsynced before the rename and the directory after it, before the report.
#[test]
fn a_kill_at_every_mutating_call_of_arm_and_bless_leaves_old_or_new() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let (_t, dir) = scratch();
    let f = dir.join("grubenv");
    let start = {
        editenv(&f, &["create"]);
        editenv(&f, &["set", "saved_entry=x", "boot_success=1"]);
        std::fs::read(&f).unwrap()
    };
    let armed = {
        GrubenvCounter::new(&f).arm(&any_target(), 3).unwrap();
        std::fs::read(&f).unwrap()
    };
    let blessed = {
        GrubenvCounter::new(&f).bless(&any_target()).unwrap();
        std::fs::read(&f).unwrap()
    };
    for (op, from, to) in [("arm", &start, &armed), ("bless", &armed, &blessed)] {
        let reset = || {
            for n in listing(&dir) {
                std::fs::remove_file(dir.join(n)).unwrap();
            }
            std::fs::write(&f, from).unwrap();
        };
        let make = || {
            let mut c = Command::new(EXE);
            c.arg("--sysroot")
                .arg(tb.sysroot())
                .args(["bootloader", "--config", "/nonexistent", "--grubenv"])
                .arg(&f)
                .arg(op)
                .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments");
            c
        };
        let mut rename_at = None;
        let full = crashpoints::sweep(make, reset, |run: &Run| {
            let now = std::fs::read(&f).unwrap();
            match run.crash_point() {
                None => {
                    assert!(run.status.success(), "{op}: {}", run.output());
                    assert_eq!(&now, to, "{op}");
                    rename_at = run
                        .points
                        .iter()
                        .position(|p| {
                            p.syscall.starts_with("rename") && p.detail.ends_with("/grubenv")
                        })
                        .map(|i| i + 1);
                }
                Some(at) => {
                    assert_eq!(run.status.signal(), Some(libc::SIGKILL));
                    let r = rename_at.expect("the rename in the traced run");
                    let want = if at.index <= r { from } else { to };
                    assert_eq!(&now, want, "{op} killed at {at}");
                    // Readable by grub-editenv, whatever the moment.
                    editenv(&f, &["list"]);
                    // Only our temporary file may be left, and the next
                    // write removes it.
                    for n in listing(&dir) {
                        assert!(n == "grubenv" || n.starts_with(".grubenv.tmp"), "{n}");
                    }
                }
            }
        });
        let pts = &full.points;
        let r = rename_at.unwrap();
        let tmp = pts[r - 1].detail.split(" -> ").next().unwrap().to_owned();
        assert!(
            pts[..r - 1]
                .iter()
                .any(|q| q.syscall == "fsync" && q.detail == tmp),
            "{op}: the new block is not fsynced before the rename:\n{}",
            full.listing()
        );
        let report = pts
            .iter()
            .rposition(|q| q.syscall == "write" && q.detail.starts_with("pipe:"))
            .unwrap();
        assert!(
            pts[r..report]
                .iter()
                .any(|q| q.syscall == "fsync" && q.detail == dir.to_str().unwrap()),
            "{op}: the directory is not fsynced between the rename and the report:\n{}",
            full.listing()
        );
        let syncs = pts
            .iter()
            .filter(|q| matches!(q.syscall, "fsync" | "fdatasync"))
            .count();
        assert_eq!(
            syncs,
            2,
            "{op}: one fsync for the data, one for the rename:\n{}",
            full.listing()
        );
    }
}

// --- real GRUB ----------------------------------------------------------------

/// What GRUB printed and left in its environment block.
struct GrubRun {
    default: String,
    block: Vec<u8>,
    output: String,
}

fn require(tool: &str, package: &str) {
    assert!(
        stagehand_testbed::which(tool).is_some(),
        "this test needs `{tool}` (apt-get install {package}; scripts/install-deps.sh does)"
    );
}

/// The GRUB code `data/grub/08_stagehand-boot-counting` prints.
fn snippet() -> String {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/grub/08_stagehand-boot-counting"
    );
    let text = run_ok(
        Command::new("sh")
            .arg(script)
            .env_remove("GRUB_STAGEHAND_FALLBACK"),
    );
    // The script in the tree is the one compiled into the library.
    assert_eq!(
        std::fs::read_to_string(script).unwrap(),
        grubenv::GRUB_SCRIPT
    );
    text
}

/// A grub.cfg that does what 00_header does with the environment block,
/// then the snippet, then reports the default entry and stops.
fn grub_cfg(snippet: &str) -> String {
    format!(
        "insmod ext2\ninsmod loadenv\ninsmod test\ninsmod echo\n\
         set prefix=(hd0)/grub\nset default=0\n\
         if [ -s $prefix/grubenv ]; then load_env; fi\n\
         {snippet}\
         echo \"RESULT default=$default\"\nhalt\n"
    )
}

/// Boot real GRUB (grub-emu) with `cfg` on the ext2 image `img`.
fn run_grub_on_image(dir: &Path, img: &Path, cfg: &str) -> (String, String) {
    let pfx = dir.join("pfx");
    let _ = std::fs::create_dir(&pfx);
    let _ = std::os::unix::fs::symlink("/usr/lib/grub/x86_64-emu", pfx.join("x86_64-emu"));
    std::fs::write(pfx.join("grub.cfg"), cfg).unwrap();
    let map = dir.join("device.map");
    std::fs::write(&map, format!("(hd0) {}\n", img.display())).unwrap();
    let out = Command::new("timeout")
        .args(["30", "grub-emu", "-d"])
        .arg(&pfx)
        .arg("-m")
        .arg(&map)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text: String = text(&out.stdout).replace('\r', "") + &text(&out.stderr);
    let default = text
        .split("RESULT default=")
        .nth(1)
        .unwrap_or_else(|| panic!("GRUB did not run the config:\n{text}"))
        .lines()
        .next()
        .unwrap()
        .to_owned();
    (default, text)
}

fn read_from_image(img: &Path, file: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", &format!("cat {file}")])
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out.stdout
}

fn run_grub(block: &[u8], snippet: &str) -> GrubRun {
    let (_t, dir) = scratch();
    std::fs::create_dir_all(dir.join("fs/grub")).unwrap();
    std::fs::write(dir.join("fs/grub/grubenv"), block).unwrap();
    let img = dir.join("disk.img");
    run_ok(Command::new("truncate").args(["-s", "4M"]).arg(&img));
    run_ok(
        Command::new("mkfs.ext2")
            .args(["-q", "-F", "-d"])
            .arg(dir.join("fs"))
            .arg(&img),
    );
    let (default, output) = run_grub_on_image(&dir, &img, &grub_cfg(snippet));
    GrubRun {
        default,
        block: read_from_image(&img, "/grub/grubenv"),
        output,
    }
}

/// Real GRUB runs the snippet on every interesting start state and ends
/// with the same entry and the same environment block, byte for byte, as
/// the Rust model (`simulate_boot`) that end-to-end tests drive reboots with.
#[test]
fn real_grub_and_the_model_agree() {
    require("grub-emu", "grub-emu");
    require("debugfs", "e2fsprogs");
    let snippet = snippet();
    let counters = [
        None,
        Some("3"),
        Some("16"),
        Some("10"),
        Some("2"),
        Some("1"),
        Some("0"),
        Some("-1"),
        Some("17"),
        Some("03"),
        Some("abc"),
        Some(""),
    ];
    let successes = [None, Some("0"), Some("1")];
    let mut fallbacks = 0;
    for counter in counters {
        for success in successes {
            // Unknown variables and a comment around ours, as grub-editenv writes them.
            let mut env = GrubEnv::new();
            env.set("saved_entry", b"ostree-0-abc").unwrap();
            if let Some(c) = counter {
                env.set("boot_counter", c.as_bytes()).unwrap();
            }
            env.set("multi", b"one\ntwo \\ three").unwrap();
            if let Some(s) = success {
                env.set("boot_success", s.as_bytes()).unwrap();
            }
            env.set("after", b"x").unwrap();
            let start = env.to_bytes().unwrap();
            let grub = run_grub(&start, &snippet);
            let model = simulate_boot(&mut env);
            let ctx = format!(
                "boot_counter={counter:?} boot_success={success:?}:\n{}",
                grub.output
            );
            assert!(!grub.output.contains("error"), "{ctx}");
            let want_default = match model {
                GrubChoice::Default => "0",
                GrubChoice::Fallback => {
                    fallbacks += 1;
                    "1"
                }
            };
            assert_eq!(grub.default, want_default, "{ctx}");
            assert_eq!(
                String::from_utf8_lossy(&grub.block),
                String::from_utf8_lossy(&env.to_bytes().unwrap()),
                "{ctx}"
            );
        }
    }
    assert_eq!(fallbacks, 5, "0, -1, 17, 03 and abc fall back");

    // Armed with 3 tries: GRUB boots the new entry three times, then falls back.
    let mut env = GrubEnv::new();
    env.set("boot_counter", b"3").unwrap();
    env.set("boot_success", b"0").unwrap();
    let mut block = env.to_bytes().unwrap();
    let mut seen = Vec::new();
    for _ in 0..5 {
        let run = run_grub(&block, &snippet);
        seen.push(run.default);
        block = run.block;
    }
    assert_eq!(seen, ["0", "0", "0", "1", "1"]);
    assert_eq!(
        GrubEnv::parse(&block).unwrap().get_str("boot_counter"),
        Some("-1")
    );
}

/// GRUB writes the block in place through the sectors it reads it from: on a
/// real ext4, after stagehand replaced the file by rename (a new inode, new
/// blocks), GRUB finds it by path and saves its count into it, and stagehand
/// reads GRUB's write back.
#[test]
fn grub_saves_into_a_block_stagehand_replaced_on_ext4() {
    require("grub-emu", "grub-emu");
    require("debugfs", "e2fsprogs");
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let (_t, dir) = scratch();
    let img = dir.join("boot.img");
    run_ok(Command::new("truncate").args(["-s", "16M"]).arg(&img));
    run_ok(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&img));
    let mnt = dir.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    // Mounted in a private mount namespace only, so nothing outlives the test.
    let with_mounted = |cmd: &str| -> Output {
        let script = format!(
            "set -e; mount -o loop '{img}' '{mnt}'; trap \"umount '{mnt}'\" EXIT; {cmd}",
            img = img.display(),
            mnt = mnt.display()
        );
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
            .output()
            .unwrap()
    };
    let stagehand = |args: &str| {
        format!(
            "'{EXE}' --sysroot '{}' bootloader --config /nonexistent --grubenv '{}/grub/grubenv' {args}",
            tb.sysroot().display(),
            mnt.display()
        )
    };
    let out = with_mounted(&format!(
        "mkdir '{m}/grub'; grub-editenv '{m}/grub/grubenv' create; \
         grub-editenv '{m}/grub/grubenv' set saved_entry=keep; \
         stat -c %i '{m}/grub/grubenv'; {arm}; stat -c %i '{m}/grub/grubenv'",
        m = mnt.display(),
        arm = stagehand("arm --tries 3")
    ));
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let inodes: Vec<String> = text(&out.stdout)
        .lines()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_owned)
        .collect();
    assert_eq!(inodes.len(), 2, "{}", text(&out.stdout));
    assert_ne!(
        inodes[0], inodes[1],
        "arm must replace the file (a new inode)"
    );

    let snippet = snippet();
    for left in ["2", "1"] {
        let (default, output) = run_grub_on_image(&dir, &img, &grub_cfg(&snippet));
        assert_eq!(default, "0", "{output}");
        assert!(!output.contains("error"), "{output}");
        let env = GrubEnv::parse(&read_from_image(&img, "/grub/grubenv")).unwrap();
        assert_eq!(env.get_str("boot_counter"), Some(left));
        assert_eq!(env.get_str("saved_entry"), Some("keep"));
    }
    // Userspace sees GRUB's count through the kernel, and blesses.
    let out = with_mounted(&format!(
        "{}; {}",
        stagehand("status --json"),
        stagehand("bless")
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(text(&out.stdout).split("\nblessed").next().unwrap()).unwrap();
    assert_eq!(json["counter"]["state"], "counting");
    assert_eq!(json["counter"]["left"], 1);
    let env = GrubEnv::parse(&read_from_image(&img, "/grub/grubenv")).unwrap();
    assert_eq!(env.get("boot_counter"), None);
    assert_eq!(env.get_str("boot_success"), Some("1"));
    let (default, output) = run_grub_on_image(&dir, &img, &grub_cfg(&snippet));
    assert_eq!(default, "0", "{output}");
    let after = read_from_image(&img, "/grub/grubenv");
    assert_eq!(
        after,
        env.to_bytes().unwrap(),
        "a blessed block is not counted"
    );
}

#[test]
fn the_grub_script_is_valid_grub_and_respects_its_settings() {
    require("grub-script-check", "grub-common");
    let (_t, dir) = scratch();
    let cfg = dir.join("snippet.cfg");
    std::fs::write(&cfg, snippet()).unwrap();
    run_ok(Command::new("grub-script-check").arg(&cfg));
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/grub/08_stagehand-boot-counting"
    );
    let out = run_ok(
        Command::new("sh")
            .arg(script)
            .env("GRUB_STAGEHAND_FALLBACK", "ostree-1-abc"),
    );
    assert!(out.contains("set default=\"ostree-1-abc\""), "{out}");
    let out = Command::new("sh")
        .arg(script)
        .env("GRUB_STAGEHAND_FALLBACK", "1; reboot")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad GRUB_STAGEHAND_FALLBACK"));
    // The CLI prints the same script for installation.
    let printed = Command::new(EXE)
        .args(["bootloader", "grub-script"])
        .output()
        .unwrap();
    assert!(printed.status.success());
    assert_eq!(text(&printed.stdout), grubenv::GRUB_SCRIPT);
}

// --- systemd boot counting (BLS) -------------------------------------------------

fn entries_dir(tb: &Testbed) -> PathBuf {
    tb.sysroot().join("boot/loader/entries")
}

/// The entry file that boots the deployment at `index` in `ostree admin status`.
fn entry_file(tb: &Testbed, index: usize) -> String {
    let d = &tb.deployments()[index];
    let sysroot =
        stagehand::ostree::Sysroot::new(Some(&stagehand::gio::File::for_path(tb.sysroot())));
    sysroot.load(stagehand::gio::Cancellable::NONE).unwrap();
    let od = sysroot
        .deployments()
        .into_iter()
        .find(|x| x.csum() == d.checksum.as_str() && x.deployserial() as u32 == d.serial)
        .unwrap();
    let suffix = format!("/{}/{}/{}", od.osname(), od.bootcsum(), od.bootserial());
    listing(&entries_dir(tb))
        .into_iter()
        .find(|n| {
            std::fs::read_to_string(entries_dir(tb).join(n))
                .unwrap()
                .lines()
                .any(|l| l.starts_with("options ") && l.contains(&suffix))
        })
        .unwrap()
}

fn target_of(tb: &Testbed, index: usize) -> Target {
    let d = &tb.deployments()[index];
    let sysroot =
        stagehand::ostree::Sysroot::new(Some(&stagehand::gio::File::for_path(tb.sysroot())));
    sysroot.load(stagehand::gio::Cancellable::NONE).unwrap();
    let od = sysroot
        .deployments()
        .into_iter()
        .find(|x| x.csum() == d.checksum.as_str() && x.deployserial() as u32 == d.serial)
        .unwrap();
    Target::of(&od)
}

fn rename_entry(tb: &Testbed, from: &str, to: &str) {
    std::fs::rename(entries_dir(tb).join(from), entries_dir(tb).join(to)).unwrap();
}

fn bls_conf(tb: &Testbed) -> PathBuf {
    let p = tb.root().join("bls.conf");
    std::fs::write(&p, "[bootloader]\nbackend = bls\n").unwrap();
    p
}

#[test]
fn counted_entries_in_a_real_sysroot_are_read_and_blessed() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let new = entry_file(&tb, 0);
    let old = entry_file(&tb, 1);
    let stem = new.strip_suffix(".conf").unwrap().to_owned();
    let t = target_of(&tb, 0);
    let c = BlsCounter::new(entries_dir(&tb));
    assert_eq!(c.state(&t).unwrap(), CounterState::NotArmed);

    // As libostree 2025.3 writes it, then as systemd-boot renames it.
    for (name, want) in [
        (
            format!("{stem}+3.conf"),
            CounterState::Counting {
                left: 3,
                done: Some(0),
            },
        ),
        (
            format!("{stem}+1-2.conf"),
            CounterState::Counting {
                left: 1,
                done: Some(2),
            },
        ),
        (
            format!("{stem}+0-3.conf"),
            CounterState::Exhausted { done: Some(3) },
        ),
    ] {
        let current = entry_file(&tb, 0);
        rename_entry(&tb, &current, &name);
        assert_eq!(c.state(&t).unwrap(), want, "{name}");
        // libostree 2022.7 reads counted names: the real ostree CLI still
        // lists both deployments in order.
        let d = tb.deployments();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].id(), t.id.to_string());
    }
    // The other deployment's entry is not affected by any of this.
    assert_eq!(c.state(&target_of(&tb, 1)).unwrap(), CounterState::NotArmed);

    // Through the CLI too.
    let conf = bls_conf(&tb);
    let out = host(
        &tb,
        &[
            "bootloader",
            "--config",
            conf.to_str().unwrap(),
            "status",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["backend"], "bls");
    assert_eq!(
        j["counter"],
        serde_json::json!({"state": "exhausted", "done": 3})
    );
    assert_eq!(j["deployment"], t.id.to_string());

    // Bless: renamed to the uncounted name, durably; idempotent.
    let out = host(
        &tb,
        &["bootloader", "--config", conf.to_str().unwrap(), "bless"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("blessed {} (bls)\n", t.id));
    let mut want = vec![new.clone(), old.clone()];
    want.sort();
    assert_eq!(listing(&entries_dir(&tb)), want);
    assert_eq!(c.state(&t).unwrap(), CounterState::NotArmed);
    assert!(!c.bless(&t).unwrap());
    // Disarm renames a counted entry the same way.
    rename_entry(&tb, &new, &format!("{stem}+2-1.conf"));
    assert!(c.disarm(&t).unwrap());
    assert_eq!(listing(&entries_dir(&tb)), want);
    tb.deployments();
}

#[test]
fn blessing_never_replaces_an_existing_entry() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let new = entry_file(&tb, 0);
    let stem = new.strip_suffix(".conf").unwrap().to_owned();
    let counted = format!("{stem}+0-3.conf");
    rename_entry(&tb, &new, &counted);
    let t = target_of(&tb, 0);
    // Something else sits at the uncounted name (libostree 2022.7 refuses to
    // load a sysroot with such an entry: "No ostree= kernel argument found").
    std::fs::write(entries_dir(&tb).join(&new), "title not ours\n").unwrap();
    let before: Vec<_> = listing(&entries_dir(&tb))
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(entries_dir(&tb).join(n)).unwrap()))
        .collect();
    let c = BlsCounter::new(entries_dir(&tb));
    let e = c.bless(&t).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    assert!(e.to_string().contains("refusing to replace"), "{e}");
    assert!(e.to_string().contains(&new), "{e}");
    let after: Vec<_> = listing(&entries_dir(&tb))
        .into_iter()
        .map(|n| (n.clone(), std::fs::read(entries_dir(&tb).join(n)).unwrap()))
        .collect();
    assert_eq!(before, after);

    // Two entries booting one deployment: refused as corrupt, nothing renamed.
    std::fs::remove_file(entries_dir(&tb).join(&new)).unwrap();
    std::fs::copy(
        entries_dir(&tb).join(&counted),
        entries_dir(&tb).join("copy+1-0.conf"),
    )
    .unwrap();
    let e = c.bless(&t).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Corrupt, "{e}");
    assert!(entries_dir(&tb).join(&counted).exists());
    assert!(entries_dir(&tb).join("copy+1-0.conf").exists());
}

#[test]
fn arming_bls_on_libostree_2022_7_says_it_is_unsupported() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let conf = bls_conf(&tb);
    let before = listing(&entries_dir(&tb));
    let out = host(
        &tb,
        &["bootloader", "--config", conf.to_str().unwrap(), "arm"],
    );
    assert_fails(&out, ErrorCode::Unsupported, "libostree 2022.7");
    let err = text(&out.stderr);
    assert!(
        err.contains("2025.3") && err.contains("sysroot.boot-counting-tries"),
        "{err}"
    );
    assert!(err.contains("backend=grubenv"), "{err}");
    assert_eq!(listing(&entries_dir(&tb)), before, "nothing renamed");
    // An entry counted by a newer libostree (or by hand) arms fine.
    let new = entry_file(&tb, 0);
    let counted = format!("{}+3.conf", new.strip_suffix(".conf").unwrap());
    rename_entry(&tb, &new, &counted);
    let out = host(
        &tb,
        &["bootloader", "--config", conf.to_str().unwrap(), "arm"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(entries_dir(&tb).join(&counted).exists());
}

/// Inside a booted machine: the evidence the counter gives about the boot.
#[test]
fn evidence_tells_a_fallback_from_a_manual_choice_in_a_booted_machine() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let new = entry_file(&tb, 0);
    let stem = new.strip_suffix(".conf").unwrap().to_owned();
    // The config lives in the booted deployment's /etc.
    for d in tb.deployments() {
        let etc = tb.deployment_dir(&d).join("etc/stagehand");
        std::fs::create_dir_all(&etc).unwrap();
        std::fs::write(etc.join("stagehand.conf"), "[bootloader]\nbackend = bls\n").unwrap();
    }
    let evidence = |booted: usize| {
        let m = tb.boot(&tb.deployments()[booted]);
        let j: serde_json::Value =
            serde_json::from_str(&ok_in(&m, &["bootloader", "status", "--json"])).unwrap();
        let text = ok_in(&m, &["bootloader", "status"]);
        (j["evidence"]["evidence"].as_str().unwrap().to_owned(), text)
    };
    rename_entry(&tb, &new, &format!("{stem}+2-1.conf"));
    let (e, text) = evidence(0);
    assert_eq!(e, "on-trial");
    assert!(text.contains("on trial (2 left)"), "{text}");
    assert_eq!(evidence(1).0, "manual-choice");
    rename_entry(
        &tb,
        &format!("{stem}+2-1.conf"),
        &format!("{stem}+0-3.conf"),
    );
    let (e, text) = evidence(1);
    assert_eq!(e, "bootloader-fallback");
    assert!(text.contains("the bootloader fell back"), "{text}");
    assert_eq!(evidence(0).0, "manual-choice");
}

/// The GRUB model drives "reboots" of a booted test bed with a grubenv.
#[test]
fn the_grub_model_drives_reboots_of_a_test_bed() {
    let (tb, _) = Testbed::with_deployments(&["1.0", "2.0"]);
    let grubdir = tb.sysroot().join("boot/grub");
    std::fs::create_dir_all(&grubdir).unwrap();
    let env = grubdir.join("grubenv");
    editenv(&env, &["create"]);
    // A grub.cfg that counts: auto-detection picks grubenv.
    std::fs::write(grubdir.join("grub.cfg"), snippet()).unwrap();
    let m = tb.boot_default();
    let j: serde_json::Value = serde_json::from_str(&ok_in(
        &m,
        &["bootloader", "--config", "/nonexistent", "status", "--json"],
    ))
    .unwrap();
    assert_eq!(j["backend"], "grubenv");
    assert_eq!(j["location"], "/boot/grub/grubenv");
    ok_in(
        &m,
        &[
            "bootloader",
            "--config",
            "/nonexistent",
            "arm",
            "--tries",
            "2",
        ],
    );
    drop(m);
    let mut booted = Vec::new();
    for _ in 0..4 {
        let choice = grubenv::simulate_boot_file(&env).unwrap();
        let d = &tb.deployments()[match choice {
            GrubChoice::Default => 0,
            GrubChoice::Fallback => 1,
        }];
        let m = tb.boot(d);
        let j: serde_json::Value = serde_json::from_str(&ok_in(
            &m,
            &["bootloader", "--config", "/nonexistent", "status", "--json"],
        ))
        .unwrap();
        booted.push((
            d.version.clone().unwrap(),
            j["evidence"]["evidence"].as_str().unwrap().to_owned(),
        ));
    }
    let want = [
        ("2.0", "on-trial"),
        ("2.0", "on-trial"),
        ("1.0", "bootloader-fallback"),
        ("1.0", "bootloader-fallback"),
    ];
    assert_eq!(
        booted,
        want.map(|(a, b)| (a.to_string(), b.to_string())).to_vec()
    );
}

// --- configuration through the binary ---------------------------------------------

#[test]
fn configuration_errors_name_the_file_and_line() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let (_t, dir) = scratch();
    let conf = dir.join("stagehand.conf");
    let run = |body: &str| {
        std::fs::write(&conf, body).unwrap();
        host(
            &tb,
            &["bootloader", "--config", conf.to_str().unwrap(), "status"],
        )
    };
    let loc = |line: usize| format!("{}:{line}: ", conf.display());
    assert_fails(
        &run("[bootloader]\nbackend = lilo\n"),
        ErrorCode::Config,
        &format!("{}backend = \"lilo\"", loc(2)),
    );
    assert_fails(
        &run("# c\n[health]\ndeadline = 1s\n"),
        ErrorCode::Config,
        &loc(3),
    );
    assert_fails(
        &run("[bootloader]\nretries = 3\n"),
        ErrorCode::Config,
        "unknown key",
    );
    assert_fails(&run("[hooks]\n"), ErrorCode::Config, "unknown section");
    assert_eq!(run("[bootloader]\ntries = 2\n").status.code(), Some(0));
    // Missing: defaults.
    let out = host(
        &tb,
        &[
            "bootloader",
            "--config",
            "/nonexistent/x.conf",
            "status",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["config"]["tries"], 3);
    assert_eq!(j["config"]["health_deadline"], 600);
    assert_eq!(j["config"]["source"], serde_json::Value::Null);
    assert_eq!(j["backend"], "none");
    assert_eq!(j["counter"]["state"], "no-counter");
    // Tries are bounded.
    let out = host(
        &tb,
        &[
            "bootloader",
            "--config",
            "/nonexistent",
            "--grubenv",
            dir.join("g").to_str().unwrap(),
            "arm",
            "--tries",
            "0",
        ],
    );
    assert_fails(&out, ErrorCode::InvalidArgument, "1 to 16");
}

/// A read-only /boot (as on systems that mount it so) is reported as such,
/// and nothing is written.
#[test]
fn a_read_only_boot_is_reported_and_left_alone() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let (_t, dir) = scratch();
    let f = grub_editenv_block(&dir);
    let before = std::fs::read(&f).unwrap();
    let script = format!(
        "set -e; mount --bind '{d}' '{d}'; mount -o remount,bind,ro '{d}'; \
         exec '{EXE}' --sysroot '{s}' bootloader --config /nonexistent --grubenv '{f}' arm",
        d = dir.display(),
        s = tb.sysroot().display(),
        f = f.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .env("OSTREE_SYSROOT_DEBUG", "mutable-deployments")
        .output()
        .unwrap();
    assert_fails(&out, ErrorCode::ReadOnly, "read-only");
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert_eq!(listing(&dir), ["grubenv"]);
}
