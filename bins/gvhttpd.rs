//! `gvhttpd`: thin main (the CLI lands with the HTTP core).
fn main() -> std::process::ExitCode {
    eprintln!("gvhttpd: not built yet");
    std::process::ExitCode::from(2)
}
