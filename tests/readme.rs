//! Every `sh` block of README.md and of the documents in docs/ runs as written,
//! with only these changes so that it is quick and cannot collide with anything
//! else on the machine:
//! - `cargo build --release`, `cargo install --path .`, `cargo run` and `cargo test`
//!   lines are skipped (this test runs inside `cargo test`, on the debug build; the
//!   quick start's `cargo run --release -- serve` is the same server as the blocks
//!   after it start by path);
//! - `./target/release/gvhttpd` is the debug binary cargo built for this test;
//! - port 8080 becomes a free port (and a `serve` without `--addr` gets that port);
//! - durations: `-d 10s` becomes `-d 1s`, `--warmup 2s` becomes `--warmup 200ms`;
//! - `taskset -c N` is dropped (the machine may have a single CPU).
//!
//! A block using a tool that is not installed (`wrk`, say) is skipped, loudly.
//! Each block runs in its own process group in a scratch directory and is killed
//! whole if it takes longer than a minute.

use std::os::unix::process::CommandExt as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gvhttpd");
const README: &str = include_str!("../README.md");

/// (name, text) of README.md and every `docs/*.md`.
fn documents() -> Vec<(String, String)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut docs: Vec<(String, String)> = std::fs::read_dir(format!("{root}/docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            let name = format!("docs/{}", p.file_name().unwrap().to_string_lossy());
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    docs.sort();
    docs.insert(0, ("README.md".into(), README.to_string()));
    docs
}

/// (first line number, text) of every fenced block whose info string is `sh`.
fn sh_blocks(md: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    for (i, line) in md.lines().enumerate() {
        match &mut cur {
            None if line.trim_end() == "```sh" => cur = Some((i + 2, String::new())),
            Some(_) if line.trim_end() == "```" => out.extend(cur.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(cur.is_none(), "README.md has an unclosed sh block");
    out
}

fn adapt(block: &str, port: u16) -> String {
    let mut out = String::new();
    for line in block.lines() {
        let t = line.trim_start();
        if [
            "cargo build --release",
            "cargo install --path .",
            "cargo run",
            "cargo test",
        ]
        .iter()
        .any(|c| t.starts_with(c))
        {
            out.push_str(":\n");
            continue;
        }
        let mut l = line.replace("./target/release/gvhttpd", BIN);
        l = l.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
        if l.contains(" serve") && !l.contains("--addr") {
            l = l.replacen(" serve", &format!(" serve --addr 127.0.0.1:{port}"), 1);
        }
        for (from, to) in [
            ("-d 10s", "-d 1s"),
            ("-d10s", "-d1s"),
            ("--warmup 2s", "--warmup 200ms"),
        ] {
            l = l.replace(from, to);
        }
        while let Some(at) = l.find("taskset -c ") {
            let rest = &l[at + "taskset -c ".len()..];
            let end = rest.find(' ').map_or(rest.len(), |e| e + 1);
            l = format!("{}{}", &l[..at], &rest[end..]);
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn installed(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn every_sh_block_of_the_readme_and_docs_runs() {
    assert!(sh_blocks(README).len() >= 4, "README.md lost its sh blocks");
    let blocks: Vec<(String, usize, String)> = documents()
        .iter()
        .flat_map(|(name, text)| {
            sh_blocks(text)
                .into_iter()
                .map(move |(line, block)| (name.clone(), line, block))
        })
        .collect();
    let scratch = std::env::temp_dir().join(format!("gvhttpd-readme-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let mut ran = 0;
    for (doc, line, block) in &blocks {
        let missing: Vec<&str> = ["wrk", "curl", "taskset"]
            .into_iter()
            .filter(|t| block.contains(&format!("{t} ")) && !installed(t))
            .collect();
        if !missing.is_empty() {
            eprintln!("SKIPPED {doc}:{line}: needs {missing:?}");
            println!("SKIPPED {doc}:{line}: needs {missing:?}");
            continue;
        }
        let script = format!(
            "set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{}",
            adapt(block, free_port())
        );
        let mut child = Command::new("bash")
            .args(["-c", &script])
            .current_dir(&scratch)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > until {
                // The whole group: the block's shell and what it started.
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{doc}:{line} failed ({}):\n{script}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        ran += 1;
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    assert!(ran >= 3, "too few README blocks ran");
}

#[test]
fn adaptation_changes_only_what_it_says() {
    let b = "cargo build --release\n\
             taskset -c 0 ./target/release/gvhttpd serve --model tokio &\n\
             ./target/release/gvhttpd bench http://127.0.0.1:8080/ -c 64 -d 10s --warmup 2s\n";
    let a = adapt(b, 4242);
    assert_eq!(
        a,
        format!(
            ":\n{BIN} serve --addr 127.0.0.1:4242 --model tokio &\n\
             {BIN} bench http://127.0.0.1:4242/ -c 64 -d 1s --warmup 200ms\n"
        )
    );
    let blocks = sh_blocks("text\n```sh\na\nb\n```\n```text\nc\n```\n```sh\nd\n```\n");
    assert_eq!(blocks, vec![(3, "a\nb\n".into()), (10, "d\n".into())]);
}
