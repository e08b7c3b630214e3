//! The library API used in-process, as a Rust update agent links it, on real
//! sysroots that are not booted (booted flows are driven through the CLI in
//! rust/cli/tests).

use std::time::{Duration, Instant};

use stagehand::gio::prelude::CancellableExt;
use stagehand::{DeploymentId, ErrorCode, Kargs, StageMethod, StageOptions, SysrootLock};
use stagehand_testbed::{Commit, Testbed};

fn open(tb: &Testbed) -> stagehand::ostree::Sysroot {
    stagehand::open_sysroot(tb.sysroot(), None).unwrap()
}

#[test]
fn deployment_identity_is_stable_across_reloads_and_index_shifts() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let sysroot = open(&tb);
    let first = sysroot.deployments()[0].clone();
    let id = DeploymentId::of(&first);
    assert_eq!(id.checksum, sums[0]);
    assert_eq!(first.index(), 0);

    // A new deployment pushes v1 to index 1; the identity still finds it.
    let v2 = tb.commit(&Commit::new("2.0"));
    tb.deploy(&v2);
    sysroot.load(stagehand::gio::Cancellable::NONE).unwrap();
    let found = id.find(&sysroot).expect("found after reload");
    assert_eq!(found.index(), 1);
    assert_eq!(DeploymentId::of(&found), id);
    assert_eq!(id.to_string().parse::<DeploymentId>().unwrap(), id);
    assert_eq!(DeploymentId::resolve(&sums[0][..12], &sysroot).unwrap(), id);
    assert_eq!(
        DeploymentId::resolve(&id.to_string(), &sysroot).unwrap(),
        id
    );
    assert!(tb.root().join("sysroot").join(id.relpath()).is_dir());

    // A fresh sysroot object (another process's view) agrees.
    let other = open(&tb);
    assert_eq!(id.require(&other).unwrap().index(), 1);
    let gone = DeploymentId {
        serial: 7,
        ..id.clone()
    };
    assert_eq!(
        gone.require(&other).unwrap_err().code(),
        ErrorCode::UnknownDeployment
    );
    assert_eq!(
        DeploymentId::resolve("zz", &other).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

#[test]
fn lock_waits_times_out_and_honours_cancellation() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let holder = open(&tb);
    holder.lock().unwrap();

    let sysroot = open(&tb);
    let t = Instant::now();
    let e = SysrootLock::acquire(&sysroot, Duration::from_millis(300), None).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Locked, "{e}");
    assert!(t.elapsed() >= Duration::from_millis(300));
    assert!(
        e.to_string().contains(&tb.sysroot().display().to_string()),
        "{e}"
    );

    let c = stagehand::gio::Cancellable::new();
    c.cancel();
    let e = SysrootLock::acquire(&sysroot, Duration::from_secs(30), Some(&c)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);

    // Released by its holder: acquired, and released again on drop.
    holder.unlock();
    {
        let _lock = SysrootLock::acquire(&sysroot, Duration::from_secs(5), None).unwrap();
        assert!(!holder.try_lock().unwrap(), "held while the guard lives");
    }
    assert!(holder.try_lock().unwrap(), "released on drop");
    holder.unlock();
}

/// What `ostree_sysroot_try_lock()` on a fresh sysroot object says: whether
/// libostree itself would find the lock free (and gives it back at once).
fn libostree_finds_lock_free(tb: &Testbed) -> bool {
    let other = open(tb);
    let free = other.try_lock().unwrap();
    if free {
        other.unlock();
    }
    free
}

#[test]
fn verify_held_refuses_a_sysroot_nobody_locked_and_changes_nothing() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let sysroot = open(&tb);
    let lock_file = tb.sysroot().join("ostree/lock");
    let before = (
        tb.admin(&["status"]),
        tb.deployment_dirs(),
        tb.repo_objects(),
        lock_file.exists(),
    );

    let e = SysrootLock::verify_held(&sysroot, "staging").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotLocked, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&tb.sysroot().display().to_string())
            && msg.contains("staging")
            && msg.contains("ostree_sysroot_lock()"),
        "{msg}"
    );
    assert!(
        libostree_finds_lock_free(&tb),
        "the probe gave the lock back"
    );

    // A lock file left by a holder that died (libostree unlinks it only on
    // a clean release) is not a held lock.
    std::fs::write(&lock_file, b"").unwrap();
    let e = SysrootLock::verify_held(&sysroot, "staging").unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotLocked, "{e}");
    std::fs::remove_file(&lock_file).unwrap();

    assert_eq!(
        (
            tb.admin(&["status"]),
            tb.deployment_dirs(),
            tb.repo_objects(),
            lock_file.exists(),
        ),
        before,
        "nothing changed on disk"
    );
    assert!(!tb.admin(&["status"]).contains(&v2));
}

#[test]
fn verify_held_accepts_the_lock_ostree_sysroot_lock_took_and_keeps_it() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let sysroot = open(&tb);
    // ostree_sysroot_lock() in this very process: the probe's fresh open
    // file description conflicts with the caller's OFD lock all the same.
    sysroot.lock().unwrap();
    {
        let lock = SysrootLock::verify_held(&sysroot, "staging").unwrap();
        let out = stagehand::stage(&lock, &StageOptions::new(v2.clone()), None).unwrap();
        assert_eq!(out.method, StageMethod::Deployed);
        assert_eq!(out.deployment.checksum, v2);
    }
    let d = tb.deployments();
    assert_eq!(
        (d[0].checksum.as_str(), d[1].checksum.as_str()),
        (v2.as_str(), sums[0].as_str())
    );
    // Dropping the wrapper leaves the caller's lock held.
    assert!(
        !libostree_finds_lock_free(&tb),
        "the caller still holds its lock"
    );
    assert!(SysrootLock::verify_held(&sysroot, "staging").is_ok());
    sysroot.unlock();
    assert!(libostree_finds_lock_free(&tb));
    assert_eq!(
        SysrootLock::verify_held(&sysroot, "staging")
            .unwrap_err()
            .code(),
        ErrorCode::NotLocked
    );
}

/// A holder whose libglnx fell back to `flock()` (a kernel without OFD locks,
/// or libglnx built without `F_OFD_SETLK`): util-linux `flock(1)` takes
/// `flock(LOCK_EX)` on `ostree/lock` in another process, exactly the call
/// libglnx makes then, and the check sees it; so does the caller's own
/// `flock()` in this process (a lock of another open file description).
/// Before and after, with nobody holding it, the check still refuses.
#[test]
fn verify_held_accepts_a_holder_that_fell_back_to_flock() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let sysroot = open(&tb);
    let lock_file = tb.sysroot().join("ostree/lock");
    let not_locked = |why: &str| {
        let e = SysrootLock::verify_held(&sysroot, "staging").unwrap_err();
        assert_eq!(e.code(), ErrorCode::NotLocked, "{why}: {e}");
        assert!(
            !stagehand::sysroot::sysroot_lock_is_held(&sysroot).unwrap(),
            "{why}"
        );
    };
    not_locked("no lock file, no holder");

    // The holder prints once it has the lock and keeps it until its stdin
    // closes.
    let mut holder = Command::new("flock")
        .args(["--exclusive", "--nonblock"])
        .arg(&lock_file)
        .args(["sh", "-c", "echo locked; read _"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux flock(1)");
    let mut line = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "locked\n", "flock(1) took the lock");
    // It is an flock() lock: a second flock(1) cannot have it.
    let contender = Command::new("flock")
        .args(["--exclusive", "--nonblock", "--conflict-exit-code", "75"])
        .arg(&lock_file)
        .arg("true")
        .status()
        .unwrap();
    assert_eq!(contender.code(), Some(75), "the lock is an flock() lock");

    assert!(stagehand::sysroot::sysroot_lock_is_held(&sysroot).unwrap());
    let lock = SysrootLock::verify_held(&sysroot, "staging").expect("flock() holder seen");
    drop(lock);
    // The probe left the holder's lock alone and took nothing of its own.
    let contender = Command::new("flock")
        .args(["--exclusive", "--nonblock", "--conflict-exit-code", "75"])
        .arg(&lock_file)
        .arg("true")
        .status()
        .unwrap();
    assert_eq!(contender.code(), Some(75), "still held by flock(1)");

    holder.stdin.take().unwrap().write_all(b"\n").unwrap();
    assert!(holder.wait().unwrap().success());
    // flock(1) leaves its file behind; a file nobody locks is not a held lock.
    assert!(lock_file.exists());
    not_locked("flock(1) released and exited");
    let free = Command::new("flock")
        .args(["--exclusive", "--nonblock"])
        .arg(&lock_file)
        .arg("true")
        .status()
        .unwrap();
    assert!(free.success(), "the probe gave its own flock() back");

    // The caller's own flock() in this process, on another description.
    let f = std::fs::File::open(&lock_file).unwrap();
    rustix::fs::flock(&f, rustix::fs::FlockOperation::NonBlockingLockExclusive).unwrap();
    assert!(SysrootLock::verify_held(&sysroot, "staging").is_ok());
    drop(f);
    not_locked("the caller's flock() released");
}

/// The documented limit: the check sees that *someone* holds the lock, not
/// who. A lock held through another sysroot object (or another process)
/// satisfies it; it agrees with libostree's own view in every case.
#[test]
fn verify_held_cannot_tell_who_holds_the_lock() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let holder = open(&tb);
    let sysroot = open(&tb);
    holder.lock().unwrap();
    assert!(!libostree_finds_lock_free(&tb));
    assert!(SysrootLock::verify_held(&sysroot, "staging").is_ok());
    holder.unlock();
    assert!(libostree_finds_lock_free(&tb));
    assert!(SysrootLock::verify_held(&sysroot, "staging").is_err());
}

#[test]
fn full_deploy_on_a_sysroot_that_is_not_booted() {
    let (tb, sums) = Testbed::with_deployments(&["1.0"]);
    let v2 = tb.commit(&Commit::new("2.0"));
    let sysroot = open(&tb);
    assert!(!stagehand::is_booted(&sysroot));
    let lock = SysrootLock::acquire(&sysroot, Duration::from_secs(5), None).unwrap();
    let opts = StageOptions::new(v2.clone()).kargs(Kargs::Append(vec!["console=ttyS0".into()]));
    let out = stagehand::stage(&lock, &opts, None).unwrap();
    assert_eq!(out.method, StageMethod::Deployed);
    assert!(!out.unchanged);
    assert_eq!(out.deployment.checksum, v2);
    let d = tb.deployments();
    assert_eq!(
        (d[0].checksum.as_str(), d[1].checksum.as_str()),
        (v2.as_str(), sums[0].as_str())
    );
    let kargs = stagehand::stage::deployment_kargs(&sysroot.deployments()[0]);
    assert!(
        kargs.contains(&"console=ttyS0".to_string())
            && kargs.contains(&"root=LABEL=testroot".to_string()),
        "{kargs:?}"
    );
    let again = stagehand::stage(&lock, &opts, None).unwrap();
    assert!(again.unchanged);
    assert_eq!(again.deployment, out.deployment);
}

#[test]
fn bad_requests_are_typed_and_write_nothing() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let broken = tb.commit(&Commit::new("x").not_bootable().branch("testos/broken"));
    let sysroot = open(&tb);
    let lock = SysrootLock::acquire(&sysroot, Duration::from_secs(5), None).unwrap();
    let before = (
        tb.admin(&["status"]),
        tb.deployment_dirs(),
        tb.repo_objects(),
    );
    let cases = [
        (StageOptions::new(""), ErrorCode::InvalidArgument),
        (
            StageOptions::new("f".repeat(64)),
            ErrorCode::UnknownRevision,
        ),
        (StageOptions::new("nope/ref"), ErrorCode::UnknownRevision),
        (StageOptions::new(broken.clone()), ErrorCode::NotBootable),
        (
            StageOptions::new("testos/stable").stateroot("other"),
            ErrorCode::UnknownStateroot,
        ),
        (
            StageOptions::new("testos/stable").stateroot("a/b"),
            ErrorCode::InvalidArgument,
        ),
    ];
    for (opts, code) in cases {
        let e = stagehand::stage(&lock, &opts, None).unwrap_err();
        assert_eq!(e.code(), code, "{:?}: {e}", opts.revision());
    }
    assert_eq!(
        (
            tb.admin(&["status"]),
            tb.deployment_dirs(),
            tb.repo_objects()
        ),
        before
    );
}

#[test]
fn finalization_lock_needs_a_booted_system() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let sysroot = open(&tb);
    let e = stagehand::lock_finalization(&sysroot).unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotBooted);
}
