#!/bin/sh
# Runs the update-daemon examples (examples/c or examples/cxx: both print
# the same lines) on a booted test sysroot, checking each one's output and
# exit status. Run by meson (tests/examples/meson.build) as
#
#   stagehand-testbed run --deploy 0.9 --deploy 1.0 --commit 2.0
#       --commit 4.0 --branch testos/hooked --file ...10-pass --file ...20-veto
#       --commit 5.0 --branch testos/passing --file ...10-pass
#       --boots N -- sh run-examples.sh SCENARIO CLI BOOT_CHECK AUTOCLEANUP
#                       STAGE_HOOKS MAINTENANCE_WINDOW RUN_ONCE UPDATE_DAEMON
#
# update (2 boots). Boot 1 (1.0): a veto by 4.0's hook; 2.0 staged held,
# kept staged through a shutdown, cancelled, staged again and released; the
# guarded step run, skipped, refused; the shutdown steps stagehand's units
# run around the real `ostree admin finalize-staged`. Boot 2 (2.0): assessment
# and mark-good, the autocleanup the finalization left pending, the guarded
# step still done.
#
# rollback (3 boots). Boot 1 (1.0): 5.0 staged, its hook passes; staged
# again: unchanged; shutdown.
# Boot 2 (5.0): the health check fails: marked bad, rolled back to 1.0.
# Boot 3 (1.0): good; 5.0 is denylisted and refused; the cleanup; 2.0
# staged held by the plain update-daemon.
#
# TAP on stdout (the examples' output as comments); the exit status is the
# number of failed checks (at most 99).
set -u
[ $# -eq 8 ] || { echo "usage: $0 update|rollback CLI BOOT_CHECK AUTOCLEANUP STAGE_HOOKS MAINTENANCE_WINDOW RUN_ONCE UPDATE_DAEMON" >&2; exit 99; }
scenario=$1 cli=$2 boot_check=$3 autocleanup=$4 stage_hooks=$5 window=$6 run_once=$7 update_daemon=$8
boot=${STAGEHAND_TEST_BOOT:?run this with stagehand-testbed run --boots N}
stateroot=$STAGEHAND_TEST_STATEROOT
id_0_9="$stateroot:$STAGEHAND_TEST_COMMIT_0_9.0"
id_1_0="$stateroot:$STAGEHAND_TEST_COMMIT_1_0.0"
id_2_0="$stateroot:$STAGEHAND_TEST_COMMIT_2_0.0"
id_5_0="$stateroot:$STAGEHAND_TEST_COMMIT_5_0.0"
guard_dir=/var/lib/example-guard
conf=/var/lib/example-migrate.conf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

n=0 failed=0
ok() { n=$((n + 1)); echo "ok $n - $*"; }
not_ok() { n=$((n + 1)) failed=$((failed + 1)); echo "not ok $n - $*"; }
# run STATUS PROGRAM [ARGS...]: run it, stdout to $tmp/out, stderr to
# $tmp/err (both shown in the log as TAP comments), and check its exit status.
run() {
    want=$1; shift
    "$@" >"$tmp/out" 2>"$tmp/err"
    got=$?
    what=$(basename "$1")
    shift
    what=$(echo "$what${*:+ $*}")
    echo "# \$ $what"
    sed 's/^/#   /' "$tmp/out"
    sed 's/^/#   stderr: /' "$tmp/err"
    if [ "$got" -eq "$want" ]; then ok "$what: exit $want"; else not_ok "$what: exit $got, expected $want"; fi
}
# out|err LINE: that exact line is in the last run's stdout|stderr.
has_line() {
    if grep -qxF -- "$2" "$tmp/$1"; then ok "$1 has \"$2\""; else not_ok "$1 lacks \"$2\""; fi
}
out() { has_line out "$1"; }
err() { has_line err "$1"; }
# out_matches|err_matches REGEX: an extended regular expression matches a line.
matches() {
    if grep -qE -- "$2" "$tmp/$1"; then ok "$1 matches /$2/"; else not_ok "$1 does not match /$2/"; fi
}
out_matches() { matches out "$1"; }
err_matches() { matches err "$1"; }
check() { desc=$1; shift; if "$@"; then ok "$desc"; else not_ok "$desc"; fi; }
status_has() { ostree admin status | grep -qF -- "$1"; }
# What stagehand's units run at shutdown, around the real finalize-staged.
shutdown_steps() {
    "$cli" finalize-stamp --record >/dev/null &&
        ostree admin finalize-staged >/dev/null 2>&1 &&
        "$cli" finalize-stamp >"$tmp/finalize" 2>&1
}

case "$scenario:$boot" in
update:1)
    # The booted 1.0 has no record: known good as far as stagehand knows.
    run 0 "$boot_check"
    out_matches '^verdict: good: '
    check "boot-check marks nothing on a good boot" sh -c "! grep -q '^marked' '$tmp/out'"

    # 4.0 ships 10-pass and 20-veto (exit 3 with a message): refused.
    run 3 "$stage_hooks" testos/hooked
    err_matches '^update refused by a pre-upgrade hook: .*20-veto'
    err_matches 'exit status 3'
    err_matches 'update to 1\.5 first'
    check "nothing is staged after the veto" sh -c "! ostree admin status | grep -q staged"
    check "no finalization lock is left after the veto" test ! -e /run/ostree/staged-deployment-locked
    # An unknown revision is an error, not a veto.
    run 1 "$stage_hooks" testos/no-such-branch
    err_matches '^error: '

    # Download now: 2.0 staged, finalization locked...
    run 0 "$window" apply
    out "nothing is staged"
    run 0 "$window" download testos/stable
    out "staged: $id_2_0, held until the maintenance window"
    check "finalization is locked" test -e /run/ostree/staged-deployment-locked
    # ... so a shutdown leaves it staged.
    check "shutdown steps run (held)" shutdown_steps
    check "2.0 is still staged after a held shutdown" status_has "(staged)"
    # Cancelled, then downloaded again.
    run 0 "$window" cancel
    out "unstaged: $id_2_0"
    check "nothing is staged after cancel" sh -c "! ostree admin status | grep -q staged"
    run 0 "$window" download testos/stable
    out "staged: $id_2_0, held until the maintenance window"
    # The maintenance window: released, finalized at this shutdown.
    run 0 "$window" apply
    out "released: $id_2_0 takes effect at the next reboot"
    check "finalization is unlocked" test ! -e /run/ostree/staged-deployment-locked

    # The guarded step: runs once, then is skipped; a changed configuration
    # is reported, not re-run; a failed step stays started and is refused.
    mkdir -p "$guard_dir"
    echo "setting=1" >"$conf"
    run 0 "$run_once" --dir "$guard_dir" --config "$conf" migrate \
        sh -c "echo ran >> $guard_dir/migrate.count"
    out_matches '^step migrate: done at [0-9]{4}-'
    run 0 "$run_once" --dir "$guard_dir" --config "$conf" migrate \
        sh -c "echo ran >> $guard_dir/migrate.count"
    out "step migrate: already done, skipped"
    check "the migration ran exactly once" test "$(wc -l <"$guard_dir/migrate.count")" -eq 1
    echo "setting=2" >"$conf"
    run 3 "$run_once" --dir "$guard_dir" --config "$conf" migrate \
        sh -c "echo ran >> $guard_dir/migrate.count"
    err_matches '^step migrate ran with another configuration: '
    run 1 "$run_once" --dir "$guard_dir" flash sh -c 'exit 7'
    err_matches '^step flash failed: '
    run 2 "$run_once" --dir "$guard_dir" flash true
    err_matches '^step flash was interrupted before; not running it again: '
    run 4 "$run_once" --dir /nonexistent flash true
    err_matches '^error: '
    check "the migration still ran exactly once" test "$(wc -l <"$guard_dir/migrate.count")" -eq 1

    # Shutdown: 2.0 finalized, the cleanup stamp written.
    check "shutdown steps run (released)" shutdown_steps
    check "finalize-stamp wrote the stamp" grep -q "cleanup stamp written" "$tmp/finalize"
    check "2.0 is no longer staged" sh -c "! ostree admin status | grep -q staged"
    ;;
update:2)
    check "booted into 2.0" test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_2_0"
    # On trial; the health check passes: marked good.
    run 0 "$boot_check" --health-check true
    out_matches '^verdict: on-trial: '
    out_matches "^marked good: $id_2_0 after 1 boot\\(s\\)\$"
    # 0.9 was pinned during the trial (two known-good deployments kept);
    # releasing it is left to the cleanup, off the boot path.
    out "retention pending: the cleanup releases the trial's pins"
    check "0.9 is still deployed after mark-good" sh -c "ostree admin status | grep -q '$STAGEHAND_TEST_COMMIT_0_9'"
    # Again in the same boot: good, nothing counted or marked again.
    run 0 "$boot_check"
    out_matches '^verdict: good: '
    check "boot-check marks nothing the second time" sh -c "! grep -q '^marked' '$tmp/out'"

    # The cleanup the finalization left pending.
    run 0 "$autocleanup"
    out "cleanup pending: $id_2_0 was finalized"
    out "removed: $id_0_9"
    out_matches '^freed [1-9][0-9]* objects \(.*\), [0-9]+ left$'
    out "stamp removed"
    check "no cleanup stamp is left" test ! -e /sysroot/.cleanup
    run 0 "$autocleanup"
    out "no cleanup pending"
    check "the repository is consistent" sh -c "ostree fsck --repo=/sysroot/ostree/repo --quiet >/dev/null"

    # The guard's record survived the reboot.
    echo "setting=1" >"$conf"
    run 0 "$run_once" --dir "$guard_dir" --config "$conf" migrate false
    out "step migrate: already done, skipped"
    ;;
rollback:1)
    # 5.0 ships only 10-pass: staged, and finalized at this shutdown.
    run 0 "$stage_hooks" testos/passing
    out "staged: $id_5_0 (hooks passed)"
    run 0 "$stage_hooks" testos/passing
    out "already staged: $id_5_0"
    check "shutdown steps run" shutdown_steps
    check "finalize-stamp wrote the stamp" grep -q "cleanup stamp written" "$tmp/finalize"
    ;;
rollback:2)
    check "booted into 5.0" test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_5_0"
    # On trial, and the agent's health check fails: marked bad, rolled back.
    run 0 "$boot_check" --health-check false
    out_matches '^verdict: on-trial: '
    out_matches "^marked bad: $id_5_0 \\(health check false: .+\\)\$"
    out "rolled back to $id_1_0"
    out "reboot needed"
    check "1.0 is the default again" sh -c "ostree admin status | grep -E '^[* ] [^ ]' | head -n 1 | grep -qF '$STAGEHAND_TEST_COMMIT_1_0'"
    ;;
rollback:3)
    check "booted into 1.0 again" test "$STAGEHAND_TEST_BOOTED_COMMIT" = "$STAGEHAND_TEST_COMMIT_1_0"
    run 0 "$boot_check"
    out_matches '^verdict: good: '
    # The failed update is not retried by the agent.
    run 5 "$stage_hooks" testos/passing
    err_matches '^update failed on this system before, not retrying: '
    check "nothing is staged after the refusal" sh -c "! ostree admin status | grep -q staged"
    run 0 "$autocleanup"
    out_matches '^cleanup pending'
    out "stamp removed"
    check "the repository is consistent" sh -c "ostree fsck --repo=/sysroot/ostree/repo --quiet >/dev/null"

    # The plain update daemon: 2.0 staged and held, the deployments listed.
    run 0 "$update_daemon" --hold testos/stable
    out "staged: $id_2_0 (held until unlocked)"
    out "  $id_2_0 2.0 (staged) (held)"
    out "* $id_1_0 1.0"
    run 1 "$update_daemon" testos/no-such-branch
    err_matches '^error: '
    ;;
*)
    echo "Bail out! unexpected scenario $scenario, boot $boot"
    exit 99
    ;;
esac
echo "1..$n"
[ "$failed" -gt 99 ] && failed=99
exit "$failed"
