//! The Rust version this repository states (`rust-version` in Cargo.toml, and the
//! README) is one that can build the committed lock file: no locked dependency
//! asks for a newer compiler, through its own `rust-version` or its edition.
//!
//! CI cannot install a second toolchain to try the stated one, so this reads what
//! each locked package declares (`cargo metadata --locked`); clippy's
//! `incompatible_msrv` lint checks our own code against the same version.

use std::process::Command;

/// `1.85` or `1.85.0` → (1, 85, 0).
fn version(v: &str) -> (u32, u32, u32) {
    let mut n = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
        n.next().unwrap_or(0),
    )
}

/// The oldest Rust an edition builds with.
fn edition_needs(edition: &str) -> (u32, u32, u32) {
    match edition {
        "2015" => (1, 0, 0),
        "2018" => (1, 31, 0),
        "2021" => (1, 56, 0),
        "2024" => (1, 85, 0),
        other => panic!("edition {other} is newer than this test knows: add its first Rust"),
    }
}

#[test]
fn the_stated_rust_version_builds_every_locked_dependency() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata --locked failed (is Cargo.lock out of date?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = meta["packages"].as_array().unwrap();
    let ours = packages
        .iter()
        .find(|p| p["name"] == "gvhttpd")
        .and_then(|p| p["rust_version"].as_str())
        .expect("Cargo.toml states a rust-version");
    let stated = version(ours);
    let mut too_new = Vec::new();
    for p in packages {
        let declared = p["rust_version"].as_str().map_or((0, 0, 0), version);
        let edition = edition_needs(p["edition"].as_str().unwrap_or("2015"));
        let needs = declared.max(edition);
        if needs > stated {
            too_new.push(format!(
                "{} {} needs Rust {}.{}.{} (rust-version {:?}, edition {})",
                p["name"].as_str().unwrap_or("?"),
                p["version"].as_str().unwrap_or("?"),
                needs.0,
                needs.1,
                needs.2,
                p["rust_version"].as_str().unwrap_or("none"),
                p["edition"].as_str().unwrap_or("?"),
            ));
        }
    }
    assert!(
        too_new.is_empty(),
        "Cargo.toml states rust-version {ours}, but the lock file holds:\n{}",
        too_new.join("\n")
    );
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(&format!("Rust {ours} or later")),
        "the README states the Rust version of Cargo.toml ({ours})"
    );
}
