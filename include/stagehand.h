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
} StagehandError;

/**
 * StagehandDeploymentStatus:
 *
 * One deployment in a #StagehandStatus, read with the
 * `stagehand_deployment_status_get_*()` functions. It belongs to the
 * #StagehandStatus it came from and is valid as long as that is.
 */
typedef struct StagehandDeploymentStatus StagehandDeploymentStatus;

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
 * stagehand_sysroot_lock()). @sysroot is reloaded first if another process
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
 * The caller must hold the sysroot lock. @sysroot is reloaded first if
 * another process changed it, and is reloaded afterwards.
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

G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStageOptions, stagehand_stage_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStageResult, stagehand_stage_result_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (StagehandStatus, stagehand_status_free)

G_END_DECLS
