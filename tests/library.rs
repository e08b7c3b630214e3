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

#[test]
fn assume_held_does_not_release_the_callers_lock() {
    let (tb, _) = Testbed::with_deployments(&["1.0"]);
    let sysroot = open(&tb);
    sysroot.lock().unwrap();
    drop(SysrootLock::assume_held(&sysroot));
    let other = open(&tb);
    assert!(
        !other.try_lock().unwrap(),
        "the caller still holds its lock"
    );
    sysroot.unlock();
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
