//! Prerequisites for tests that need more than the compiler: root, a kernel feature, a tool.
//!
//! A test whose prerequisite is missing **fails**, saying what to install or do, unless the
//! run opts out of that kind of prerequisite explicitly with `ONESTACK_TEST_SKIP` (a comma
//! list of [`Need`] names, or `all`). `.ci/run` never sets it; `make test` sets only what the
//! machine provably cannot do (a kernel without 8021q). A skipped test prints `skipped:` and
//! is appended to `$ONESTACK_TEST_SKIP_LOG`, which `make test` counts and names at the end,
//! so a skip never passes as a success unnoticed.

pub mod postgres;

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The variable that opts a run out of some prerequisites.
pub const SKIP_VAR: &str = "ONESTACK_TEST_SKIP";
/// Where skipped tests are written, one per line (`make test` reads it).
pub const SKIP_LOG_VAR: &str = "ONESTACK_TEST_SKIP_LOG";

/// A kind of prerequisite a run may opt out of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Running as root: bridges, taps, namespaces, nftables, QEMU guests with taps.
    Root,
    /// A host tool `scripts/install-deps.sh` installs (qemu-img, genisoimage, nft, …).
    Tool,
    /// VLAN sub-interfaces (the 8021q kernel module).
    Vlan,
    /// Sole use of the packet mark: no other firewall table that sets it on this host.
    Firewall,
}

impl Need {
    pub fn name(self) -> &'static str {
        match self {
            Need::Root => "root",
            Need::Tool => "tool",
            Need::Vlan => "vlan",
            Need::Firewall => "firewall",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Run,
    Skip,
    Fail,
}

/// What to do about `need`, given whether it is met and the run's opt-out list
/// (`ONESTACK_TEST_SKIP=root,vlan` or `all`).
fn verdict(need: Need, met: bool, opt_out: Option<&str>) -> Verdict {
    let opted_out = opt_out.is_some_and(|v| {
        v.split(',')
            .map(str::trim)
            .any(|item| item == "all" || item == need.name())
    });
    match (met, opted_out) {
        (true, _) => Verdict::Run,
        (false, true) => Verdict::Skip,
        (false, false) => Verdict::Fail,
    }
}

/// The running test's name (libtest names each test's thread after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned()
}

/// `true` when `met`. Otherwise the test fails with `what` (what is missing and how to get
/// it), unless the run opted out of `need`: then the skip is recorded and this is `false`,
/// and the test returns at once.
pub fn require(need: Need, met: bool, what: &str) -> bool {
    let opt_out = std::env::var(SKIP_VAR).ok();
    match verdict(need, met, opt_out.as_deref()) {
        Verdict::Run => return true,
        Verdict::Skip => {}
        Verdict::Fail => panic!(
            "{what}. This test does not pass without it; to skip it on purpose, set {SKIP_VAR}={}",
            need.name()
        ),
    }
    let name = test_name();
    println!("skipped: {name}: {what}");
    if let Some(log) = std::env::var_os(SKIP_LOG_VAR) {
        let line = format!("{name}\t{what}\n");
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = written {
            panic!(
                "cannot record the skip in {}: {e}",
                Path::new(&log).display()
            );
        }
    }
    false
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

/// Requires root (see [`require`]).
pub fn require_root() -> bool {
    require(
        Need::Root,
        is_root(),
        "this test needs root (bridges, taps, namespaces, nftables); run it as root",
    )
}

/// Where `tool` is installed, from the usual system directories and `PATH`.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .map(PathBuf::from)
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Requires each of `tools` (see [`require`]); they come from `scripts/install-deps.sh`.
pub fn require_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    require(
        Need::Tool,
        missing.is_empty(),
        &format!(
            "{} not installed (scripts/install-deps.sh installs it)",
            missing.join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_explicit_opt_out_turns_a_failure_into_a_skip() {
        assert_eq!(verdict(Need::Root, true, None), Verdict::Run);
        assert_eq!(verdict(Need::Root, true, Some("all")), Verdict::Run);
        assert_eq!(verdict(Need::Root, false, None), Verdict::Fail);
        assert_eq!(verdict(Need::Root, false, Some("")), Verdict::Fail);
        assert_eq!(verdict(Need::Root, false, Some("vlan")), Verdict::Fail);
        assert_eq!(
            verdict(Need::Root, false, Some("vlan, root")),
            Verdict::Skip
        );
        assert_eq!(verdict(Need::Vlan, false, Some("all")), Verdict::Skip);
        assert_eq!(verdict(Need::Tool, false, Some("tools")), Verdict::Fail);
    }

    #[test]
    fn tools_are_found_where_they_are() {
        assert!(which("sh").is_some());
        assert!(which("no-such-tool-onestack").is_none());
    }
}
