/* stagehand: staged deployment, cleanup stamps, pre-upgrade hooks and
 * health bits for ostree update agents.
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Conventions: fallible functions take the caller's OstreeSysroot, a
 * nullable GCancellable and a nullable GError location, and return FALSE
 * or NULL exactly when they set the error (domain STAGEHAND_ERROR). NULL
 * where a function does not allow it is a programming error, reported as a
 * GLib critical. Strings the caller owns (transfer full) are freed with
 * g_free(); opaque objects with their _free() function or g_autoptr().
 * Messages are logged with g_log() in the "stagehand" domain. Functions are
 * safe to call from any thread, on objects not shared between threads
 * without locking. Each function says whether the sysroot lock must be held.
 */

#pragma once

/* Generated from rust/capi by cbindgen: do not edit. Regenerate with
 *   STAGEHAND_UPDATE_HEADER=1 cargo test -p stagehand-capi --test header
 */

#include <glib.h>
#include <gio/gio.h>
#include <ostree.h>
G_BEGIN_DECLS

/**
 * STAGEHAND_ERROR:
 *
 * The error domain of stagehand; its codes are #StagehandError.
 */
#define STAGEHAND_ERROR (stagehand_error_quark ())


/**
 * StagehandStageMethod:
 * @STAGEHAND_STAGE_METHOD_STAGED: staged on a booted system; `ostree-finalize-staged.service` finalizes it at shutdown
 * @STAGEHAND_STAGE_METHOD_DEPLOYED: fully deployed at once, because the sysroot is not the booted one (image builds, tests)
 *
 * How stagehand_stage() wrote the new deployment.
 */
typedef enum {
  STAGEHAND_STAGE_METHOD_STAGED = 0,
  STAGEHAND_STAGE_METHOD_DEPLOYED = 1,
} StagehandStageMethod;

/**
 * StagehandHealthState:
 * @STAGEHAND_HEALTH_STATE_UNTESTED: installed (staged or deployed) and never booted: boot this if available
 * @STAGEHAND_HEALTH_STATE_FAILED: booted but not confirmed yet (on trial, see stagehand_deployment_status_get_on_trial()), or marked bad (with a reason): a last resort only
 * @STAGEHAND_HEALTH_STATE_GOOD: booted successfully, the most recent such deployment
 * @STAGEHAND_HEALTH_STATE_GOOD_FALLBACK: booted successfully before, a fallback; also every deployment stagehand has no record of
 * @STAGEHAND_HEALTH_STATE_UNKNOWN: the health store cannot be read (stagehand_status_get_health_error() says why)
 *
 * What seed 000's untested/failed/recent flags of a deployment say.
 */
typedef enum {
  STAGEHAND_HEALTH_STATE_UNTESTED = 0,
  STAGEHAND_HEALTH_STATE_FAILED = 1,
  STAGEHAND_HEALTH_STATE_GOOD = 2,
  STAGEHAND_HEALTH_STATE_GOOD_FALLBACK = 3,
  STAGEHAND_HEALTH_STATE_UNKNOWN = 4,
} StagehandHealthState;

/**
 * StagehandCleanupStampKind:
 * @STAGEHAND_CLEANUP_STAMP_KIND_LEGACY: an empty stamp, as older tools (eos-updater's drop-in) write it: a cleanup is pending, nothing more is known
 * @STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED: written by stagehand after it verified a finalization; it names the finalized deployment and the dropped ones
 * @STAGEHAND_CLEANUP_STAMP_KIND_NEWER: written by a newer stagehand in a format this one does not read (then the OS was rolled back); the cleanup is still pending
 * @STAGEHAND_CLEANUP_STAMP_KIND_REMOVED: written by stagehand when it removed deployments from the deployment list itself (the end of a trial), with no finalization since the last cleanup; it names the removed deployments
 *
 * What a cleanup stamp is.
 */
typedef enum {
  STAGEHAND_CLEANUP_STAMP_KIND_LEGACY = 0,
  STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED = 1,
  STAGEHAND_CLEANUP_STAMP_KIND_NEWER = 2,
  STAGEHAND_CLEANUP_STAMP_KIND_REMOVED = 3,
} StagehandCleanupStampKind;

/**
 * StagehandFinalizeOutcome:
 * @STAGEHAND_FINALIZE_OUTCOME_STAMPED: the deployment was finalized; the cleanup stamp was written
 * @STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED: nothing was recorded before finalization (nothing was staged, or the record step did not run): nothing is known to be finalized
 * @STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED: the deployment is still staged (finalization locked, or it never ran)
 * @STAGEHAND_FINALIZE_OUTCOME_FAILED: libostree recorded a finalization failure during this shutdown
 * @STAGEHAND_FINALIZE_OUTCOME_NOT_DEPLOYED: the staged state is gone but the deployment is not a regular deployment in the bootloader configuration (finalization was interrupted, or the deployment was unstaged)
 *
 * What stagehand_record_finalized() concluded. Only
 * %STAGEHAND_FINALIZE_OUTCOME_STAMPED writes a stamp; the others are
 * outcomes, not errors.
 */
typedef enum {
  STAGEHAND_FINALIZE_OUTCOME_STAMPED = 0,
  STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED = 1,
  STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED = 2,
  STAGEHAND_FINALIZE_OUTCOME_FAILED = 3,
  STAGEHAND_FINALIZE_OUTCOME_NOT_DEPLOYED = 4,
} StagehandFinalizeOutcome;

/**
 * StagehandGuardPhase:
 * @STAGEHAND_GUARD_PHASE_STARTED: the red line was crossed and the step has not completed (yet, or ever)
 * @STAGEHAND_GUARD_PHASE_COMPLETE: the step completed
 *
 * Where a guarded step is.
 */
typedef enum {
  STAGEHAND_GUARD_PHASE_STARTED = 0,
  STAGEHAND_GUARD_PHASE_COMPLETE = 1,
} StagehandGuardPhase;

/**
 * StagehandRollbackTrigger:
 * @STAGEHAND_ROLLBACK_TRIGGER_MARK_BAD: stagehand_mark_bad() (a failing health check or an administrator)
 * @STAGEHAND_ROLLBACK_TRIGGER_ASSESS: boot assessment found that the bootloader fell back
 *
 * What made stagehand roll back (stagehand_rollback_get_trigger()).
 */
typedef enum {
  STAGEHAND_ROLLBACK_TRIGGER_MARK_BAD = 0,
  STAGEHAND_ROLLBACK_TRIGGER_ASSESS = 1,
} StagehandRollbackTrigger;

/**
 * StagehandAssessOutcome:
 * @STAGEHAND_ASSESS_OUTCOME_GOOD: the booted deployment is known good
 * @STAGEHAND_ASSESS_OUTCOME_ON_TRIAL: the booted deployment is on trial: it booted and waits for stagehand_mark_good()
 * @STAGEHAND_ASSESS_OUTCOME_BOOTED_FAILED: the booted deployment has a failure verdict (picked by hand, or the last resort)
 * @STAGEHAND_ASSESS_OUTCOME_FELL_BACK: the bootloader fell back from newer deployments that did not boot: they are failed and denylisted, the booted one is the default again
 * @STAGEHAND_ASSESS_OUTCOME_MANUAL_CHOICE: newer deployments on trial were passed over by a person's choice: nothing is marked
 * @STAGEHAND_ASSESS_OUTCOME_UNDETERMINED: newer deployments on trial were passed over without evidence why: nothing is marked
 *
 * What stagehand_assess() concluded.
 */
typedef enum {
  STAGEHAND_ASSESS_OUTCOME_GOOD = 0,
  STAGEHAND_ASSESS_OUTCOME_ON_TRIAL = 1,
  STAGEHAND_ASSESS_OUTCOME_BOOTED_FAILED = 2,
  STAGEHAND_ASSESS_OUTCOME_FELL_BACK = 3,
  STAGEHAND_ASSESS_OUTCOME_MANUAL_CHOICE = 4,
  STAGEHAND_ASSESS_OUTCOME_UNDETERMINED = 5,
} StagehandAssessOutcome;

/**
 * StagehandCounterState:
 * @STAGEHAND_COUNTER_STATE_NOT_ARMED: no counter runs for the deployment: the bootloader boots the default entry as always (never armed, blessed or disarmed)
 * @STAGEHAND_COUNTER_STATE_COUNTING: counting down: the bootloader boots the deployment while tries are left
 * @STAGEHAND_COUNTER_STATE_EXHAUSTED: the tries are used up: the bootloader boots the fallback entry by itself
 * @STAGEHAND_COUNTER_STATE_NO_COUNTER: the backend keeps no counter (`backend = none`)
 *
 * The boot counter of one deployment, as the bootloader left it
 * (stagehand_boot_assessment_query_counter()).
 */
typedef enum {
  STAGEHAND_COUNTER_STATE_NOT_ARMED = 0,
  STAGEHAND_COUNTER_STATE_COUNTING = 1,
  STAGEHAND_COUNTER_STATE_EXHAUSTED = 2,
  STAGEHAND_COUNTER_STATE_NO_COUNTER = 3,
} StagehandCounterState;

/**
 * StagehandCounterEvidence:
 * @STAGEHAND_COUNTER_EVIDENCE_NONE: no counter is armed (or there is none, or it could not be read): the bootloader says nothing
 * @STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL: the deployment on trial is booted and its counter runs
 * @STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK: the tries of the deployment on trial ran out and the bootloader booted another entry by itself: it failed to boot
 * @STAGEHAND_COUNTER_EVIDENCE_MANUAL_CHOICE: a person chose the entry; never a reason to mark anything bad
 *
 * What the boot counter said about this boot
 * (stagehand_boot_assess_result_get_counter_evidence()). It maps one to
 * one onto #StagehandBootEvidence: a fallback is a fallback, a manual
 * choice a manual choice, the rest is %STAGEHAND_BOOT_EVIDENCE_UNKNOWN.
 */
typedef enum {
  STAGEHAND_COUNTER_EVIDENCE_NONE = 0,
  STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL = 1,
  STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK = 2,
  STAGEHAND_COUNTER_EVIDENCE_MANUAL_CHOICE = 3,
} StagehandCounterEvidence;

/**
 * StagehandHookOrigin:
 * @STAGEHAND_HOOK_ORIGIN_VENDOR: shipped in the new deployment, `/usr/lib/stagehand/pre-upgrade.d/`
 * @STAGEHAND_HOOK_ORIGIN_ADMIN: installed by the local administrator, `/etc/stagehand/pre-upgrade.d/` of the booted system
 *
 * Who shipped a hook.
 */
typedef enum {
  STAGEHAND_HOOK_ORIGIN_VENDOR = 0,
  STAGEHAND_HOOK_ORIGIN_ADMIN = 1,
} StagehandHookOrigin;

/**
 * StagehandHookEnd:
 * @STAGEHAND_HOOK_END_PASSED: it exited with status 0
 * @STAGEHAND_HOOK_END_EXITED: it exited with a non-zero status (stagehand_hook_run_get_exit_status())
 * @STAGEHAND_HOOK_END_SIGNALED: it was killed by a signal (stagehand_hook_run_get_signal())
 * @STAGEHAND_HOOK_END_TIMED_OUT: it ran past its timeout; its whole process tree was killed
 * @STAGEHAND_HOOK_END_SPAWN_FAILED: it could not be started at all
 *
 * How a hook ended; every value but %STAGEHAND_HOOK_END_PASSED is a veto.
 */
typedef enum {
  STAGEHAND_HOOK_END_PASSED = 0,
  STAGEHAND_HOOK_END_EXITED = 1,
  STAGEHAND_HOOK_END_SIGNALED = 2,
  STAGEHAND_HOOK_END_TIMED_OUT = 3,
  STAGEHAND_HOOK_END_SPAWN_FAILED = 4,
} StagehandHookEnd;

/**
 * StagehandError:
 * @STAGEHAND_ERROR_FAILED: libostree or GLib failed in a way that has no code of its own; the message says what stagehand was doing
 * @STAGEHAND_ERROR_INVALID_ARGUMENT: a value that can never be valid (a bad stateroot name, a malformed deployment identity)
 * @STAGEHAND_ERROR_CANCELLED: the #GCancellable was triggered (stagehand reports cancellation in its own domain, not as %G_IO_ERROR_CANCELLED)
 * @STAGEHAND_ERROR_IO: a file operation failed (permissions, missing directory, I/O error, full disk); the message names the file
 * @STAGEHAND_ERROR_LOCKED: the sysroot lock was still held by another process when the timeout ran out
 * @STAGEHAND_ERROR_NOT_BOOTED: the operation needs a system booted into an ostree deployment
 * @STAGEHAND_ERROR_READ_ONLY: the sysroot, `/boot` or a state directory is read-only
 * @STAGEHAND_ERROR_UNKNOWN_REVISION: the ref or checksum is not (fully) in the sysroot repository
 * @STAGEHAND_ERROR_UNKNOWN_STATEROOT: the stateroot does not exist (`ostree admin os-init` creates one)
 * @STAGEHAND_ERROR_NOT_BOOTABLE: the commit has no kernel where libostree looks for one
 * @STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT: no deployment has the given identity
 * @STAGEHAND_ERROR_HOOK_VETOED: a pre-upgrade hook refused the update; the message has its exit status, signal or timeout and the tail of its output
 * @STAGEHAND_ERROR_HOOK_INVALID: a pre-upgrade hook file is not acceptable (type, owner, permissions, symlink)
 * @STAGEHAND_ERROR_DENYLISTED: the commit failed before and is on the denylist
 * @STAGEHAND_ERROR_CORRUPT: a state file stagehand owns is torn, garbage or inconsistent
 * @STAGEHAND_ERROR_INTERRUPTED: a guarded step was started and never completed
 * @STAGEHAND_ERROR_ALREADY_COMPLETE: a guarded step already completed with the same configuration
 * @STAGEHAND_ERROR_CONFIG_CHANGED: a guarded step completed with a different configuration
 * @STAGEHAND_ERROR_NO_KNOWN_GOOD: no known-good deployment is left to roll back to
 * @STAGEHAND_ERROR_CONFIG: the configuration file has an error; the message names the line
 * @STAGEHAND_ERROR_UNSUPPORTED: the running libostree, bootloader or system cannot do this
 * @STAGEHAND_ERROR_NOT_LOCKED: the function needs the sysroot lock held by the caller (ostree_sysroot_lock()) and nobody holds it; a bug of the caller, not contention: retrying does not help
 *
 * Error codes in the %STAGEHAND_ERROR domain. Each is one kind of failure,
 * the same numbers as the Rust crate's `stagehand::ErrorCode` and `10 + code`
 * as the exit status of the `stagehand` command. The numbers are stable ABI:
 * new codes are only ever added at the end, so treat unknown codes like
 * %STAGEHAND_ERROR_FAILED.
 */
typedef enum {
  STAGEHAND_ERROR_FAILED = 0,
  STAGEHAND_ERROR_INVALID_ARGUMENT = 1,
  STAGEHAND_ERROR_CANCELLED = 2,
  STAGEHAND_ERROR_IO = 3,
  STAGEHAND_ERROR_LOCKED = 4,
  STAGEHAND_ERROR_NOT_BOOTED = 5,
  STAGEHAND_ERROR_READ_ONLY = 6,
  STAGEHAND_ERROR_UNKNOWN_REVISION = 7,
  STAGEHAND_ERROR_UNKNOWN_STATEROOT = 8,
  STAGEHAND_ERROR_NOT_BOOTABLE = 9,
  STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT = 10,
  STAGEHAND_ERROR_HOOK_VETOED = 11,
  STAGEHAND_ERROR_HOOK_INVALID = 12,
  STAGEHAND_ERROR_DENYLISTED = 13,
  STAGEHAND_ERROR_CORRUPT = 14,
  STAGEHAND_ERROR_INTERRUPTED = 15,
  STAGEHAND_ERROR_ALREADY_COMPLETE = 16,
  STAGEHAND_ERROR_CONFIG_CHANGED = 17,
  STAGEHAND_ERROR_NO_KNOWN_GOOD = 18,
  STAGEHAND_ERROR_CONFIG = 19,
  STAGEHAND_ERROR_UNSUPPORTED = 20,
  STAGEHAND_ERROR_NOT_LOCKED = 21,
} StagehandError;

/**
 * StagehandBootEvidence:
 * @STAGEHAND_BOOT_EVIDENCE_UNKNOWN: nothing is known about how the entry was chosen: nothing is marked (conservative)
 * @STAGEHAND_BOOT_EVIDENCE_FALLBACK: the bootloader fell back because the default entry's tries ran out
 * @STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE: a person picked the entry in the boot menu
 *
 * What the bootloader knows about this boot, for stagehand_assess() (which
 * takes it as a #guint).
 */
typedef enum {
  STAGEHAND_BOOT_EVIDENCE_UNKNOWN = 0,
  STAGEHAND_BOOT_EVIDENCE_FALLBACK = 1,
  STAGEHAND_BOOT_EVIDENCE_MANUAL_CHOICE = 2,
} StagehandBootEvidence;

/**
 * StagehandArmResult:
 *
 * What stagehand_boot_assessment_arm_finalized() did; freed with
 * stagehand_arm_result_free() (or `g_autoptr(StagehandArmResult)`).
 */
typedef struct StagehandArmResult StagehandArmResult;

/**
 * StagehandBootAssessResult:
 *
 * What stagehand_boot_assessment_assess() did; freed with
 * stagehand_boot_assess_result_free() (or `g_autoptr(StagehandBootAssessResult)`).
 */
typedef struct StagehandBootAssessResult StagehandBootAssessResult;

/**
 * StagehandBootAssessment:
 *
 * The configuration file and the boot counter it selects for one sysroot
 * (stagehand_boot_assessment_new()); freed with
 * stagehand_boot_assessment_free() (or `g_autoptr(StagehandBootAssessment)`).
 * It keeps no reference to the sysroot: every function takes the caller's
 * sysroot again, which must be the one it was made for.
 */
typedef struct StagehandBootAssessment StagehandBootAssessment;

/**
 * StagehandBootDeadlineResult:
 *
 * What stagehand_boot_assessment_deadline() concluded; freed with
 * stagehand_boot_deadline_result_free() (or
 * `g_autoptr(StagehandBootDeadlineResult)`).
 */
typedef struct StagehandBootDeadlineResult StagehandBootDeadlineResult;

/**
 * StagehandBootMarkBadResult:
 *
 * What stagehand_boot_assessment_mark_bad() (or a missed deadline) did;
 * freed with stagehand_boot_mark_bad_result_free() (or
 * `g_autoptr(StagehandBootMarkBadResult)`).
 */
typedef struct StagehandBootMarkBadResult StagehandBootMarkBadResult;

/**
 * StagehandBootMarkGoodResult:
 *
 * What stagehand_boot_assessment_mark_good() did; freed with
 * stagehand_boot_mark_good_result_free() (or
 * `g_autoptr(StagehandBootMarkGoodResult)`).
 */
typedef struct StagehandBootMarkGoodResult StagehandBootMarkGoodResult;

/**
 * StagehandCleanupOptions:
 *
 * How stagehand_autocleanup() runs: an opaque builder, so that new options
 * never break the ABI. Create it with stagehand_cleanup_options_new(),
 * change it with the `stagehand_cleanup_options_set_*()` functions, free it
 * with stagehand_cleanup_options_free() (or
 * `g_autoptr(StagehandCleanupOptions)`).
 */
typedef struct StagehandCleanupOptions StagehandCleanupOptions;

/**
 * StagehandCleanupReport:
 *
 * What stagehand_autocleanup() or stagehand_run_cleanup() did: an opaque
 * object read with the `stagehand_cleanup_report_get_*()` functions and
 * freed with stagehand_cleanup_report_free() (or
 * `g_autoptr(StagehandCleanupReport)`).
 */
typedef struct StagehandCleanupReport StagehandCleanupReport;

/**
 * StagehandCleanupStamp:
 *
 * What a cleanup stamp (`/sysroot/.cleanup`) says, from
 * stagehand_pending_cleanup() (freed with stagehand_cleanup_stamp_free() or
 * `g_autoptr(StagehandCleanupStamp)`), or owned by a #StagehandCleanupReport.
 * It does not change when the file does.
 */
typedef struct StagehandCleanupStamp StagehandCleanupStamp;

/**
 * StagehandDenylist:
 *
 * The denylist as stagehand_denylist_list() read it, oldest entry first;
 * freed with stagehand_denylist_free() (or `g_autoptr(StagehandDenylist)`).
 */
typedef struct StagehandDenylist StagehandDenylist;

/**
 * StagehandDenylistEntry:
 *
 * A commit that failed: staging it again fails with
 * %STAGEHAND_ERROR_DENYLISTED unless allowed explicitly
 * (stagehand_stage_options_set_allow_denylisted()). Owned by the
 * #StagehandStatus or #StagehandDenylist it came from; the one
 * stagehand_denylist_remove() returns is the caller's, freed with
 * stagehand_denylist_entry_free().
 */
typedef struct StagehandDenylistEntry StagehandDenylistEntry;

/**
 * StagehandDeploymentStatus:
 *
 * One deployment in a #StagehandStatus, read with the
 * `stagehand_deployment_status_get_*()` functions. It belongs to the
 * #StagehandStatus it came from and is valid as long as that is.
 */
typedef struct StagehandDeploymentStatus StagehandDeploymentStatus;

/**
 * StagehandFinalizeResult:
 *
 * What stagehand_record_finalized() concluded: an opaque object read with
 * the `stagehand_finalize_result_get_*()` functions and freed with
 * stagehand_finalize_result_free() (or `g_autoptr(StagehandFinalizeResult)`).
 */
typedef struct StagehandFinalizeResult StagehandFinalizeResult;

/**
 * StagehandGuardStamp:
 *
 * The record of a guarded step, from stagehand_guard_status() or
 * stagehand_guard_commit() (freed with stagehand_guard_stamp_free() or
 * `g_autoptr(StagehandGuardStamp)`), or owned by a #StagehandGuardToken. It
 * does not change when the file does.
 */
typedef struct StagehandGuardStamp StagehandGuardStamp;

/**
 * StagehandGuardToken:
 *
 * Proof that a guarded step is *started*, from stagehand_guard_begin() (this
 * process crossed the red line) or stagehand_guard_resume() (another one did):
 * what stagehand_guard_commit() takes. Freed with stagehand_guard_token_free()
 * (or `g_autoptr(StagehandGuardToken)`); freeing it does nothing to the
 * stamp, on purpose: a step that is not committed stays started, which is
 * what makes the next begin fail with %STAGEHAND_ERROR_INTERRUPTED.
 */
typedef struct StagehandGuardToken StagehandGuardToken;

/**
 * StagehandHealthOptions:
 *
 * How stagehand_mark_good(), stagehand_mark_bad() and stagehand_assess()
 * treat retention: an opaque builder (stagehand_health_options_new(), the
 * setters, stagehand_health_options_free() or
 * `g_autoptr(StagehandHealthOptions)`). Those functions take %NULL for the
 * defaults. Staging takes the same option through
 * stagehand_stage_options_set_keep_known_good().
 */
typedef struct StagehandHealthOptions StagehandHealthOptions;

/**
 * StagehandHookReport:
 *
 * What stagehand_hooks_check() found: every hook that applies to the
 * revision, in the order they ran; freed with stagehand_hook_report_free()
 * (or `g_autoptr(StagehandHookReport)`).
 */
typedef struct StagehandHookReport StagehandHookReport;

/**
 * StagehandHookRun:
 *
 * How one hook ran in stagehand_hooks_check(); owned by its
 * #StagehandHookReport.
 */
typedef struct StagehandHookRun StagehandHookRun;

/**
 * StagehandMarkBadResult:
 *
 * What stagehand_mark_bad() did; freed with stagehand_mark_bad_result_free()
 * (or `g_autoptr(StagehandMarkBadResult)`).
 */
typedef struct StagehandMarkBadResult StagehandMarkBadResult;

/**
 * StagehandMarkGoodResult:
 *
 * What stagehand_mark_good() did; freed with stagehand_mark_good_result_free()
 * (or `g_autoptr(StagehandMarkGoodResult)`).
 */
typedef struct StagehandMarkGoodResult StagehandMarkGoodResult;

/**
 * StagehandRollback:
 *
 * A rollback stagehand made, recorded in the same write as the verdict
 * (stagehand_status_get_last_rollback()). Owned by its #StagehandStatus.
 */
typedef struct StagehandRollback StagehandRollback;

/**
 * StagehandStageOptions:
 *
 * What stagehand_stage() stages: an opaque builder, so that new options never
 * break the ABI. Create it with stagehand_stage_options_new(), change it with
 * the `stagehand_stage_options_set_*()` functions, free it with
 * stagehand_stage_options_free() (or `g_autoptr(StagehandStageOptions)`).
 * Not thread-safe: use one from one thread at a time.
 */
typedef struct StagehandStageOptions StagehandStageOptions;

/**
 * StagehandStageResult:
 *
 * What stagehand_stage() did: an opaque object read with the
 * `stagehand_stage_result_get_*()` functions and freed with
 * stagehand_stage_result_free() (or `g_autoptr(StagehandStageResult)`).
 */
typedef struct StagehandStageResult StagehandStageResult;

/**
 * StagehandStatus:
 *
 * A snapshot of the sysroot as stagehand sees it, from stagehand_status():
 * an opaque object read with its getters and freed with
 * stagehand_status_free() (or `g_autoptr(StagehandStatus)`). It does not
 * change when the sysroot does; take a new one.
 */
typedef struct StagehandStatus StagehandStatus;

/**
 * StagehandVerdict:
 *
 * What stagehand_assess() concluded; freed with stagehand_verdict_free() (or
 * `g_autoptr(StagehandVerdict)`).
 */
typedef struct StagehandVerdict StagehandVerdict;

/**
 * stagehand_error_quark:
 *
 * The error domain of stagehand, %STAGEHAND_ERROR. Its codes are
 * #StagehandError.
 *
 * Returns: the #GQuark `stagehand-error-quark`
 */
GQuark stagehand_error_quark(void);

/**
 * stagehand_sysroot_lock:
 * @sysroot: a #OstreeSysroot
 * @timeout_ms: how long to wait, in milliseconds, while another process holds the lock
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Take the sysroot lock (the same lock as ostree_sysroot_lock(), `ostree
 * admin` and rpm-ostree take), waiting up to @timeout_ms while another
 * process holds it, then reload @sysroot if another process changed it in
 * the meantime, so that what follows decides on the current deployment list.
 *
 * Unlike ostree_sysroot_lock(), which waits forever, this fails with
 * %STAGEHAND_ERROR_LOCKED when the timeout runs out, and with
 * %STAGEHAND_ERROR_CANCELLED when @cancellable is triggered while waiting.
 * On success the caller holds the lock and releases it with
 * ostree_sysroot_unlock(), exactly as if it had called ostree_sysroot_lock().
 *
 * Taking the lock with ostree_sysroot_lock() instead is just as good for
 * every function of this library.
 *
 * Returns: %TRUE with the lock held, %FALSE with @error set
 */
gboolean stagehand_sysroot_lock(OstreeSysroot *sysroot,
                                guint timeout_ms,
                                GCancellable *cancellable,
                                GError **error);

/**
 * stagehand_stage_options_new:
 * @revision: the ref or commit checksum to stage, in the sysroot repository
 *
 * Start the options of a stagehand_stage() call. The defaults: the booted
 * stateroot (not booted: the default deployment's), the kernel arguments of
 * the merge deployment, the origin refspec @revision when it is a ref (for a
 * checksum: the merge deployment's origin, so later upgrades keep following
 * the same ref), finalization unlocked afterwards, pre-upgrade hooks on.
 *
 * Returns: (transfer full): new options; free with stagehand_stage_options_free()
 */
StagehandStageOptions *stagehand_stage_options_new(const char *revision);

/**
 * stagehand_stage_options_free:
 * @options: (nullable) (transfer full): options from stagehand_stage_options_new()
 *
 * Free @options. %NULL is ignored.
 */
void stagehand_stage_options_free(StagehandStageOptions *options);

/**
 * stagehand_stage_options_set_stateroot:
 * @options: a #StagehandStageOptions
 * @stateroot: (nullable): the stateroot (ostree's "osname") to deploy into, or %NULL for the default
 *
 * Deploy into @stateroot instead of the booted one. The stateroot must exist
 * (`ostree admin os-init`); stagehand_stage() fails with
 * %STAGEHAND_ERROR_UNKNOWN_STATEROOT otherwise.
 */
void stagehand_stage_options_set_stateroot(StagehandStageOptions *options,
                                           const char *stateroot);

/**
 * stagehand_stage_options_set_origin_refspec:
 * @options: a #StagehandStageOptions
 * @refspec: (nullable): the refspec to write into the new deployment's origin file, or %NULL for the default
 *
 * The refspec later upgrades follow (`remote:ref` or `ref`). By default it is
 * the revision when that is a ref, or the merge deployment's origin when the
 * revision is a checksum.
 */
void stagehand_stage_options_set_origin_refspec(StagehandStageOptions *options,
                                                const char *refspec);

/**
 * stagehand_stage_options_set_kargs_append:
 * @options: a #StagehandStageOptions
 * @kargs: (nullable) (array zero-terminated=1): kernel arguments such as `"quiet"` or `"console=ttyS0"`, or %NULL
 *
 * Use the merge deployment's kernel arguments, then @kargs: a `key=value`
 * here replaces an inherited `key=...`. %NULL or an empty array inherits the
 * arguments unchanged (the default).
 */
void stagehand_stage_options_set_kargs_append(StagehandStageOptions *options,
                                              const char *const *kargs);

/**
 * stagehand_stage_options_set_kargs_replace:
 * @options: a #StagehandStageOptions
 * @kargs: (array zero-terminated=1): the kernel arguments, exactly; an empty array for none
 *
 * Do not inherit kernel arguments: the new deployment gets exactly @kargs.
 */
void stagehand_stage_options_set_kargs_replace(StagehandStageOptions *options,
                                               const char *const *kargs);

/**
 * stagehand_stage_options_set_lock_finalization:
 * @options: a #StagehandStageOptions
 * @lock: whether finalization stays locked after staging
 *
 * With %TRUE the staged deployment stays staged across shutdowns (finalize
 * leaves it alone) until stagehand_unlock_finalization() is called: for
 * agents that download and stage early but let a person or a maintenance
 * window decide when the update takes effect. Default: %FALSE.
 */
void stagehand_stage_options_set_lock_finalization(StagehandStageOptions *options,
                                                   gboolean lock);

/**
 * stagehand_stage_options_set_hooks_enabled:
 * @options: a #StagehandStageOptions
 * @enabled: whether pre-upgrade hooks run
 *
 * Turn the pre-upgrade hooks shipped in the new deployment on (the default)
 * or off. Turning them off is for administrators who know why; it is logged.
 */
void stagehand_stage_options_set_hooks_enabled(StagehandStageOptions *options,
                                               gboolean enabled);

/**
 * stagehand_stage_options_set_hook_timeout:
 * @options: a #StagehandStageOptions
 * @timeout_seconds: how long one pre-upgrade hook may run, in seconds (more than 0)
 *
 * A hook still running after @timeout_seconds is killed with its whole
 * process tree and counts as a veto. Default: 300 seconds.
 */
void stagehand_stage_options_set_hook_timeout(StagehandStageOptions *options,
                                              guint timeout_seconds);

/**
 * stagehand_stage_options_set_allow_denylisted:
 * @options: a #StagehandStageOptions
 * @allow: whether a denylisted commit may be staged
 *
 * A commit that failed before (marked bad, or fallen back from at boot) is on
 * the denylist, and staging it again fails with
 * %STAGEHAND_ERROR_DENYLISTED before anything is written, so an update agent
 * does not retry a bad update by itself ("flapping"). %TRUE overrides that
 * for a person's deliberate retry: the deployment starts a new trial, and
 * stagehand_mark_good() on it takes the commit off the denylist. Default
 * %FALSE.
 */
void stagehand_stage_options_set_allow_denylisted(StagehandStageOptions *options,
                                                  gboolean allow);

/**
 * stagehand_stage_options_set_keep_known_good:
 * @options: a #StagehandStageOptions
 * @keep: whether to keep two known-good deployments during the trial
 *
 * While the new deployment is on trial, stagehand pins the two newest
 * known-good deployments so that finalization and cleanup cannot drop them
 * (the default, %TRUE): if the new one fails and the previous one turns out
 * bad too, a good one is left. It costs one more deployment (and possibly
 * one more kernel in `/boot`) during the trial. %FALSE releases the pins
 * stagehand holds and keeps libostree's usual two deployments.
 */
void stagehand_stage_options_set_keep_known_good(StagehandStageOptions *options,
                                                 gboolean keep);

/**
 * stagehand_stage:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @options: what to stage
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Stage the revision of @options: on a booted system the new deployment is
 * staged and `ostree-finalize-staged.service` finalizes it at shutdown, so
 * changes made to `/etc` until then are kept; on a sysroot that is not the
 * booted one (image builds) it is deployed fully at once. Pre-upgrade hooks
 * run before it may take effect (finalization stays locked while they run),
 * and a veto removes it again.
 *
 * Before anything is written, the revision must resolve to a complete,
 * bootable commit, the stateroot must exist and the sysroot must be
 * writable; each failure has its own code (%STAGEHAND_ERROR_UNKNOWN_REVISION,
 * %STAGEHAND_ERROR_NOT_BOOTABLE, %STAGEHAND_ERROR_UNKNOWN_STATEROOT,
 * %STAGEHAND_ERROR_READ_ONLY, ...) and leaves the disk as it was. Staging the
 * same commit with the same kernel arguments again writes nothing
 * (stagehand_stage_result_get_unchanged() is %TRUE).
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock() or
 * stagehand_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written. @sysroot is reloaded first if another process
 * changed it since it was loaded, and is reloaded afterwards.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_stage_result_free()
 */
StagehandStageResult *stagehand_stage(OstreeSysroot *sysroot,
                                      const StagehandStageOptions *options,
                                      GCancellable *cancellable,
                                      GError **error);

/**
 * stagehand_stage_result_free:
 * @result: (nullable) (transfer full): a result from stagehand_stage()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_stage_result_free(StagehandStageResult *result);

/**
 * stagehand_stage_result_get_stateroot:
 * @result: a #StagehandStageResult
 *
 * Returns: (transfer none): the stateroot of the new deployment, owned by @result
 */
const char *stagehand_stage_result_get_stateroot(const StagehandStageResult *result);

/**
 * stagehand_stage_result_get_checksum:
 * @result: a #StagehandStageResult
 *
 * Returns: (transfer none): the commit checksum of the new deployment, owned by @result
 */
const char *stagehand_stage_result_get_checksum(const StagehandStageResult *result);

/**
 * stagehand_stage_result_get_serial:
 * @result: a #StagehandStageResult
 *
 * Returns: the deployment serial of the new deployment (which tells apart deployments of one commit)
 */
guint stagehand_stage_result_get_serial(const StagehandStageResult *result);

/**
 * stagehand_stage_result_dup_id:
 * @result: a #StagehandStageResult
 *
 * The stable identity of the new deployment, `stateroot:checksum.serial`:
 * unlike an index into the deployment list, it names the same deployment for
 * its whole life. Other stagehand functions take it where they need a
 * deployment.
 *
 * Returns: (transfer full): the identity; free with g_free()
 */
char *stagehand_stage_result_dup_id(const StagehandStageResult *result);

/**
 * stagehand_stage_result_get_method:
 * @result: a #StagehandStageResult
 *
 * Returns: whether the deployment was staged or deployed fully
 */
StagehandStageMethod stagehand_stage_result_get_method(const StagehandStageResult *result);

/**
 * stagehand_stage_result_get_unchanged:
 * @result: a #StagehandStageResult
 *
 * Returns: %TRUE when the same commit with the same kernel arguments was
 *   already staged (not booted: already the default deployment), so nothing
 *   was written
 */
gboolean stagehand_stage_result_get_unchanged(const StagehandStageResult *result);

/**
 * stagehand_stage_result_get_finalization_locked:
 * @result: a #StagehandStageResult
 *
 * Returns: whether finalization of the staged deployment was locked when
 *   stagehand_stage() returned
 */
gboolean stagehand_stage_result_get_finalization_locked(const StagehandStageResult *result);

/**
 * stagehand_unstage:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @out_unstaged_id: (out) (optional) (nullable) (transfer full): return location for the identity (`stateroot:checksum.serial`) of the removed deployment, %NULL when nothing was staged; free with g_free()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Remove the staged deployment, and the finalization lock with it; the
 * booted and rollback deployments are untouched. Nothing staged is not an
 * error (a stray finalization lock is still removed).
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 * @sysroot is reloaded first if another process changed it, and is reloaded
 * afterwards.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_unstage(OstreeSysroot *sysroot,
                           char **out_unstaged_id,
                           GCancellable *cancellable,
                           GError **error);

/**
 * stagehand_lock_finalization:
 * @sysroot: a loaded #OstreeSysroot, which must be the booted one
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Lock finalization: until stagehand_unlock_finalization() (or a reboot:
 * the lock lives in `/run`, as libostree expects), shutting down leaves the
 * staged deployment staged instead of making it the default. Locking before
 * anything is staged is allowed: the next staged deployment is then held.
 * Fails with %STAGEHAND_ERROR_NOT_BOOTED when @sysroot is not the booted
 * system's. The sysroot lock is not needed.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_lock_finalization(OstreeSysroot *sysroot,
                                     GCancellable *cancellable,
                                     GError **error);

/**
 * stagehand_unlock_finalization:
 * @sysroot: a loaded #OstreeSysroot
 * @out_was_locked: (out) (optional): return location for whether finalization was locked
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Unlock finalization: the staged deployment (if any) is finalized at the
 * next shutdown. Unlocking what is not locked is not an error. The sysroot
 * lock is not needed.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_unlock_finalization(OstreeSysroot *sysroot,
                                       gboolean *out_was_locked,
                                       GCancellable *cancellable,
                                       GError **error);

/**
 * stagehand_is_finalization_locked:
 * @sysroot: a loaded #OstreeSysroot
 *
 * Whether finalization of the staged deployment is locked, by
 * stagehand_lock_finalization(), a stagehand_stage() with
 * stagehand_stage_options_set_lock_finalization(), or any other tool that
 * uses libostree's lock file.
 *
 * Returns: %TRUE when finalization is locked
 */
gboolean stagehand_is_finalization_locked(OstreeSysroot *sysroot);

/**
 * stagehand_status:
 * @sysroot: a loaded #OstreeSysroot
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Read the deployments (the staged one first, then in boot order) with
 * stagehand's state for each. Read-only: the sysroot lock is not needed.
 * @sysroot is reloaded first if another process changed it.
 *
 * Returns: (transfer full) (nullable): the status, or %NULL with @error set; free with stagehand_status_free()
 */
StagehandStatus *stagehand_status(OstreeSysroot *sysroot,
                                  GCancellable *cancellable,
                                  GError **error);

/**
 * stagehand_status_free:
 * @status: (nullable) (transfer full): a status from stagehand_status()
 *
 * Free @status and the #StagehandDeploymentStatus it holds. %NULL is ignored.
 */
void stagehand_status_free(StagehandStatus *status);

/**
 * stagehand_status_get_n_deployments:
 * @status: a #StagehandStatus
 *
 * Returns: the number of deployments, staged one included
 */
guint stagehand_status_get_n_deployments(const StagehandStatus *status);

/**
 * stagehand_status_get_deployment:
 * @status: a #StagehandStatus
 * @index: a position, less than stagehand_status_get_n_deployments()
 *
 * The deployment at @index: 0 is the staged deployment if there is one,
 * else the default; the rest follow in boot order.
 *
 * Returns: (transfer none): the deployment, owned by @status
 */
const StagehandDeploymentStatus *stagehand_status_get_deployment(const StagehandStatus *status,
                                                                 guint index);

/**
 * stagehand_status_get_cleanup_pending:
 * @status: a #StagehandStatus
 *
 * Whether a cleanup stamp is present (a finalization happened and nothing
 * has pruned after it yet). %TRUE also for a stamp that cannot be read:
 * stagehand_pending_cleanup() says what it holds, or why it is corrupt.
 *
 * Returns: %TRUE when a cleanup is pending
 */
gboolean stagehand_status_get_cleanup_pending(const StagehandStatus *status);

/**
 * stagehand_status_get_retention_pending:
 * @status: a #StagehandStatus
 *
 * Whether a trial has ended but stagehand still holds its retention pins,
 * or a release an interrupted run left half done is to be finished:
 * releasing them (and removing the deployment only they kept) is
 * housekeeping that stagehand_mark_good() and stagehand_assess() leave to
 * the next stagehand_autocleanup() or stagehand_run_cleanup() (or staging),
 * whose report names what it released. The same as
 * stagehand_mark_good_result_get_retention_pending() and
 * stagehand_verdict_get_retention_pending(), read without the lock: a
 * daemon that ships no systemd units can check it when it starts. %FALSE
 * when the health store cannot be read (stagehand_status_get_health_error()).
 *
 * Returns: %TRUE when retention housekeeping is pending
 */
gboolean stagehand_status_get_retention_pending(const StagehandStatus *status);

/**
 * stagehand_deployment_status_get_stateroot:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer none): the stateroot (ostree's "osname")
 */
const char *stagehand_deployment_status_get_stateroot(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_checksum:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer none): the commit checksum
 */
const char *stagehand_deployment_status_get_checksum(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_serial:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: the deployment serial
 */
guint stagehand_deployment_status_get_serial(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_dup_id:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer full): the stable identity, `stateroot:checksum.serial`; free with g_free()
 */
char *stagehand_deployment_status_dup_id(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_version:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer none) (nullable): the commit's `version` metadata, or %NULL when it has none
 */
const char *stagehand_deployment_status_get_version(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_booted:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether this is the running deployment
 */
gboolean stagehand_deployment_status_get_booted(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_staged:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether this deployment is staged (finalized at shutdown)
 */
gboolean stagehand_deployment_status_get_staged(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_pinned:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether it is pinned (libostree never garbage-collects it)
 */
gboolean stagehand_deployment_status_get_pinned(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_finalization_locked:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether finalization is locked (only ever %TRUE for the staged deployment)
 */
gboolean stagehand_deployment_status_get_finalization_locked(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_unvetted:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether it is a staged deployment that has not (yet) passed its pre-upgrade hooks
 */
gboolean stagehand_deployment_status_get_unvetted(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_status_get_health_error:
 * @status: a #StagehandStatus
 *
 * Why the health store could not be read (it is corrupt, or of a newer
 * format); then every deployment's health reads
 * %STAGEHAND_HEALTH_STATE_UNKNOWN and the denylist is empty. Health
 * operations fail with %STAGEHAND_ERROR_CORRUPT until
 * stagehand_health_reset().
 *
 * Returns: (transfer none) (nullable): the message, owned by @status; %NULL when the store was read
 */
const char *stagehand_status_get_health_error(const StagehandStatus *status);

/**
 * stagehand_status_get_n_denylisted:
 * @status: a #StagehandStatus
 *
 * Returns: the number of commits on the denylist
 */
guint stagehand_status_get_n_denylisted(const StagehandStatus *status);

/**
 * stagehand_status_get_denylisted:
 * @status: a #StagehandStatus
 * @index: which, from 0 (oldest first)
 *
 * Returns: (transfer none): the denylist entry, owned by @status
 */
const StagehandDenylistEntry *stagehand_status_get_denylisted(const StagehandStatus *status,
                                                              guint index);

/**
 * stagehand_status_get_last_rollback:
 * @status: a #StagehandStatus
 *
 * Returns: (transfer none) (nullable): the last rollback stagehand made, owned by @status; %NULL when there was none
 */
const StagehandRollback *stagehand_status_get_last_rollback(const StagehandStatus *status);

/**
 * stagehand_deployment_status_get_health:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: its health state (%STAGEHAND_HEALTH_STATE_UNKNOWN when the store cannot be read)
 */
StagehandHealthState stagehand_deployment_status_get_health(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_attempts:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: the boots counted into it
 */
guint stagehand_deployment_status_get_attempts(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_on_trial:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether it is on trial: untested, or booted and waiting for stagehand_mark_good() (failed without a reason)
 */
gboolean stagehand_deployment_status_get_on_trial(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_health_reason:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer none) (nullable): why it failed, %NULL when it has no failure verdict, owned by @deployment
 */
const char *stagehand_deployment_status_get_health_reason(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_health_changed:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: (transfer none) (nullable): when its health last changed (RFC 3339 UTC), %NULL without a record, owned by @deployment
 */
const char *stagehand_deployment_status_get_health_changed(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_deployment_status_get_pinned_by_stagehand:
 * @deployment: a #StagehandDeploymentStatus
 *
 * Returns: whether stagehand pinned it to keep two known-good deployments during a trial (and will release it when the trial ends)
 */
gboolean stagehand_deployment_status_get_pinned_by_stagehand(const StagehandDeploymentStatus *deployment);

/**
 * stagehand_dup_cleanup_stamp_path:
 * @sysroot: a #OstreeSysroot (it need not be loaded)
 *
 * The cleanup stamp of @sysroot: `.cleanup` in the physical sysroot, so
 * `/sysroot/.cleanup` for the booted system's `/`. The path eos-updater's
 * units use too.
 *
 * Returns: (transfer full) (type filename): the path; free with g_free()
 */
char *stagehand_dup_cleanup_stamp_path(OstreeSysroot *sysroot);

/**
 * stagehand_pending_cleanup:
 * @sysroot: a #OstreeSysroot (it need not be loaded)
 * @out_stamp: (out) (transfer full) (nullable): return location for the stamp, set to %NULL when no cleanup is pending; free with stagehand_cleanup_stamp_free()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Whether a cleanup is pending (a finalization happened and nothing has
 * pruned after it yet), and what the stamp says. One file read: no sysroot
 * lock, no sysroot I/O. An empty stamp is
 * %STAGEHAND_CLEANUP_STAMP_KIND_LEGACY. A stamp that cannot be read or
 * parsed fails with %STAGEHAND_ERROR_CORRUPT, naming the file and what is
 * wrong; it is left in place (stagehand_cleanup_options_set_force() cleans
 * up and removes it).
 *
 * Returns: %TRUE on success (with *@out_stamp %NULL when nothing is pending), %FALSE with @error set
 */
gboolean stagehand_pending_cleanup(OstreeSysroot *sysroot,
                                   StagehandCleanupStamp **out_stamp,
                                   GCancellable *cancellable,
                                   GError **error);

/**
 * stagehand_cleanup_stamp_free:
 * @stamp: (nullable) (transfer full): a stamp from stagehand_pending_cleanup()
 *
 * Free @stamp. %NULL is ignored. Never call it on the stamp a
 * #StagehandCleanupReport owns.
 */
void stagehand_cleanup_stamp_free(StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_kind:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: what kind of stamp it is
 */
StagehandCleanupStampKind stagehand_cleanup_stamp_get_kind(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_deployment:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: (transfer none) (nullable): the identity (`stateroot:checksum.serial`) of the deployment whose finalization wrote the stamp; %NULL unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
 */
const char *stagehand_cleanup_stamp_get_deployment(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_dropped:
 * @stamp: a #StagehandCleanupStamp
 *
 * The deployments the finalization dropped from the bootloader
 * configuration (and earlier pending finalizations, merged): the objects
 * only they used are what the cleanup frees.
 *
 * Returns: (transfer none) (array zero-terminated=1): their identities, owned by @stamp; empty unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
 */
const char *const *stagehand_cleanup_stamp_get_dropped(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_removed:
 * @stamp: a #StagehandCleanupStamp
 *
 * The deployments stagehand removed from the deployment list itself (a
 * deployment only its known-good pin kept, at the end of a trial): the
 * objects only they used are what the cleanup frees, too.
 *
 * Returns: (transfer none) (array zero-terminated=1): their identities, owned by @stamp; empty when there are none
 */
const char *const *stagehand_cleanup_stamp_get_removed(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_removed_at:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: (transfer none) (nullable): when stagehand last removed a deployment it names, RFC 3339 UTC; %NULL when it removed none
 */
const char *stagehand_cleanup_stamp_get_removed_at(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_finalized_at:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: (transfer none) (nullable): when the stamp was written, RFC 3339 UTC (`2024-05-01T10:00:00Z`, g_date_time_new_from_iso8601() reads it); %NULL unless the kind is %STAGEHAND_CLEANUP_STAMP_KIND_FINALIZED
 */
const char *stagehand_cleanup_stamp_get_finalized_at(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_boot_id:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: (transfer none) (nullable): the boot (`/proc/sys/kernel/random/boot_id`) during whose shutdown the finalization happened, or %NULL when the stamp does not say
 */
const char *stagehand_cleanup_stamp_get_boot_id(const StagehandCleanupStamp *stamp);

/**
 * stagehand_cleanup_stamp_get_format_version:
 * @stamp: a #StagehandCleanupStamp
 *
 * Returns: the format version found in a %STAGEHAND_CLEANUP_STAMP_KIND_NEWER stamp; 0 for the other kinds
 */
guint stagehand_cleanup_stamp_get_format_version(const StagehandCleanupStamp *stamp);

/**
 * stagehand_record_staged:
 * @sysroot: a loaded #OstreeSysroot, which must be the booted one
 * @out_staged_id: (out) (optional) (nullable) (transfer full): return location for the identity of the staged deployment that was recorded, %NULL when nothing is staged; free with g_free()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The first shutdown step, just *before* `ostree admin finalize-staged`
 * (which unlinks the staged state first thing, after which nobody can tell
 * what was staged): record the staged deployment, the deployment list and
 * the state of libostree's failure stamp in `/run/stagehand/finalize-record`.
 * Nothing staged is not an error: a stale record is removed, and
 * *@out_staged_id is %NULL.
 *
 * `stagehand-finalize-record.service` runs this step (`stagehand
 * finalize-stamp --record`); an agent that drives its own shutdown calls it
 * instead. Fails with %STAGEHAND_ERROR_NOT_BOOTED when @sysroot is not the
 * booted system's (the record in `/run` belongs to the running system).
 * The sysroot lock is not needed. @sysroot is reloaded first if another
 * process changed it.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_record_staged(OstreeSysroot *sysroot,
                                 char **out_staged_id,
                                 GCancellable *cancellable,
                                 GError **error);

/**
 * stagehand_record_finalized:
 * @sysroot: a #OstreeSysroot, the booted one, loaded and locked by the caller
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The second shutdown step, right *after* `ostree admin finalize-staged`:
 * write the cleanup stamp if, and only if, finalization demonstrably
 * happened. The evidence required: the record of stagehand_record_staged()
 * exists; libostree's failure stamp did not appear or change since; the
 * staged state file is gone; and the recorded deployment is a regular
 * deployment of the freshly loaded bootloader configuration. Anything else
 * is an outcome, not an error: no stamp is written and the result says why.
 * The record is consumed either way. A stamp still pending from an earlier
 * finalization is merged into the new one.
 *
 * After a stamp, when a deployment with a failure verdict is listed ahead
 * of a known-good one (a verdict given while the update was staged, which
 * libostree 2022.7 could not always order), the deployment list is written
 * again with failures behind the known-good ones, the default unchanged:
 * one more bootloader configuration write at shutdown, only then. A failure
 * there is logged and does not fail this call.
 *
 * The drop-in for `ostree-finalize-staged.service` runs this step
 * (`stagehand finalize-stamp`). Fails with %STAGEHAND_ERROR_NOT_BOOTED when
 * @sysroot is not the booted system's, with %STAGEHAND_ERROR_CORRUPT when the
 * record cannot be read. The caller must hold the sysroot lock (which also
 * makes a read-only `/sysroot` writable for the stamp); when nobody holds it
 * this fails with %STAGEHAND_ERROR_NOT_LOCKED before anything is read or
 * written. @sysroot is reloaded.
 *
 * Returns: (transfer full) (nullable): what was concluded, or %NULL with @error set; free with stagehand_finalize_result_free()
 */
StagehandFinalizeResult *stagehand_record_finalized(OstreeSysroot *sysroot,
                                                    GCancellable *cancellable,
                                                    GError **error);

/**
 * stagehand_finalize_result_free:
 * @result: (nullable) (transfer full): a result from stagehand_record_finalized()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_finalize_result_free(StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_outcome:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: what was concluded
 */
StagehandFinalizeOutcome stagehand_finalize_result_get_outcome(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_stamped:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: whether the cleanup stamp was written (the outcome is %STAGEHAND_FINALIZE_OUTCOME_STAMPED)
 */
gboolean stagehand_finalize_result_get_stamped(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_deployment:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: (transfer none) (nullable): the identity of the deployment that was staged (and, for %STAGEHAND_FINALIZE_OUTCOME_STAMPED, finalized); %NULL for %STAGEHAND_FINALIZE_OUTCOME_NOT_RECORDED
 */
const char *stagehand_finalize_result_get_deployment(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_dropped:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: (transfer none) (array zero-terminated=1): the identities of the deployments the finalization dropped, owned by @result; empty unless the outcome is %STAGEHAND_FINALIZE_OUTCOME_STAMPED
 */
const char *const *stagehand_finalize_result_get_dropped(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_finalization_locked:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: for %STAGEHAND_FINALIZE_OUTCOME_STILL_STAGED, whether finalization is locked; %FALSE otherwise
 */
gboolean stagehand_finalize_result_get_finalization_locked(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_message:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: (transfer none) (nullable): for %STAGEHAND_FINALIZE_OUTCOME_FAILED, libostree's failure message (from `/boot/ostree/finalize-failure.stamp`); %NULL otherwise
 */
const char *stagehand_finalize_result_get_message(const StagehandFinalizeResult *result);

/**
 * stagehand_finalize_result_get_description:
 * @result: a #StagehandFinalizeResult
 *
 * Returns: (transfer none): one line for a person, as `stagehand finalize-stamp` prints and logs it (`testos:….1 was finalized; cleanup stamp written (dropped …)`)
 */
const char *stagehand_finalize_result_get_description(const StagehandFinalizeResult *result);

/**
 * stagehand_cleanup_options_new:
 *
 * Start the options of a stagehand_autocleanup() call. The defaults: wait
 * up to 30 minutes for the sysroot lock (the cleanup runs in the background
 * after boot, and an update agent may hold the lock for a whole download),
 * and act only on a readable stamp.
 *
 * Returns: (transfer full): new options; free with stagehand_cleanup_options_free()
 */
StagehandCleanupOptions *stagehand_cleanup_options_new(void);

/**
 * stagehand_cleanup_options_free:
 * @options: (nullable) (transfer full): options from stagehand_cleanup_options_new()
 *
 * Free @options. %NULL is ignored.
 */
void stagehand_cleanup_options_free(StagehandCleanupOptions *options);

/**
 * stagehand_cleanup_options_set_lock_timeout:
 * @options: a #StagehandCleanupOptions
 * @timeout_ms: how long to wait, in milliseconds, while another process holds the sysroot lock
 *
 * After @timeout_ms stagehand_autocleanup() gives up with
 * %STAGEHAND_ERROR_LOCKED and the stamp stays for the next run. 0 tries once.
 */
void stagehand_cleanup_options_set_lock_timeout(StagehandCleanupOptions *options,
                                                guint timeout_ms);

/**
 * stagehand_cleanup_options_set_force:
 * @options: a #StagehandCleanupOptions
 * @force: whether to clean up without a readable stamp
 *
 * With %TRUE the cleanup runs even without a stamp, or with one that cannot
 * be read (%STAGEHAND_ERROR_CORRUPT otherwise), and a stamp present is
 * removed after success: an administrator's override for a corrupt stamp,
 * `stagehand autocleanup --force`. Default: %FALSE.
 */
void stagehand_cleanup_options_set_force(StagehandCleanupOptions *options,
                                         gboolean force);

/**
 * stagehand_autocleanup:
 * @sysroot: a #OstreeSysroot, which the caller must not have locked
 * @options: (nullable): how to run, or %NULL for the defaults of stagehand_cleanup_options_new()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Run the pending cleanup, what `stagehand-autocleanup.service` does at
 * boot. Without a stamp and without the retention trigger that
 * stagehand_mark_good() leaves when it ends a trial (the trial's pins wait to
 * be released) this returns at once, having looked at two paths
 * (stagehand_cleanup_report_get_performed() is %FALSE). Otherwise it takes the
 * sysroot lock itself, waiting while an update agent holds it
 * (%STAGEHAND_ERROR_LOCKED after the timeout, %STAGEHAND_ERROR_CANCELLED
 * when @cancellable is triggered; the stamp stays either way), first
 * releases such pins and removes what only they kept (named in the stamp),
 * and runs libostree's full cleanup (old boot versions, undeployed checkouts,
 * deployment refs, the repository prune); once the deletions are on disk
 * (`syncfs`) it removes the stamp, durably, if it is still the one that was
 * read. Any interruption leaves the stamp, so the next run converges. A
 * stamp that cannot be read fails with %STAGEHAND_ERROR_CORRUPT and is kept,
 * unless stagehand_cleanup_options_set_force().
 *
 * The lock is released before this returns. A caller that holds it already
 * calls stagehand_run_cleanup() instead. libostree prints `Freed objects:
 * …` with g_print() during the prune; install a g_set_print_handler() if
 * stdout is not the place for it.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_cleanup_report_free()
 */
StagehandCleanupReport *stagehand_autocleanup(OstreeSysroot *sysroot,
                                              const StagehandCleanupOptions *options,
                                              GCancellable *cancellable,
                                              GError **error);

/**
 * stagehand_run_cleanup:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @force: whether to clean up without a readable stamp (see stagehand_cleanup_options_set_force())
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * stagehand_autocleanup() for a caller that holds the sysroot lock already
 * (an update agent that prunes before it pulls): the same cleanup, report
 * and stamp handling (and the retention housekeeping first), without taking
 * or releasing the lock. Without a stamp (and without @force) nothing else is
 * done. When nobody holds the sysroot lock this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written. @sysroot is
 * reloaded first if another process changed it.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_cleanup_report_free()
 */
StagehandCleanupReport *stagehand_run_cleanup(OstreeSysroot *sysroot,
                                              gboolean force,
                                              GCancellable *cancellable,
                                              GError **error);

/**
 * stagehand_cleanup_report_free:
 * @report: (nullable) (transfer full): a report from stagehand_autocleanup() or stagehand_run_cleanup()
 *
 * Free @report and the stamp it holds. %NULL is ignored.
 */
void stagehand_cleanup_report_free(StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_performed:
 * @report: a #StagehandCleanupReport
 *
 * Returns: whether a cleanup ran (%FALSE: there was no stamp, nothing was done)
 */
gboolean stagehand_cleanup_report_get_performed(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_stamp:
 * @report: a #StagehandCleanupReport
 *
 * Returns: (transfer none) (nullable): what the stamp said, owned by @report; %NULL when there was none, or it was unreadable and the cleanup was forced
 */
const StagehandCleanupStamp *stagehand_cleanup_report_get_stamp(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_deployments_removed:
 * @report: a #StagehandCleanupReport
 *
 * The deployments whose removal this cleanup completed: those the
 * finalization dropped (named in the stamp, and no longer deployed) and any
 * deployment directory this run deleted.
 *
 * Returns: (transfer none) (array zero-terminated=1): their identities, owned by @report
 */
const char *const *stagehand_cleanup_report_get_deployments_removed(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_released_pins:
 * @report: a #StagehandCleanupReport
 *
 * The pins this run released before cleaning up: those of an ended trial
 * (the retention housekeeping stagehand_mark_good() leaves to the
 * cleanup), or, during a trial, those an interrupted release left half
 * released. A deployment only they kept is among
 * stagehand_cleanup_report_get_deployments_removed().
 *
 * Returns: (transfer none) (array zero-terminated=1): their identities, owned by @report
 */
const char *const *stagehand_cleanup_report_get_released_pins(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_objects_freed:
 * @report: a #StagehandCleanupReport
 *
 * Returns: how many repository objects were deleted (measured from the repository before and after; an underestimate only if another process wrote to it meanwhile without the sysroot lock)
 */
guint64 stagehand_cleanup_report_get_objects_freed(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_bytes_freed:
 * @report: a #StagehandCleanupReport
 *
 * Returns: the size of the deleted objects in bytes (file sizes, as libostree counts them)
 */
guint64 stagehand_cleanup_report_get_bytes_freed(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_objects_remaining:
 * @report: a #StagehandCleanupReport
 *
 * Returns: how many objects the repository holds now
 */
guint64 stagehand_cleanup_report_get_objects_remaining(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_bytes_remaining:
 * @report: a #StagehandCleanupReport
 *
 * Returns: their size in bytes
 */
guint64 stagehand_cleanup_report_get_bytes_remaining(const StagehandCleanupReport *report);

/**
 * stagehand_cleanup_report_get_stamp_removed:
 * @report: a #StagehandCleanupReport
 *
 * Returns: whether the stamp was removed (%FALSE when there was none, or it changed while the cleanup ran and so describes a newer finalization, which the next run handles)
 */
gboolean stagehand_cleanup_report_get_stamp_removed(const StagehandCleanupReport *report);

/**
 * stagehand_guard_begin:
 * @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
 * @name: the step name: 1 to 128 of `A-Z a-z 0-9 - _ . @ +`, starting with a letter or digit
 * @digest: (nullable): the digest of the configuration the step applies (8 to 128 hex digits, an even number; case does not matter), for instance from stagehand_guard_file_digest(); %NULL for none, which is a value of its own
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * Cross the red line before the destructive part of step @name: write a
 * *started* stamp (`DIR/NAME.stamp`) and return only once it is durable.
 * Refusals write nothing and are errors the caller branches on:
 *
 * - %STAGEHAND_ERROR_INTERRUPTED: the step was started and never completed
 *   (in this or an earlier process, whatever its digest): the system may be
 *   half-changed, an administrator decides;
 * - %STAGEHAND_ERROR_ALREADY_COMPLETE: it completed with the same digest:
 *   skip the step;
 * - %STAGEHAND_ERROR_CONFIG_CHANGED: it completed with another digest;
 * - %STAGEHAND_ERROR_CORRUPT: the stamp cannot be trusted
 *   (%STAGEHAND_ERROR_UNSUPPORTED: a newer stagehand wrote it);
 * - %STAGEHAND_ERROR_IO: the directory is missing (stagehand never creates
 *   it: its file system is probably not mounted) or cannot be used;
 * - %STAGEHAND_ERROR_READ_ONLY: the directory is read-only;
 * - %STAGEHAND_ERROR_INVALID_ARGUMENT: a bad name or digest.
 *
 * Run the step, then stagehand_guard_commit() the token. Freeing the token
 * without committing leaves the step started. Needs no sysroot.
 *
 * Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
 */
StagehandGuardToken *stagehand_guard_begin(const char *dir,
                                           const char *name,
                                           const char *digest,
                                           GCancellable *cancellable,
                                           GError **error);

/**
 * stagehand_guard_begin_forced:
 * @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
 * @name: the step name
 * @digest: (nullable): the configuration digest, or %NULL for none
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * stagehand_guard_begin() whatever the record says (interrupted, complete
 * with any digest, corrupt): the administrator's override, for someone who
 * inspected the system and wants the step to run again. What was overridden
 * is logged and available from stagehand_guard_token_get_replaced_stamp() and
 * stagehand_guard_token_get_replaced_unreadable(). Still fails for a missing
 * or read-only directory and for a bad name or digest.
 *
 * Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
 */
StagehandGuardToken *stagehand_guard_begin_forced(const char *dir,
                                                  const char *name,
                                                  const char *digest,
                                                  GCancellable *cancellable,
                                                  GError **error);

/**
 * stagehand_guard_resume:
 * @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
 * @name: the step name
 * @digest: (nullable): the configuration digest the step was begun with, or %NULL for none
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * Get the token of a *started* step back in a process other than the one
 * that began it (begin and commit usually run in two units): the name and
 * digest must match the record. Fails with %STAGEHAND_ERROR_INVALID_ARGUMENT
 * when the step is not started (never begun, or reset),
 * %STAGEHAND_ERROR_ALREADY_COMPLETE when it completed with this digest,
 * %STAGEHAND_ERROR_CONFIG_CHANGED when the digest differs (the step ran with
 * a configuration that is no longer the one given), and as
 * stagehand_guard_status() does. Writes nothing.
 *
 * Returns: (transfer full) (nullable): the token, or %NULL with @error set; free with stagehand_guard_token_free()
 */
StagehandGuardToken *stagehand_guard_resume(const char *dir,
                                            const char *name,
                                            const char *digest,
                                            GCancellable *cancellable,
                                            GError **error);

/**
 * stagehand_guard_commit:
 * @token: a #StagehandGuardToken not committed before
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * Mark the step of @token complete; durable before it returns. The stamp
 * must still be the *started* record @token stands for: if it was reset
 * (%STAGEHAND_ERROR_INVALID_ARGUMENT), completed
 * (%STAGEHAND_ERROR_ALREADY_COMPLETE), or begun again, forced, in the
 * meantime (%STAGEHAND_ERROR_INVALID_ARGUMENT, naming both runs), nothing is
 * written.
 *
 * Whatever the outcome, @token is used up (the Rust API consumes it), and
 * committing it again is a programming error; to try again, get a new one
 * with stagehand_guard_resume(). @token itself stays valid until freed.
 *
 * Returns: (transfer full) (nullable): the *complete* stamp, or %NULL with @error set; free with stagehand_guard_stamp_free()
 */
StagehandGuardStamp *stagehand_guard_commit(StagehandGuardToken *token,
                                            GCancellable *cancellable,
                                            GError **error);

/**
 * stagehand_guard_status:
 * @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
 * @name: the step name
 * @out_stamp: (out) (transfer full) (nullable): return location for the record, set to %NULL when the step has none (never begun, or reset); free with stagehand_guard_stamp_free()
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * The record of step @name. Only reads, so it works on a read-only
 * directory. A missing directory is %STAGEHAND_ERROR_IO, not "no record":
 * its file system may simply not be mounted. A stamp that cannot be trusted
 * is %STAGEHAND_ERROR_CORRUPT (%STAGEHAND_ERROR_UNSUPPORTED when a newer
 * stagehand wrote it); a bad name %STAGEHAND_ERROR_INVALID_ARGUMENT.
 *
 * Returns: %TRUE on success (with *@out_stamp %NULL when there is no record), %FALSE with @error set
 */
gboolean stagehand_guard_status(const char *dir,
                                const char *name,
                                StagehandGuardStamp **out_stamp,
                                GCancellable *cancellable,
                                GError **error);

/**
 * stagehand_guard_reset:
 * @dir: (nullable) (type filename): the guard directory, or %NULL for `/var/lib/stagehand/guard`
 * @name: the step name
 * @out_removed: (out) (optional): return location for whether there was a stamp
 * @cancellable: (nullable): a #GCancellable, checked before anything is read
 * @error: return location for a #GError, or %NULL
 *
 * Forget step @name in any state, a corrupt stamp included, and remove
 * temporary files a killed writer left behind: the next
 * stagehand_guard_begin() starts it. Durable before it returns. For an
 * administrator who inspected the system after %STAGEHAND_ERROR_INTERRUPTED
 * or decided to re-run after %STAGEHAND_ERROR_CONFIG_CHANGED.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_guard_reset(const char *dir,
                               const char *name,
                               gboolean *out_removed,
                               GCancellable *cancellable,
                               GError **error);

/**
 * stagehand_guard_file_digest:
 * @path: (type filename): a file, typically the configuration a step applies
 * @cancellable: (nullable): a #GCancellable, checked before the file is opened
 * @error: return location for a #GError, or %NULL
 *
 * The SHA-256 of the file's content in lowercase hex: the @digest to give
 * stagehand_guard_begin() and stagehand_guard_resume(), the same as `stagehand
 * guard --digest-file` computes. Fails with %STAGEHAND_ERROR_IO naming the
 * file when it cannot be read.
 *
 * Returns: (transfer full) (nullable): the digest, or %NULL with @error set; free with g_free()
 */
char *stagehand_guard_file_digest(const char *path,
                                  GCancellable *cancellable,
                                  GError **error);

/**
 * stagehand_guard_token_free:
 * @token: (nullable) (transfer full): a token from stagehand_guard_begin(), stagehand_guard_begin_forced() or stagehand_guard_resume()
 *
 * Free @token. %NULL is ignored. This does not touch the stamp: a step
 * that was not committed stays started.
 */
void stagehand_guard_token_free(StagehandGuardToken *token);

/**
 * stagehand_guard_token_get_stamp:
 * @token: a #StagehandGuardToken
 *
 * Returns: (transfer none): the *started* record @token stands for (name, digest, run id, start time), owned by @token
 */
const StagehandGuardStamp *stagehand_guard_token_get_stamp(const StagehandGuardToken *token);

/**
 * stagehand_guard_token_get_path:
 * @token: a #StagehandGuardToken
 *
 * Returns: (transfer none) (type filename): the stamp file, `DIR/NAME.stamp`
 */
const char *stagehand_guard_token_get_path(const StagehandGuardToken *token);

/**
 * stagehand_guard_token_get_replaced_stamp:
 * @token: a #StagehandGuardToken
 *
 * Returns: (transfer none) (nullable): for a token of stagehand_guard_begin_forced(), the readable record it overrode; %NULL when there was none, it was unreadable, or the begin was not forced
 */
const StagehandGuardStamp *stagehand_guard_token_get_replaced_stamp(const StagehandGuardToken *token);

/**
 * stagehand_guard_token_get_replaced_unreadable:
 * @token: a #StagehandGuardToken
 *
 * Returns: (transfer none) (nullable): for a token of stagehand_guard_begin_forced() that overrode a stamp it could not trust (corrupt, or a newer format), why; %NULL otherwise
 */
const char *stagehand_guard_token_get_replaced_unreadable(const StagehandGuardToken *token);

/**
 * stagehand_guard_stamp_free:
 * @stamp: (nullable) (transfer full): a stamp from stagehand_guard_status() or stagehand_guard_commit()
 *
 * Free @stamp. %NULL is ignored. Never call it on the stamps a
 * #StagehandGuardToken owns.
 */
void stagehand_guard_stamp_free(StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_name:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: (transfer none): the step name
 */
const char *stagehand_guard_stamp_get_name(const StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_phase:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: started or complete
 */
StagehandGuardPhase stagehand_guard_stamp_get_phase(const StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_digest:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: (transfer none) (nullable): the configuration digest the step ran with (lowercase hex), or %NULL when it was begun without one
 */
const char *stagehand_guard_stamp_get_digest(const StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_run:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: (transfer none): the random id of this run of the step (a UUID), which tells a run from one begun again, forced, in the meantime
 */
const char *stagehand_guard_stamp_get_run(const StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_started:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: (transfer none): when the red line was crossed, RFC 3339 UTC (`2024-05-01T12:00:00Z`; g_date_time_new_from_iso8601() reads it)
 */
const char *stagehand_guard_stamp_get_started(const StagehandGuardStamp *stamp);

/**
 * stagehand_guard_stamp_get_completed:
 * @stamp: a #StagehandGuardStamp
 *
 * Returns: (transfer none) (nullable): when the step completed, RFC 3339 UTC; %NULL while it is started
 */
const char *stagehand_guard_stamp_get_completed(const StagehandGuardStamp *stamp);

/**
 * stagehand_health_options_new:
 *
 * The defaults: two known-good deployments are kept (pinned) while a
 * deployment is on trial.
 *
 * Returns: (transfer full): new options; free with stagehand_health_options_free()
 */
StagehandHealthOptions *stagehand_health_options_new(void);

/**
 * stagehand_health_options_free:
 * @options: (nullable) (transfer full): options from stagehand_health_options_new()
 *
 * Free @options. %NULL is ignored.
 */
void stagehand_health_options_free(StagehandHealthOptions *options);

/**
 * stagehand_health_options_set_keep_known_good:
 * @options: a #StagehandHealthOptions
 * @keep: whether two known-good deployments are pinned during a trial
 *
 * %FALSE releases the pins stagehand holds (at the next transition) and keeps
 * libostree's usual two deployments. Default %TRUE.
 */
void stagehand_health_options_set_keep_known_good(StagehandHealthOptions *options,
                                                  gboolean keep);

/**
 * stagehand_mark_good:
 * @sysroot: the booted #OstreeSysroot, loaded and locked by the caller
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Mark the booted deployment good (after `boot-complete.target`): it becomes
 * %STAGEHAND_HEALTH_STATE_GOOD and every other one loses "recent", in one
 * atomic write; its commit comes off the denylist if it was on it. That is
 * the only durable change, so it is cheap at boot: releasing the trial's
 * pins and dropping a deployment only they kept is left to the cleanup
 * (stagehand_mark_good_result_get_retention_pending()): call
 * stagehand_autocleanup() after it, or ship `stagehand-autocleanup.service`,
 * which the retention trigger starts at boot. If that never runs, nothing is
 * lost: the pins only keep one more deployment, and stagehand's next
 * staging or mark-bad releases them. Idempotent. A deployment with a failure verdict whose commit is still
 * denylisted is refused with %STAGEHAND_ERROR_DENYLISTED; on a sysroot that
 * is not booted %STAGEHAND_ERROR_NOT_BOOTED; an unreadable store
 * %STAGEHAND_ERROR_CORRUPT.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_mark_good_result_free()
 */
StagehandMarkGoodResult *stagehand_mark_good(OstreeSysroot *sysroot,
                                             const StagehandHealthOptions *options,
                                             GCancellable *cancellable,
                                             GError **error);

/**
 * stagehand_mark_bad:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the booted one
 * @reason: (nullable): why, for the record and the denylist; %NULL for none
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Mark a deployment bad: one atomic write fails it with @reason, puts its
 * commit on the denylist and records the rollback; then, when it was the
 * default or the booted one, the newest known-good deployment becomes the
 * default (stagehand_mark_bad_result_get_reboot_needed() says whether the
 * running system is the failed one). A staged deployment is unstaged
 * instead. When no other deployment is known good,
 * %STAGEHAND_ERROR_NO_KNOWN_GOOD and nothing changes: stagehand never rolls
 * into an untested or failed deployment. An unknown @deployment_id is
 * %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_mark_bad_result_free()
 */
StagehandMarkBadResult *stagehand_mark_bad(OstreeSysroot *sysroot,
                                           const char *deployment_id,
                                           const char *reason,
                                           const StagehandHealthOptions *options,
                                           GCancellable *cancellable,
                                           GError **error);

/**
 * stagehand_assess:
 * @sysroot: the booted #OstreeSysroot, loaded and locked by the caller
 * @evidence: a #StagehandBootEvidence value: what the bootloader knows about this boot
 * @tries: with %STAGEHAND_BOOT_EVIDENCE_FALLBACK, how many tries the entry had (0: not known); otherwise 0
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the defaults
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Boot assessment, early in every boot: count the boot (once per boot,
 * however often this runs), and when the booted deployment is older than
 * deployments on trial ahead of it, decide with @evidence whether they
 * failed to boot. Only %STAGEHAND_BOOT_EVIDENCE_FALLBACK marks them failed
 * and denylisted and makes the booted one the default again: a person's
 * choice must never denylist an update. Also finishes what an interrupted
 * transition left (the order of the deployments); releasing pins is left to
 * the cleanup, as after stagehand_mark_good()
 * (stagehand_verdict_get_retention_pending(): call stagehand_autocleanup()
 * after it when no `stagehand-autocleanup.service` does).
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): the verdict, or %NULL with @error set; free with stagehand_verdict_free()
 */
StagehandVerdict *stagehand_assess(OstreeSysroot *sysroot,
                                   guint evidence,
                                   guint tries,
                                   const StagehandHealthOptions *options,
                                   GCancellable *cancellable,
                                   GError **error);

/**
 * stagehand_denylist_list:
 * @sysroot: a loaded #OstreeSysroot
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Read the denylist (one file read). Read-only: the sysroot lock is not
 * needed. An unreadable store is %STAGEHAND_ERROR_CORRUPT.
 *
 * Returns: (transfer full) (nullable): the denylist, or %NULL with @error set; free with stagehand_denylist_free()
 */
StagehandDenylist *stagehand_denylist_list(OstreeSysroot *sysroot,
                                           GCancellable *cancellable,
                                           GError **error);

/**
 * stagehand_denylist_remove:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @checksum: the commit checksum, or a unique prefix of it
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Take a commit off the denylist, so it may be staged again. A @checksum
 * that is not hexadecimal, not on the denylist or matching several entries
 * is %STAGEHAND_ERROR_INVALID_ARGUMENT.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): the entry removed, or %NULL with @error set; free with stagehand_denylist_entry_free()
 */
StagehandDenylistEntry *stagehand_denylist_remove(OstreeSysroot *sysroot,
                                                  const char *checksum,
                                                  GCancellable *cancellable,
                                                  GError **error);

/**
 * stagehand_health_reset:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @out_previous_error: (out) (optional) (nullable) (transfer full): return location for why the previous store could not be read, %NULL when it could; free with g_free()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Start over with an empty health store, for an administrator after
 * inspecting a corrupt one: every record, the denylist and the rollback
 * history are forgotten (deployments then read
 * %STAGEHAND_HEALTH_STATE_GOOD_FALLBACK), moved-aside corrupt stores are
 * deleted. Pins stagehand recorded are released first.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_health_reset(OstreeSysroot *sysroot,
                                char **out_previous_error,
                                GCancellable *cancellable,
                                GError **error);

/**
 * stagehand_denylist_free:
 * @denylist: (nullable) (transfer full): a denylist from stagehand_denylist_list()
 *
 * Free @denylist and its entries. %NULL is ignored.
 */
void stagehand_denylist_free(StagehandDenylist *denylist);

/**
 * stagehand_denylist_get_n_entries:
 * @denylist: a #StagehandDenylist
 *
 * Returns: the number of denylisted commits
 */
guint stagehand_denylist_get_n_entries(const StagehandDenylist *denylist);

/**
 * stagehand_denylist_get_entry:
 * @denylist: a #StagehandDenylist
 * @index: which, from 0 (oldest first)
 *
 * Returns: (transfer none): the entry, owned by @denylist
 */
const StagehandDenylistEntry *stagehand_denylist_get_entry(const StagehandDenylist *denylist,
                                                           guint index);

/**
 * stagehand_denylist_entry_free:
 * @entry: (nullable) (transfer full): an entry from stagehand_denylist_remove()
 *
 * Free @entry. %NULL is ignored. Entries borrowed from a #StagehandStatus or
 * #StagehandDenylist are freed with it, never with this.
 */
void stagehand_denylist_entry_free(StagehandDenylistEntry *entry);

/**
 * stagehand_mark_good_result_free:
 * @result: (nullable) (transfer full): a result from stagehand_mark_good()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_mark_good_result_free(StagehandMarkGoodResult *result);

/**
 * stagehand_mark_bad_result_free:
 * @result: (nullable) (transfer full): a result from stagehand_mark_bad()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_mark_bad_result_free(StagehandMarkBadResult *result);

/**
 * stagehand_verdict_free:
 * @verdict: (nullable) (transfer full): a verdict from stagehand_assess()
 *
 * Free @verdict. %NULL is ignored.
 */
void stagehand_verdict_free(StagehandVerdict *verdict);

/**
 * stagehand_denylist_entry_get_checksum:
 * @entry: a #StagehandDenylistEntry
 *
 * Returns: (transfer none): the denylisted commit, owned by @entry
 */
const char *stagehand_denylist_entry_get_checksum(const StagehandDenylistEntry *entry);

/**
 * stagehand_denylist_entry_get_reason:
 * @entry: a #StagehandDenylistEntry
 *
 * Returns: (transfer none): why it was denylisted, owned by @entry
 */
const char *stagehand_denylist_entry_get_reason(const StagehandDenylistEntry *entry);

/**
 * stagehand_denylist_entry_get_since:
 * @entry: a #StagehandDenylistEntry
 *
 * Returns: (transfer none): when, RFC 3339 UTC, owned by @entry
 */
const char *stagehand_denylist_entry_get_since(const StagehandDenylistEntry *entry);

/**
 * stagehand_denylist_entry_get_deployment:
 * @entry: a #StagehandDenylistEntry
 *
 * Returns: (transfer none) (nullable): the identity of the deployment that failed, %NULL if none was recorded, owned by @entry
 */
const char *stagehand_denylist_entry_get_deployment(const StagehandDenylistEntry *entry);

/**
 * stagehand_rollback_get_from:
 * @rollback: a #StagehandRollback
 *
 * Returns: (transfer none): the identity of the deployment rolled back from, owned by @rollback
 */
const char *stagehand_rollback_get_from(const StagehandRollback *rollback);

/**
 * stagehand_rollback_get_to:
 * @rollback: a #StagehandRollback
 *
 * Returns: (transfer none): the identity of the known-good deployment that became the default, owned by @rollback
 */
const char *stagehand_rollback_get_to(const StagehandRollback *rollback);

/**
 * stagehand_rollback_get_reason:
 * @rollback: a #StagehandRollback
 *
 * Returns: (transfer none): why, owned by @rollback
 */
const char *stagehand_rollback_get_reason(const StagehandRollback *rollback);

/**
 * stagehand_rollback_get_at:
 * @rollback: a #StagehandRollback
 *
 * Returns: (transfer none): when, RFC 3339 UTC, owned by @rollback
 */
const char *stagehand_rollback_get_at(const StagehandRollback *rollback);

/**
 * stagehand_rollback_get_trigger:
 * @rollback: a #StagehandRollback
 *
 * Returns: what made the decision
 */
StagehandRollbackTrigger stagehand_rollback_get_trigger(const StagehandRollback *rollback);

/**
 * stagehand_mark_good_result_get_deployment:
 * @result: a #StagehandMarkGoodResult
 *
 * Returns: (transfer none): the identity of the booted deployment, now good, owned by @result
 */
const char *stagehand_mark_good_result_get_deployment(const StagehandMarkGoodResult *result);

/**
 * stagehand_mark_good_result_get_previous:
 * @result: a #StagehandMarkGoodResult
 *
 * Returns: its health state before
 */
StagehandHealthState stagehand_mark_good_result_get_previous(const StagehandMarkGoodResult *result);

/**
 * stagehand_mark_good_result_get_attempts:
 * @result: a #StagehandMarkGoodResult
 *
 * Returns: the boots counted into it
 */
guint stagehand_mark_good_result_get_attempts(const StagehandMarkGoodResult *result);

/**
 * stagehand_mark_good_result_get_undenylisted:
 * @result: a #StagehandMarkGoodResult
 *
 * Returns: whether its commit was on the denylist and came off it
 */
gboolean stagehand_mark_good_result_get_undenylisted(const StagehandMarkGoodResult *result);

/**
 * stagehand_mark_good_result_get_retention_pending:
 * @result: a #StagehandMarkGoodResult
 *
 * Whether the trial's pins are still held. Releasing them (and removing the
 * deployment only they kept) is housekeeping that stagehand_mark_good()
 * leaves off the boot path: stagehand_autocleanup() or
 * stagehand_run_cleanup() does it (`stagehand-autocleanup.service` runs
 * after mark-good), or else the next staging. Until then there is one more
 * known-good deployment than needed; nothing is lost if it never happens.
 * A daemon that ships no systemd units calls stagehand_autocleanup() when
 * this is %TRUE.
 *
 * stagehand_mark_good() itself never releases a pin nor removes a
 * deployment: the cleanup reports what it released
 * (stagehand_cleanup_report_get_released_pins()) and removed
 * (stagehand_cleanup_report_get_deployments_removed()).
 *
 * Returns: %TRUE when retention housekeeping is pending
 */
gboolean stagehand_mark_good_result_get_retention_pending(const StagehandMarkGoodResult *result);

/**
 * stagehand_mark_bad_result_get_deployment:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: (transfer none): the identity of the deployment marked bad, owned by @result
 */
const char *stagehand_mark_bad_result_get_deployment(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_reason:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: (transfer none): the reason recorded, owned by @result
 */
const char *stagehand_mark_bad_result_get_reason(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_denylisted:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: (transfer none): the commit put on the denylist, owned by @result
 */
const char *stagehand_mark_bad_result_get_denylisted(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_already_failed:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: whether it had a failure verdict already (only the order was redone)
 */
gboolean stagehand_mark_bad_result_get_already_failed(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_unstaged:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: whether it was the staged deployment and was unstaged
 */
gboolean stagehand_mark_bad_result_get_unstaged(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_rolled_back_to:
 * @result: a #StagehandMarkBadResult
 *
 * While another deployment is staged, libostree 2022.7 cannot write some
 * orders: the default (stagehand_mark_bad_result_get_default()) may then
 * still be the failed deployment. The staged deployment boots next either
 * way, and this one becomes its fallback when it is finalized.
 *
 * Returns: (transfer none) (nullable): the identity of the known-good deployment made the default, %NULL when no rollback was needed, owned by @result
 */
const char *stagehand_mark_bad_result_get_rolled_back_to(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_default:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: (transfer none) (nullable): the identity of the default deployment now, owned by @result
 */
const char *stagehand_mark_bad_result_get_default(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_staged:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: (transfer none) (nullable): the identity of another deployment that stays staged, %NULL if none, owned by @result
 */
const char *stagehand_mark_bad_result_get_staged(const StagehandMarkBadResult *result);

/**
 * stagehand_mark_bad_result_get_reboot_needed:
 * @result: a #StagehandMarkBadResult
 *
 * Returns: whether the running system is the failed one: reboot into the default
 */
gboolean stagehand_mark_bad_result_get_reboot_needed(const StagehandMarkBadResult *result);

/**
 * stagehand_verdict_get_booted:
 * @verdict: a #StagehandVerdict
 *
 * Returns: (transfer none): the identity of the booted deployment, owned by @verdict
 */
const char *stagehand_verdict_get_booted(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_health:
 * @verdict: a #StagehandVerdict
 *
 * Returns: its health state after assessment
 */
StagehandHealthState stagehand_verdict_get_health(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_attempts:
 * @verdict: a #StagehandVerdict
 *
 * Returns: the boots counted into it
 */
guint stagehand_verdict_get_attempts(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_counted:
 * @verdict: a #StagehandVerdict
 *
 * Returns: whether this call counted the boot (%FALSE when assessment ran before in this boot)
 */
gboolean stagehand_verdict_get_counted(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_outcome:
 * @verdict: a #StagehandVerdict
 *
 * Returns: the conclusion
 */
StagehandAssessOutcome stagehand_verdict_get_outcome(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_newer:
 * @verdict: a #StagehandVerdict
 *
 * Returns: (transfer none) (array zero-terminated=1): the identities of the deployments ahead of the booted one that are (were) on trial, owned by @verdict
 */
const char *const *stagehand_verdict_get_newer(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_failed:
 * @verdict: a #StagehandVerdict
 *
 * Returns: (transfer none) (array zero-terminated=1): the identities of the deployments this assessment marked failed and denylisted, owned by @verdict
 */
const char *const *stagehand_verdict_get_failed(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_default:
 * @verdict: a #StagehandVerdict
 *
 * Returns: (transfer none) (nullable): the identity of the default deployment now, owned by @verdict
 */
const char *stagehand_verdict_get_default(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_reboot_needed:
 * @verdict: a #StagehandVerdict
 *
 * Returns: whether the booted deployment has a failure verdict and a known-good default exists: reboot into it
 */
gboolean stagehand_verdict_get_reboot_needed(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_retention_pending:
 * @verdict: a #StagehandVerdict
 *
 * Whether no trial is open and stagehand still holds retention pins (a
 * trial ended, by stagehand_mark_good() or by this assessment), or a
 * release an interrupted run left half done is to be finished: releasing
 * them and removing the deployment only they kept is housekeeping that
 * stagehand_assess() leaves off the boot path, as stagehand_mark_good()
 * does. stagehand_autocleanup() or stagehand_run_cleanup() does it and
 * reports it (stagehand_cleanup_report_get_released_pins(),
 * stagehand_cleanup_report_get_deployments_removed());
 * `stagehand-autocleanup.service` runs it at boot when the retention
 * trigger is set. A daemon that ships no systemd units calls
 * stagehand_autocleanup() when this is %TRUE. Nothing is lost if it never
 * happens: the pins keep one more deployment until the next staging.
 *
 * Returns: %TRUE when retention housekeeping is pending
 */
gboolean stagehand_verdict_get_retention_pending(const StagehandVerdict *verdict);

/**
 * stagehand_verdict_get_message:
 * @verdict: a #StagehandVerdict
 *
 * Returns: (transfer none): one sentence for people, owned by @verdict
 */
const char *stagehand_verdict_get_message(const StagehandVerdict *verdict);

/**
 * stagehand_boot_assessment_new:
 * @sysroot: a loaded #OstreeSysroot
 * @config_path: (nullable) (type filename): the configuration file, or %NULL for `/etc/stagehand/stagehand.conf`
 * @error: return location for a #GError, or %NULL
 *
 * Read the configuration (a missing file gives the defaults, as for the
 * `stagehand` command) and select the boot counter it asks for on @sysroot:
 * `[bootloader] backend = grubenv`, `bls`, `none`, or `auto`, which detects
 * it (docs/boot-assessment.md). Paths in the file are those of the booted
 * system and are looked up inside @sysroot; @config_path itself is opened
 * as given. A configuration error is %STAGEHAND_ERROR_CONFIG with the line.
 *
 * Nothing is written and the sysroot lock is not needed.
 *
 * Returns: (transfer full) (nullable): the assessment, or %NULL with @error set; free with stagehand_boot_assessment_free()
 */
StagehandBootAssessment *stagehand_boot_assessment_new(OstreeSysroot *sysroot,
                                                       const char *config_path,
                                                       GError **error);

/**
 * stagehand_boot_assessment_free:
 * @assessment: (nullable) (transfer full): from stagehand_boot_assessment_new()
 *
 * Free @assessment. %NULL is ignored.
 */
void stagehand_boot_assessment_free(StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_backend:
 * @assessment: a #StagehandBootAssessment
 *
 * Returns: (transfer none): the selected counter: `"grubenv"`, `"bls"` or `"none"`, a static string
 */
const char *stagehand_boot_assessment_get_backend(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_reason:
 * @assessment: a #StagehandBootAssessment
 *
 * Returns: (transfer none): why this counter was selected (configured, or what detection found), owned by @assessment
 */
const char *stagehand_boot_assessment_get_reason(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_config_path:
 * @assessment: a #StagehandBootAssessment
 *
 * Returns: (transfer none) (nullable) (type filename): the configuration file the settings came from, %NULL when there was none (all defaults), owned by @assessment
 */
const char *stagehand_boot_assessment_get_config_path(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_tries:
 * @assessment: a #StagehandBootAssessment
 *
 * Returns: the boots a finalized deployment gets (`[bootloader] tries`)
 */
guint stagehand_boot_assessment_get_tries(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_auto_reboot:
 * @assessment: a #StagehandBootAssessment
 *
 * Returns: whether a boot marked bad should be followed by a reboot into the rollback (`[health] auto-reboot`); the results' `reboot` getters apply it
 */
gboolean stagehand_boot_assessment_get_auto_reboot(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_health_deadline:
 * @assessment: a #StagehandBootAssessment
 *
 * The health deadline (`[health] deadline`): the time after boot
 * (`CLOCK_BOOTTIME`) by which the booted deployment must be marked good.
 * Nothing waits for it: the caller calls stagehand_boot_assessment_deadline()
 * when it has passed (stagehand_boot_assessment_get_time_remaining()), or
 * at once when a check failed for good.
 *
 * Returns: the deadline in seconds since boot
 */
guint64 stagehand_boot_assessment_get_health_deadline(const StagehandBootAssessment *assessment);

/**
 * stagehand_boot_assessment_get_time_remaining:
 * @assessment: a #StagehandBootAssessment
 * @out_ms: (out): return location for the milliseconds left until the health deadline, 0 once it has passed
 * @error: return location for a #GError, or %NULL
 *
 * How long until the health deadline, measured from the time since boot
 * (the first field of `/proc/uptime`, which counts suspend). Fails with
 * %STAGEHAND_ERROR_IO or %STAGEHAND_ERROR_CORRUPT when that cannot be read.
 *
 * Returns: %TRUE with *@out_ms set, %FALSE with @error set
 */
gboolean stagehand_boot_assessment_get_time_remaining(const StagehandBootAssessment *assessment,
                                                      guint64 *out_ms,
                                                      GError **error);

/**
 * stagehand_boot_assessment_query_counter:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the loaded #OstreeSysroot @assessment was made for
 * @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the default one
 * @out_state: (out): return location for the counter's state
 * @out_left: (out) (optional): return location for the boots left after the current one (%STAGEHAND_COUNTER_STATE_COUNTING), else 0
 * @out_done: (out) (optional): return location for the boots done where the backend records them (BLS), else -1
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Read the boot counter of a deployment as the bootloader left it. A GRUB
 * environment block holds one counter, for the default entry: every
 * deployment reads the same one. An unknown @deployment_id is
 * %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT; a block or entry that cannot be
 * parsed %STAGEHAND_ERROR_CORRUPT. Read-only: the sysroot lock is not
 * needed. @sysroot is reloaded first if another process changed it.
 *
 * Returns: %TRUE with the out arguments set, %FALSE with @error set
 */
gboolean stagehand_boot_assessment_query_counter(const StagehandBootAssessment *assessment,
                                                 OstreeSysroot *sysroot,
                                                 const char *deployment_id,
                                                 StagehandCounterState *out_state,
                                                 guint *out_left,
                                                 gint *out_done,
                                                 GCancellable *cancellable,
                                                 GError **error);

/**
 * stagehand_boot_assessment_assess:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Boot assessment early in every boot, as `stagehand-assess.service` runs
 * it: stagehand_assess() with the boot counter's evidence (a fallback from
 * the deployment on trial marks it failed and denylisted, a person's
 * choice never does), then the counter is settled: a counter that runs for
 * a deployment no longer on trial is disarmed, so that after a fallback the
 * rolled-back default boots instead of the failed entry again. A counter
 * that cannot be read does not stop assessment: the boot is counted without
 * evidence and stagehand_boot_assess_result_get_counter_error() says why.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_assess_result_free()
 */
StagehandBootAssessResult *stagehand_boot_assessment_assess(const StagehandBootAssessment *assessment,
                                                            OstreeSysroot *sysroot,
                                                            const StagehandHealthOptions *options,
                                                            GCancellable *cancellable,
                                                            GError **error);

/**
 * stagehand_boot_assessment_mark_good:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * After `boot-complete.target`, as `stagehand-mark-good.service` runs it:
 * stagehand_mark_good(), then the boot counter is blessed (for the GRUB
 * environment block's one counter only when the booted deployment is the
 * default: a good boot of an entry picked by hand says nothing about the
 * default on trial), and counters of deployments no longer on trial are
 * disarmed. The errors are stagehand_mark_good()'s, and those of writing the
 * counter (%STAGEHAND_ERROR_IO, %STAGEHAND_ERROR_READ_ONLY); when only the
 * retention housekeeping after the verdict failed, the counter is still
 * blessed before the error is returned.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_mark_good_result_free()
 */
StagehandBootMarkGoodResult *stagehand_boot_assessment_mark_good(const StagehandBootAssessment *assessment,
                                                                 OstreeSysroot *sysroot,
                                                                 const StagehandHealthOptions *options,
                                                                 GCancellable *cancellable,
                                                                 GError **error);

/**
 * stagehand_boot_assessment_mark_bad:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the #OstreeSysroot @assessment was made for, loaded and locked by the caller
 * @deployment_id: (nullable): the deployment, `[stateroot:]checksum[.serial]` (a unique prefix of the checksum will do), or %NULL for the booted one
 * @reason: (nullable): why, for the record and the denylist; %NULL for none
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * A check failed: stagehand_mark_bad(), then the boot counter is settled:
 * the failed deployment's counter is disarmed, and the GRUB environment
 * block's one counter once the default is a known-good deployment again, so
 * the bootloader boots the rollback instead of counting down into the
 * failed entry. The errors are stagehand_mark_bad()'s (notably
 * %STAGEHAND_ERROR_NO_KNOWN_GOOD, with nothing changed) and those of
 * writing the counter.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_boot_mark_bad_result_free()
 */
StagehandBootMarkBadResult *stagehand_boot_assessment_mark_bad(const StagehandBootAssessment *assessment,
                                                               OstreeSysroot *sysroot,
                                                               const char *deployment_id,
                                                               const char *reason,
                                                               const StagehandHealthOptions *options,
                                                               GCancellable *cancellable,
                                                               GError **error);

/**
 * stagehand_boot_assessment_deadline:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the booted #OstreeSysroot @assessment was made for, loaded and locked by the caller
 * @options: (nullable): a #StagehandHealthOptions, or %NULL for the configuration's
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * The health deadline has passed (the caller decides when; see
 * stagehand_boot_assessment_get_time_remaining()): if the booted deployment
 * is still on trial, mark it bad with the reason "boot-complete.target was
 * not reached within ..." as stagehand_boot_assessment_mark_bad() does. If
 * an earlier run's verdict on it was interrupted before its rollback (the
 * failed deployment is still the default), finish it the same way, keeping
 * the recorded reason. Otherwise do nothing. Nothing reboots: with `auto-reboot`,
 * stagehand_boot_mark_bad_result_get_reboot() tells the caller to. With no
 * known-good deployment left this is %STAGEHAND_ERROR_NO_KNOWN_GOOD and
 * nothing changes; on a sysroot that is not booted
 * %STAGEHAND_ERROR_NOT_BOOTED.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was concluded, or %NULL with @error set; free with stagehand_boot_deadline_result_free()
 */
StagehandBootDeadlineResult *stagehand_boot_assessment_deadline(const StagehandBootAssessment *assessment,
                                                                OstreeSysroot *sysroot,
                                                                const StagehandHealthOptions *options,
                                                                GCancellable *cancellable,
                                                                GError **error);

/**
 * stagehand_boot_assessment_arm_finalized:
 * @assessment: a #StagehandBootAssessment
 * @sysroot: the #OstreeSysroot @assessment was made for, loaded and locked by the caller
 * @deployment_id: the deployment finalization made the default, `[stateroot:]checksum[.serial]`: stagehand_finalize_result_get_deployment() of a %STAGEHAND_FINALIZE_OUTCOME_STAMPED result
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * At shutdown, after `ostree admin finalize-staged` and
 * stagehand_record_finalized() (what the drop-in for
 * `ostree-finalize-staged.service` runs): give the finalized deployment the
 * configured tries, if it is the default deployment now and on trial.
 * Anything else is an outcome, not an error: nothing is armed and
 * stagehand_arm_result_get_reason() says why (not the default, not on
 * trial, no counter, a libostree that cannot count BLS entries). Never call
 * it right after staging: a staged deployment that is never finalized must
 * not leave a counter. An unknown @deployment_id is
 * %STAGEHAND_ERROR_UNKNOWN_DEPLOYMENT.
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): what was done, or %NULL with @error set; free with stagehand_arm_result_free()
 */
StagehandArmResult *stagehand_boot_assessment_arm_finalized(const StagehandBootAssessment *assessment,
                                                            OstreeSysroot *sysroot,
                                                            const char *deployment_id,
                                                            GCancellable *cancellable,
                                                            GError **error);

/**
 * stagehand_boot_assess_result_free:
 * @result: (nullable) (transfer full): from stagehand_boot_assessment_assess()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_boot_assess_result_free(StagehandBootAssessResult *result);

/**
 * stagehand_boot_mark_good_result_free:
 * @result: (nullable) (transfer full): from stagehand_boot_assessment_mark_good()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_boot_mark_good_result_free(StagehandBootMarkGoodResult *result);

/**
 * stagehand_boot_mark_bad_result_free:
 * @result: (nullable) (transfer full): from stagehand_boot_assessment_mark_bad()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_boot_mark_bad_result_free(StagehandBootMarkBadResult *result);

/**
 * stagehand_boot_deadline_result_free:
 * @result: (nullable) (transfer full): from stagehand_boot_assessment_deadline()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_boot_deadline_result_free(StagehandBootDeadlineResult *result);

/**
 * stagehand_arm_result_free:
 * @result: (nullable) (transfer full): from stagehand_boot_assessment_arm_finalized()
 *
 * Free @result. %NULL is ignored.
 */
void stagehand_arm_result_free(StagehandArmResult *result);

/**
 * stagehand_boot_assess_result_get_verdict:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: (transfer none): the health verdict, as stagehand_assess() returns it, owned by @result
 */
const StagehandVerdict *stagehand_boot_assess_result_get_verdict(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_assess_result_get_counter_evidence:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: what the boot counter said about this boot (%STAGEHAND_COUNTER_EVIDENCE_NONE also when it could not be read)
 */
StagehandCounterEvidence stagehand_boot_assess_result_get_counter_evidence(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_assess_result_get_tries_left:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: with %STAGEHAND_COUNTER_EVIDENCE_ON_TRIAL, the boots the bootloader still gives the booted deployment after this one (0: this is its last try); otherwise 0
 */
guint stagehand_boot_assess_result_get_tries_left(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_assess_result_get_fallback_tries:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: with %STAGEHAND_COUNTER_EVIDENCE_BOOTLOADER_FALLBACK, the boots the failed deployment had where the backend records them (BLS), else 0
 */
guint stagehand_boot_assess_result_get_fallback_tries(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_assess_result_get_counter_error:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: (transfer none) (nullable): why the counter could not be read (assessment went on without its evidence), %NULL when it was read, owned by @result
 */
const char *stagehand_boot_assess_result_get_counter_error(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_assess_result_get_disarmed:
 * @result: a #StagehandBootAssessResult
 *
 * Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped because they are no longer on trial, owned by @result
 */
const char *const *stagehand_boot_assess_result_get_disarmed(const StagehandBootAssessResult *result);

/**
 * stagehand_boot_mark_good_result_get_outcome:
 * @result: a #StagehandBootMarkGoodResult
 *
 * Returns: (transfer none): the health transition, as stagehand_mark_good() returns it, owned by @result
 */
const StagehandMarkGoodResult *stagehand_boot_mark_good_result_get_outcome(const StagehandBootMarkGoodResult *result);

/**
 * stagehand_boot_mark_good_result_get_blessed:
 * @result: a #StagehandBootMarkGoodResult
 *
 * Returns: whether the counter was blessed (%FALSE: nothing was armed for the booted deployment, or the GRUB environment block counts another one)
 */
gboolean stagehand_boot_mark_good_result_get_blessed(const StagehandBootMarkGoodResult *result);

/**
 * stagehand_boot_mark_good_result_get_disarmed:
 * @result: a #StagehandBootMarkGoodResult
 *
 * Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped because they are no longer on trial, owned by @result
 */
const char *const *stagehand_boot_mark_good_result_get_disarmed(const StagehandBootMarkGoodResult *result);

/**
 * stagehand_boot_mark_bad_result_get_outcome:
 * @result: a #StagehandBootMarkBadResult
 *
 * Returns: (transfer none): the health transition, as stagehand_mark_bad() returns it, owned by @result
 */
const StagehandMarkBadResult *stagehand_boot_mark_bad_result_get_outcome(const StagehandBootMarkBadResult *result);

/**
 * stagehand_boot_mark_bad_result_get_disarmed:
 * @result: a #StagehandBootMarkBadResult
 *
 * Returns: (transfer none) (array zero-terminated=1): the deployments whose counter was stopped: the failed one's, or the GRUB environment block's once the default is known good, owned by @result
 */
const char *const *stagehand_boot_mark_bad_result_get_disarmed(const StagehandBootMarkBadResult *result);

/**
 * stagehand_boot_mark_bad_result_get_reboot:
 * @result: a #StagehandBootMarkBadResult
 *
 * Returns: whether the caller should reboot into the rollback now: the running system is the failed one and the configuration says `auto-reboot = true`
 */
gboolean stagehand_boot_mark_bad_result_get_reboot(const StagehandBootMarkBadResult *result);

/**
 * stagehand_boot_deadline_result_get_missed:
 * @result: a #StagehandBootDeadlineResult
 *
 * Returns: whether the booted deployment was still on trial and was marked bad (%FALSE: it is not on trial, nothing was done)
 */
gboolean stagehand_boot_deadline_result_get_missed(const StagehandBootDeadlineResult *result);

/**
 * stagehand_boot_deadline_result_get_booted:
 * @result: a #StagehandBootDeadlineResult
 *
 * Returns: (transfer none): the identity of the booted deployment, owned by @result
 */
const char *stagehand_boot_deadline_result_get_booted(const StagehandBootDeadlineResult *result);

/**
 * stagehand_boot_deadline_result_get_mark_bad:
 * @result: a #StagehandBootDeadlineResult
 *
 * Returns: (transfer none) (nullable): what marking the booted deployment bad did, %NULL when the deadline was not missed, owned by @result
 */
const StagehandBootMarkBadResult *stagehand_boot_deadline_result_get_mark_bad(const StagehandBootDeadlineResult *result);

/**
 * stagehand_arm_result_get_armed:
 * @result: a #StagehandArmResult
 *
 * Returns: whether the counter now counts the deployment's boots (%FALSE: skipped, see stagehand_arm_result_get_reason())
 */
gboolean stagehand_arm_result_get_armed(const StagehandArmResult *result);

/**
 * stagehand_arm_result_get_deployment:
 * @result: a #StagehandArmResult
 *
 * Returns: (transfer none): the identity of the finalized deployment, owned by @result
 */
const char *stagehand_arm_result_get_deployment(const StagehandArmResult *result);

/**
 * stagehand_arm_result_get_tries:
 * @result: a #StagehandArmResult
 *
 * Returns: the tries given, 0 when nothing was armed
 */
guint stagehand_arm_result_get_tries(const StagehandArmResult *result);

/**
 * stagehand_arm_result_get_reason:
 * @result: a #StagehandArmResult
 *
 * Returns: (transfer none) (nullable): why nothing was armed, %NULL when the counter was armed, owned by @result
 */
const char *stagehand_arm_result_get_reason(const StagehandArmResult *result);

/**
 * stagehand_hooks_check:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @options: what would be staged (revision, stateroot, hook timeout)
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * A dry run of the pre-upgrade hooks: check the revision out as staging
 * would, run **every** hook (also after a veto, to report them all), remove
 * the checkout and report each outcome. Staged deployments, the
 * finalization lock and the bootloader are untouched. A veto is not an
 * error here: stagehand_hook_report_get_passed() says whether all passed.
 * Errors: the revision's (%STAGEHAND_ERROR_UNKNOWN_REVISION, ...), an
 * unacceptable hook file %STAGEHAND_ERROR_HOOK_INVALID, cancellation
 * %STAGEHAND_ERROR_CANCELLED (the running hook's process tree is killed).
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: (transfer full) (nullable): the report, or %NULL with @error set; free with stagehand_hook_report_free()
 */
StagehandHookReport *stagehand_hooks_check(OstreeSysroot *sysroot,
                                           const StagehandStageOptions *options,
                                           GCancellable *cancellable,
                                           GError **error);

/**
 * stagehand_hooks_recover:
 * @sysroot: a #OstreeSysroot, loaded and locked by the caller
 * @out_removed_id: (out) (optional) (nullable) (transfer full): return location for the identity of the unvetted staged deployment removed, %NULL when there was none; free with g_free()
 * @cancellable: (nullable): a #GCancellable
 * @error: return location for a #GError, or %NULL
 *
 * Remove what a staging that died while its hooks ran left behind: the
 * unvetted staged deployment with its finalization lock and record, and any
 * deployment checkout not in the deployment list. A vetted staged
 * deployment is left alone. (stagehand_stage() does this by itself first.)
 *
 * The caller must hold the sysroot lock (ostree_sysroot_lock()). When nobody holds it this fails with
 * %STAGEHAND_ERROR_NOT_LOCKED before anything is read or written.
 *
 * Returns: %TRUE on success, %FALSE with @error set
 */
gboolean stagehand_hooks_recover(OstreeSysroot *sysroot,
                                 char **out_removed_id,
                                 GCancellable *cancellable,
                                 GError **error);

/**
 * stagehand_hook_report_free:
 * @report: (nullable) (transfer full): a report from stagehand_hooks_check()
 *
 * Free @report and the #StagehandHookRun it holds. %NULL is ignored.
 */
void stagehand_hook_report_free(StagehandHookReport *report);

/**
 * stagehand_hook_report_get_n_hooks:
 * @report: a #StagehandHookReport
 *
 * Returns: how many hooks ran (0 when the revision ships none)
 */
guint stagehand_hook_report_get_n_hooks(const StagehandHookReport *report);

/**
 * stagehand_hook_report_get_hook:
 * @report: a #StagehandHookReport
 * @index: which, from 0, in the order they ran
 *
 * Returns: (transfer none): how that hook ran, owned by @report
 */
const StagehandHookRun *stagehand_hook_report_get_hook(const StagehandHookReport *report,
                                                       guint index);

/**
 * stagehand_hook_report_get_stateroot:
 * @report: a #StagehandHookReport
 *
 * Returns: (transfer none): the stateroot the revision would be deployed into, owned by @report
 */
const char *stagehand_hook_report_get_stateroot(const StagehandHookReport *report);

/**
 * stagehand_hook_report_get_checksum:
 * @report: a #StagehandHookReport
 *
 * Returns: (transfer none): the commit checked, owned by @report
 */
const char *stagehand_hook_report_get_checksum(const StagehandHookReport *report);

/**
 * stagehand_hook_report_get_version:
 * @report: a #StagehandHookReport
 *
 * Returns: (transfer none) (nullable): the commit's `version` metadata, %NULL if it has none, owned by @report
 */
const char *stagehand_hook_report_get_version(const StagehandHookReport *report);

/**
 * stagehand_hook_report_get_old:
 * @report: a #StagehandHookReport
 *
 * Returns: (transfer none) (nullable): the identity of the deployment it would upgrade from (the booted one, else the merge deployment), %NULL if none, owned by @report
 */
const char *stagehand_hook_report_get_old(const StagehandHookReport *report);

/**
 * stagehand_hook_report_get_passed:
 * @report: a #StagehandHookReport
 *
 * Returns: whether every hook passed (%TRUE when there are none)
 */
gboolean stagehand_hook_report_get_passed(const StagehandHookReport *report);

/**
 * stagehand_hook_run_get_name:
 * @run: a #StagehandHookRun
 *
 * Returns: (transfer none): the file name, owned by @run
 */
const char *stagehand_hook_run_get_name(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_path:
 * @run: a #StagehandHookRun
 *
 * Returns: (transfer none): the path as its system sees it (`/usr/lib/stagehand/pre-upgrade.d/NAME`), owned by @run
 */
const char *stagehand_hook_run_get_path(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_origin:
 * @run: a #StagehandHookRun
 *
 * Returns: who shipped it
 */
StagehandHookOrigin stagehand_hook_run_get_origin(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_passed:
 * @run: a #StagehandHookRun
 *
 * Returns: whether it passed (exit status 0)
 */
gboolean stagehand_hook_run_get_passed(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_end:
 * @run: a #StagehandHookRun
 *
 * Returns: how it ended
 */
StagehandHookEnd stagehand_hook_run_get_end(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_exit_status:
 * @run: a #StagehandHookRun
 *
 * Returns: its exit status with %STAGEHAND_HOOK_END_EXITED, else 0
 */
int stagehand_hook_run_get_exit_status(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_signal:
 * @run: a #StagehandHookRun
 *
 * Returns: the signal that killed it with %STAGEHAND_HOOK_END_SIGNALED, else 0
 */
int stagehand_hook_run_get_signal(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_description:
 * @run: a #StagehandHookRun
 *
 * Returns: (transfer none) (nullable): how it vetoed, as the error message says it (`exit status 3`), %NULL when it passed, owned by @run
 */
const char *stagehand_hook_run_get_description(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_duration_ms:
 * @run: a #StagehandHookRun
 *
 * Returns: its wall time in milliseconds
 */
guint64 stagehand_hook_run_get_duration_ms(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_output_bytes:
 * @run: a #StagehandHookRun
 *
 * Returns: how many bytes it wrote to stdout and stderr together
 */
guint64 stagehand_hook_run_get_output_bytes(const StagehandHookRun *run);

/**
 * stagehand_hook_run_get_output_tail:
 * @run: a #StagehandHookRun
 *
 * Returns: (transfer none): the last 8 KiB of that output, owned by @run
 */
const char *stagehand_hook_run_get_output_tail(const StagehandHookRun *run);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStageOptions, stagehand_stage_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStageResult, stagehand_stage_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStatus, stagehand_status_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandCleanupStamp, stagehand_cleanup_stamp_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandFinalizeResult, stagehand_finalize_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandCleanupOptions, stagehand_cleanup_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandCleanupReport, stagehand_cleanup_report_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandGuardToken, stagehand_guard_token_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandGuardStamp, stagehand_guard_stamp_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandHealthOptions, stagehand_health_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandMarkGoodResult, stagehand_mark_good_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandMarkBadResult, stagehand_mark_bad_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandVerdict, stagehand_verdict_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandDenylist, stagehand_denylist_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandDenylistEntry, stagehand_denylist_entry_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandBootAssessment, stagehand_boot_assessment_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandBootAssessResult, stagehand_boot_assess_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandBootMarkGoodResult, stagehand_boot_mark_good_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandBootMarkBadResult, stagehand_boot_mark_bad_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandBootDeadlineResult, stagehand_boot_deadline_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandArmResult, stagehand_arm_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandHookReport, stagehand_hook_report_free)

G_END_DECLS
