//! The C++ side as a C++ compiler sees it, without a sysroot or root (the
//! full test on a booted sysroot is `tests/cxx/`, run by meson):
//!
//! - every fallible function of the generated bridge (`stagehand::raw`) has
//!   its wrapper in `stagehand.hpp`, so none can reach C++ callers throwing
//!   an untyped `rust::Error`;
//! - the headers compile warning-free under the flags C++ daemons use, as
//!   C++17 and C++20;
//! - a program linked against the static library gets typed
//!   `stagehand::Error` exceptions with the C library's codes and messages,
//!   and its GLib log handler sees stagehand's messages.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The include directory build.rs lays out (`stagehand-cxx/*.h`, `rust/cxx.h`).
fn include_dir() -> PathBuf {
    Path::new(env!("OUT_DIR")).join("include")
}

/// `target/<profile>`: OUT_DIR is `target/<profile>/build/stagehand-cxx-*/out`.
fn profile_dir() -> PathBuf {
    Path::new(env!("OUT_DIR"))
        .ancestors()
        .nth(3)
        .expect("OUT_DIR is target/<profile>/build/<pkg>/out")
        .to_path_buf()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn pkg_config(args: &[&str]) -> Vec<String> {
    let out = Command::new("pkg-config")
        .args(args)
        .output()
        .expect("pkg-config");
    assert!(out.status.success(), "pkg-config {args:?} failed");
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Names of the functions declared in the top-level `namespace raw { ... }`
/// blocks (cxx opens one for the opaque type declared there and one for the
/// functions; the indented one among the forward declarations has no
/// functions).
fn raw_functions(bridge: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = bridge;
    while let Some(start) = rest.find("\nnamespace raw {") {
        let end = start
            + rest[start..]
                .find("} // namespace raw")
                .expect("end of namespace raw");
        out.extend(
            rest[start..end]
                .lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("//") && l.ends_with(");"))
                .filter_map(|l| {
                    let name_end = l.find('(')?;
                    let name = l[..name_end].rsplit([' ', ':', '*', '&']).next()?;
                    Some(name.to_string())
                }),
        );
        rest = &rest[end..];
    }
    assert!(!out.is_empty(), "bridge.h has no namespace raw");
    out
}

#[test]
fn every_raw_function_has_a_typed_wrapper() {
    let inc = include_dir();
    let raw = raw_functions(&read(&inc.join("stagehand-cxx/bridge.h")));
    assert!(raw.len() >= 15, "parsed too few raw functions: {raw:?}");
    assert!(
        raw.contains("stage") && raw.contains("guard_commit"),
        "{raw:?}"
    );
    let hpp =
        read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("include/stagehand-cxx/stagehand.hpp"));
    // A free function of the same name, or (`boot_*`) a member function of
    // stagehand::BootAssessment, which calls it through detail::call.
    let missing: Vec<&String> = raw
        .iter()
        .filter(|f| {
            let wrapped = hpp.contains(&format!(" {f}(")) || f.starts_with("boot_");
            !(wrapped && hpp.contains(&format!("detail::call([&] {{ return raw::{f}("))
                || hpp.contains(&format!("detail::call([&] {{ raw::{f}(")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "stagehand.hpp has no wrapper for raw::{missing:?}: add `inline ... NAME(...) {{ return detail::call([&] {{ return raw::NAME(...); }}); }}` (docs/cxx.md)"
    );
}

/// A C++ program that uses the binding without a sysroot: the guard on a
/// temporary directory, deployment identities, and the errors of both.
const PROGRAM: &str = r#"
#include <stagehand-cxx/stagehand.hpp>
#include <cstdio>
#include <cstring>
#include <string>

static int failures = 0;
#define CHECK(cond) do { if (!(cond)) { std::fprintf(stderr, "%d: CHECK(%s) failed\n", __LINE__, #cond); failures++; } } while (0)

template <typename F> static stagehand::ErrorCode code_of(F &&f, std::string *message = nullptr) {
  try { f(); } catch (const stagehand::Error &e) { if (message) *message = e.what(); return e.code(); }
  catch (const std::exception &e) { std::fprintf(stderr, "untyped exception: %s\n", e.what()); failures++; }
  return static_cast<stagehand::ErrorCode>(-1);
}

static std::string logged;
static void handler(const char *domain, GLogLevelFlags, const char *message, void *) {
  if (domain && std::strcmp(domain, "stagehand") == 0) logged += std::string(message) + "\n";
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  const std::string dir = argv[1];
  g_log_set_handler("stagehand", static_cast<GLogLevelFlags>(G_LOG_LEVEL_MASK), handler, nullptr);
  using stagehand::ErrorCode;
  std::string msg;

  auto token = stagehand::guard_begin(dir, "step", "00112233445566778899aabbccddeeff");
  CHECK(token->stamp().phase == stagehand::GuardPhase::Started);
  CHECK(code_of([&] { stagehand::guard_begin(dir, "step"); }, &msg) == ErrorCode::Interrupted);
  CHECK(msg.find("step \"step\" was started at") == 0);
  auto done = stagehand::guard_commit(std::move(token));
  CHECK(done.phase == stagehand::GuardPhase::Complete);
  CHECK(code_of([&] { stagehand::guard_begin(dir, "step", "00112233445566778899aabbccddeeff"); }) == ErrorCode::AlreadyComplete);
  CHECK(code_of([&] { stagehand::guard_begin(dir, "step", "ffeeddccbbaa99887766554433221100"); }) == ErrorCode::ConfigChanged);
  CHECK(code_of([&] { stagehand::guard_begin(dir, "bad/name"); }) == ErrorCode::InvalidArgument);
  CHECK(code_of([&] { stagehand::guard_status(dir + "/missing", "step"); }) == ErrorCode::Io);
  CHECK(stagehand::guard_reset(dir, "step"));
  CHECK(stagehand::guard_status(dir, "step").phase == stagehand::GuardPhase::Absent);

  CHECK(code_of([] { stagehand::parse_deployment_id("os:xyz.0"); }, &msg) == ErrorCode::InvalidArgument);
  // Exactly the message the C library's GError carries: no prefix left.
  CHECK(msg == "invalid argument: \"os:xyz.0\" is not stateroot:checksum.serial");
  const std::string id = "os:" + std::string(64, 'a') + ".2";
  CHECK(std::string(stagehand::parse_deployment_id(id).to_string()) == id);

  CHECK(logged.find("step \"step\" started") != std::string::npos);
  CHECK(logged.find("step \"step\" reset") != std::string::npos);
  return failures == 0 ? 0 : 1;
}
"#;

fn compile(std: &str, source: &Path, output: Option<&Path>) {
    let mut cmd = Command::new(std::env::var("CXX").unwrap_or_else(|_| "c++".into()));
    cmd.arg(format!("-std={std}"))
        .args(["-Wall", "-Wextra", "-Werror"])
        .arg("-I")
        .arg(include_dir())
        .args(pkg_config(&["--cflags", "ostree-1"]))
        .arg(source);
    match output {
        None => {
            cmd.arg("-fsyntax-only");
        }
        Some(out) => {
            let lib = profile_dir().join("libstagehand_cxx.a");
            // `cargo test` builds rlibs only; the static library comes from
            // `cargo build` (scripts/test.sh runs it first).
            assert!(
                lib.exists(),
                "{} is missing: run `cargo build -p stagehand-cxx` before this test",
                lib.display()
            );
            cmd.arg("-o")
                .arg(out)
                .arg(lib)
                .arg("-Wl,--gc-sections")
                .args(pkg_config(&["--libs", "ostree-1"]))
                .args(["-lpthread", "-ldl", "-lm"]);
        }
    }
    let out = cmd
        .output()
        .expect("running the C++ compiler (apt-get install g++)");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn headers_compile_cleanly_as_cxx17_and_cxx20() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("consumer.cc");
    std::fs::write(&src, PROGRAM).unwrap();
    for std in ["c++17", "c++20"] {
        compile(std, &src, None);
    }
}

#[test]
fn a_linked_program_gets_typed_exceptions() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("consumer.cc");
    let exe = tmp.path().join("consumer");
    std::fs::write(&src, PROGRAM).unwrap();
    compile("c++17", &src, Some(&exe));
    let guard_dir = tmp.path().join("guard");
    std::fs::create_dir(&guard_dir).unwrap();
    let out = Command::new(&exe).arg(&guard_dir).output().unwrap();
    assert!(
        out.status.success(),
        "the C++ program failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
