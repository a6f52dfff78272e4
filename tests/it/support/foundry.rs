//! The native Foundry binaries that tests and benches start (the benches compile this file
//! in through `benches/support`).
//!
//! `ADESCROW_FOUNDRY_BIN` names a directory of native binaries (a Foundry of one's own, such
//! as `~/.foundry/bin`), as for `scripts/`; without it, the binaries npm installed for this
//! platform. Never `node_modules/.bin/`: those are Node wrappers that exit 0 whatever the
//! tool returns, and killing one (as dropping an `AnvilInstance` does) leaves its anvil
//! running.

use std::path::PathBuf;

/// anvil, for `alloy::node_bindings::Anvil::at`.
pub fn anvil() -> PathBuf {
    native("anvil")
}

fn native(tool: &str) -> PathBuf {
    let path = match std::env::var_os("ADESCROW_FOUNDRY_BIN") {
        Some(dir) => PathBuf::from(dir).join(tool),
        None => {
            // The platform part of the npm packages' names (@foundry-rs/anvil-linux-amd64).
            let platform = match (std::env::consts::OS, std::env::consts::ARCH) {
                ("linux", "x86_64") => "linux-amd64",
                ("linux", "aarch64") => "linux-arm64",
                ("macos", "x86_64") => "darwin-amd64",
                ("macos", "aarch64") => "darwin-arm64",
                (os, arch) => panic!(
                    "Foundry's npm packages have no {tool} for {os} {arch}: install Foundry and set \
                     ADESCROW_FOUNDRY_BIN to its bin directory"
                ),
            };
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join(format!("node_modules/@foundry-rs/{tool}-{platform}/bin/{tool}"))
        }
    };
    assert!(
        path.is_file(),
        "{tool} not found at {}: run `source scripts/lib.sh && require_node_toolchain` (scripts/test \
         does) or set ADESCROW_FOUNDRY_BIN to a native Foundry's bin directory",
        path.display()
    );
    path
}
