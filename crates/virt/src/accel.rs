//! KVM or TCG: hardware virtualization only when the CPU has it (vmx/svm) and /dev/kvm exists.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The configured choice (`"auto"`, `"kvm"`, `"tcg"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccelChoice {
    #[default]
    Auto,
    Kvm,
    Tcg,
}

/// The accelerator QEMU is started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The `-machine accel=` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Tcg => "tcg",
        }
    }
}

/// Whether a `/proc/cpuinfo` text advertises hardware virtualization (`vmx` or `svm` in a
/// `flags` line).
pub fn cpuinfo_has_virt(cpuinfo: &str) -> bool {
    cpuinfo.lines().any(|line| {
        let Some((key, value)) = line.split_once(':') else {
            return false;
        };
        key.trim() == "flags" && value.split_whitespace().any(|f| f == "vmx" || f == "svm")
    })
}

/// Resolves a choice given what the host has. An explicit `kvm` is honoured even where KVM
/// looks unusable (QEMU then fails with its own message); `auto` falls back to TCG.
pub fn resolve(choice: AccelChoice, cpuinfo: &str, dev_kvm: bool) -> Accel {
    match choice {
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Auto if dev_kvm && cpuinfo_has_virt(cpuinfo) => Accel::Kvm,
        AccelChoice::Auto => Accel::Tcg,
    }
}

/// Resolves a choice on this host (reads `/proc/cpuinfo`, looks for `/dev/kvm`).
pub fn detect_accel(choice: AccelChoice) -> Accel {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let dev_kvm = Path::new("/dev/kvm").exists();
    let accel = resolve(choice, &cpuinfo, dev_kvm);
    if choice == AccelChoice::Kvm && !(dev_kvm && cpuinfo_has_virt(&cpuinfo)) {
        tracing::warn!(
            dev_kvm,
            "KVM was asked for but this host does not look able to run it"
        );
    }
    accel
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTEL: &str = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse msr vmx ssse3\nbugs\t\t: spectre_v1\n";
    const AMD: &str = "processor\t: 0\nflags\t\t: fpu svm sse4a\n";
    const NESTED_NO_VIRT: &str =
        "processor\t: 0\nflags\t\t: fpu vme hypervisor ssse3 vmxnotreally\nvmx flags\t: vnmi\n";

    #[test]
    fn flags() {
        assert!(cpuinfo_has_virt(INTEL));
        assert!(cpuinfo_has_virt(AMD));
        // `vmx flags` lines and look-alike words do not count.
        assert!(!cpuinfo_has_virt(NESTED_NO_VIRT));
        assert!(!cpuinfo_has_virt(""));
    }

    #[test]
    fn resolution() {
        assert_eq!(resolve(AccelChoice::Auto, INTEL, true), Accel::Kvm);
        assert_eq!(resolve(AccelChoice::Auto, INTEL, false), Accel::Tcg);
        assert_eq!(resolve(AccelChoice::Auto, NESTED_NO_VIRT, true), Accel::Tcg);
        assert_eq!(resolve(AccelChoice::Tcg, AMD, true), Accel::Tcg);
        assert_eq!(resolve(AccelChoice::Kvm, "", false), Accel::Kvm);
    }

    #[test]
    fn serde_names() {
        let choice: AccelChoice = serde_json::from_str("\"auto\"").expect("parses");
        assert_eq!(choice, AccelChoice::Auto);
        assert_eq!(
            serde_json::to_string(&AccelChoice::Kvm).ok().as_deref(),
            Some("\"kvm\"")
        );
        assert_eq!(Accel::Tcg.as_str(), "tcg");
    }
}
