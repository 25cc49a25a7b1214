//! `cargo run --release -p loadgen --example bench -- --url http://127.0.0.1:8080/ -c64 -d5s`:
//! the same load generator as `gvhttpd bench`, runnable without the gvhttpd binary.
use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bench")]
struct Cli {
    #[command(flatten)]
    bench: loadgen::cli::BenchArgs,
}

fn main() -> std::process::ExitCode {
    loadgen::cli::run(Cli::parse().bench)
}
