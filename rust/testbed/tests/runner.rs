//! `stagehand-testbed run`, the runner the C tests use: it must build the
//! sysroot asked for, boot it, hand the checksums over, rewrite host paths,
//! and pass the program's exit status through.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

const RUNNER: &str = env!("CARGO_BIN_EXE_stagehand-testbed");

fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\nset -eu\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p.display().to_string()
}

fn run(args: &[&str]) -> Output {
    Command::new(RUNNER).args(args).output().unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn booted_program_sees_the_sysroot_commits_and_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, "from the host\n").unwrap();
    let prog = script(
        dir.path(),
        "probe.sh",
        r#"
test "$STAGEHAND_TEST_SYSROOT" = /
test "$STAGEHAND_TEST_BOOTED" = 1
test "$STAGEHAND_TEST_STATEROOT" = testos
test -e /run/ostree-booted
# The real ostree CLI sees 1.0 booted...
ostree admin status | grep -q "^\* testos $STAGEHAND_TEST_COMMIT_1_0\.0"
test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_1_0"
# ...2.0 in the repository on the default branch, not deployed...
test "$(ostree --repo=/sysroot/ostree/repo rev-parse "$STAGEHAND_TEST_BRANCH")" = "$STAGEHAND_TEST_COMMIT_2_0"
! ostree admin status | grep -q "$STAGEHAND_TEST_COMMIT_2_0"
# ...and 3.0 on its own branch, without a kernel.
test "$(ostree --repo=/sysroot/ostree/repo rev-parse testos/broken)" = "$STAGEHAND_TEST_COMMIT_3_0"
! ostree --repo=/sysroot/ostree/repo ls "$STAGEHAND_TEST_COMMIT_3_0" /usr/lib/modules >/dev/null 2>&1
# Host paths in arguments are rewritten, --option=/path too.
case "$1" in /run/testbed/host/*) ;; *) exit 90 ;; esac
test "$(cat "$1")" = "from the host"
test "$(cat "${2#--data=}")" = "from the host"
test "$EXTRA" = "x=y"
exit 7
"#,
    );
    let out = run(&[
        "run",
        "--deploy",
        "1.0",
        "--commit",
        "2.0",
        "--commit",
        "3.0",
        "--not-bootable",
        "--branch",
        "testos/broken",
        "--env",
        "EXTRA=x=y",
        "--",
        &prog,
        data.to_str().unwrap(),
        &format!("--data={}", data.display()),
    ]);
    assert_eq!(out.status.code(), Some(7), "{}", show(&out));
}

#[test]
fn no_boot_runs_on_the_host_against_the_sysroot_path() {
    let dir = tempfile::tempdir().unwrap();
    let prog = script(
        dir.path(),
        "probe.sh",
        r#"
test "$STAGEHAND_TEST_BOOTED" = 0
test "$STAGEHAND_TEST_SYSROOT" != /
test -d "$STAGEHAND_TEST_SYSROOT/ostree/deploy/testos"
ostree admin --sysroot="$STAGEHAND_TEST_SYSROOT" status | grep -q "testos $STAGEHAND_TEST_COMMIT_1_0\.0"
ostree admin --sysroot="$STAGEHAND_TEST_SYSROOT" status | grep -q "testos $STAGEHAND_TEST_COMMIT_2_0\.0"
echo "$STAGEHAND_TEST_SYSROOT"
"#,
    );
    let out = run(&["run", "--no-boot", "--versions", "1.0,2.0", "--", &prog]);
    assert!(out.status.success(), "{}", show(&out));
    // The sysroot is gone afterwards.
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!Path::new(&sysroot).exists(), "{sysroot} left behind");
}

#[test]
fn exit_status_and_signals_pass_through() {
    let out = run(&[
        "run",
        "--deploy",
        "1.0",
        "--",
        "/bin/sh",
        "-c",
        "kill -TERM $$",
    ]);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", show(&out));
    let out = run(&["run", "--deploy", "1.0", "--", "false"]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
}

#[test]
fn boots_reboot_into_what_the_first_boot_finalized() {
    let dir = tempfile::tempdir().unwrap();
    let prog = script(
        dir.path(),
        "two-boots.sh",
        r#"
test "$STAGEHAND_TEST_BOOTS" = 2
case "$STAGEHAND_TEST_BOOT" in
1)
    test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_1_0"
    ostree admin deploy --stage "$STAGEHAND_TEST_COMMIT_2_0" >&2
    echo kept > /var/boot1-file
    echo gone > /run/boot1-file
    echo "ok 1 staged"
    # The runner runs no shutdown step: this program does.
    ostree admin finalize-staged >&2
    ;;
2)
    # The bootloader's choice is now 2.0, booted, with 1.0 as rollback.
    test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_2_0"
    ostree admin status | grep -q "^\* testos $STAGEHAND_TEST_COMMIT_2_0\.0"
    ostree admin status | grep -q "^  testos $STAGEHAND_TEST_COMMIT_1_0\.0 (rollback)"
    # /var carries over, /run does not.
    test "$(cat /var/boot1-file)" = kept
    test ! -e /run/boot1-file
    echo "ok 2 rebooted"
    exit 3
    ;;
*) exit 90 ;;
esac
"#,
    );
    let out = run(&[
        "run", "--deploy", "1.0", "--commit", "2.0", "--boots", "2", "--", &prog,
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    // The first boot's stdout is a TAP comment; the last boot's is as is.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# boot 1: ok 1 staged\nok 2 rebooted\n",
        "{}",
        show(&out)
    );
}

#[test]
fn a_failing_boot_ends_the_run_with_its_status() {
    let out = run(&[
        "run",
        "--deploy",
        "1.0",
        "--boots",
        "3",
        "--",
        "/bin/sh",
        "-c",
        "echo \"boot $STAGEHAND_TEST_BOOT of $STAGEHAND_TEST_BOOTS\"; test $STAGEHAND_TEST_BOOT -lt 2 || exit 5",
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", show(&out));
    // No third boot.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# boot 1: boot 1 of 3\n# boot 2: boot 2 of 3\n",
        "{}",
        show(&out)
    );
}

#[test]
fn usage_errors_are_the_runners_own_status() {
    for args in [
        &["run", "--deploy", "1.0"][..],
        &["run", "--commit", "2.0", "--", "true"][..],
        &["run", "--not-bootable", "--", "true"][..],
        &["run", "--deploy", "1.0", "--not-bootable", "--", "true"][..],
        &["run", "--deploy", "1.0", "--boots", "0", "--", "true"][..],
        &["run", "--deploy", "1.0", "--boots", "x", "--", "true"][..],
        &[
            "run",
            "--deploy",
            "1.0",
            "--no-boot",
            "--boots",
            "2",
            "--",
            "true",
        ][..],
        &["run", "--file", "/x=/etc/hostname", "--", "true"][..],
        &[
            "run",
            "--commit",
            "2.0",
            "--file",
            "x=/etc/hostname",
            "--no-boot",
            "--",
            "true",
        ][..],
        &[
            "run",
            "--commit",
            "2.0",
            "--file",
            "/x",
            "--no-boot",
            "--",
            "true",
        ][..],
        &[
            "run",
            "--commit",
            "2.0",
            "--file",
            "/x=/nonexistent",
            "--no-boot",
            "--",
            "true",
        ][..],
        &["frobnicate"][..],
        &[
            "run",
            "--deploy",
            "1.0",
            "--grubenv",
            "boot/grub/grubenv",
            "--",
            "true",
        ][..],
        &[
            "run",
            "--deploy",
            "1.0",
            "--no-boot",
            "--grubenv",
            "/boot/grub/grubenv",
            "--",
            "true",
        ][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(125), "{args:?}: {}", show(&out));
    }
}

#[test]
fn grubenv_lets_grub_boot_counting_pick_the_fallback_entry() {
    // 1.0 then 2.0 deployed: 2.0 is the default, 1.0 the fallback entry.
    // Boot 1 (no block yet: the default) leaves a counter with no tries
    // left; before boot 2 GRUB's boot counting falls back to 1.0 and says
    // so in the block, as GRUB's save_env would.
    let dir = tempfile::tempdir().unwrap();
    let prog = script(
        dir.path(),
        "probe.sh",
        r#"
case "$STAGEHAND_TEST_BOOT" in
1)
    test -z "${STAGEHAND_TEST_GRUB_CHOICE:-}"
    test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_2_0"
    mkdir -p /boot/grub
    grub-editenv /boot/grub/grubenv create
    grub-editenv /boot/grub/grubenv set boot_counter=0 boot_success=0
    echo "ok 1 armed"
    ;;
2)
    test "$STAGEHAND_TEST_GRUB_CHOICE" = fallback
    test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_1_0"
    grub-editenv /boot/grub/grubenv list | grep -qx 'boot_counter=-1'
    echo "ok 2 fell back"
    ;;
*) exit 90 ;;
esac
"#,
    );
    let out = run(&[
        "run",
        "--deploy",
        "1.0,2.0",
        "--boots",
        "2",
        "--grubenv",
        "/boot/grub/grubenv",
        "--",
        &prog,
    ]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "# boot 1: ok 1 armed\nok 2 fell back\n",
        "{}",
        show(&out)
    );
}

#[test]
fn file_puts_a_host_file_into_the_commit_with_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("hook.sh");
    std::fs::write(&hook, "#!/bin/sh\nexit 3\n").unwrap();
    let notes = dir.path().join("notes:v1.txt");
    std::fs::write(&notes, "plain\n").unwrap();
    let prog = script(
        dir.path(),
        "probe.sh",
        r#"
repo="$STAGEHAND_TEST_SYSROOT/ostree/repo"
c="$STAGEHAND_TEST_COMMIT_2_0"
# The mode given after the last ':' and the content, owned by root...
ostree --repo="$repo" ls "$c" /usr/lib/stagehand/pre-upgrade.d/10-veto | grep -q '^-00755 0 0 '
test "$(ostree --repo="$repo" cat "$c" /usr/lib/stagehand/pre-upgrade.d/10-veto)" = "$(printf '#!/bin/sh\nexit 3')"
# ...0644 without one (a ':' in the host path is not a mode)...
ostree --repo="$repo" ls "$c" /usr/share/notes | grep -q '^-00644 0 0 '
test "$(ostree --repo="$repo" cat "$c" /usr/share/notes)" = plain
# ...and only in the commit it follows.
! ostree --repo="$repo" ls "$STAGEHAND_TEST_COMMIT_1_0" /usr/lib/stagehand/pre-upgrade.d/10-veto 2>/dev/null
"#,
    );
    let out = run(&[
        "run",
        "--no-boot",
        "--deploy",
        "1.0",
        "--commit",
        "2.0",
        "--file",
        &format!(
            "/usr/lib/stagehand/pre-upgrade.d/10-veto={}:755",
            hook.display()
        ),
        "--file",
        &format!("/usr/share/notes={}", notes.display()),
        "--",
        &prog,
    ]);
    assert!(out.status.success(), "{}", show(&out));
}
