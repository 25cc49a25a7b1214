//! Running one scenario against one server: the temporary static root, the load
//! runs, the idle-memory measurement.

use super::*;

/// The temporary `--root` with the large-response files, removed when dropped.
pub(super) struct StaticRoot {
    pub(super) dir: PathBuf,
}

impl StaticRoot {
    pub(super) fn create() -> Result<StaticRoot, String> {
        let dir = std::env::temp_dir().join(format!("gvhttpd-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the static root {}: {e}", dir.display()))?;
        let root = StaticRoot { dir };
        let files = LARGE_FILES
            .iter()
            .map(|(n, s)| (n.to_string(), *s))
            .chain(mix_files());
        for (name, size) in files {
            let p = root.dir.join(name);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            std::fs::write(&p, file_bytes(size))
                .map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        }
        Ok(root)
    }
}

/// The bytes of a static file of `size` bytes as the comparison writes it:
/// incompressible-looking (xorshift seeded by the size), so nothing can
/// shortcut them, and reproducible, so a download can be checked byte for byte.
pub fn file_bytes(size: u64) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15 ^ size;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

impl Drop for StaticRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) struct Ctx<'a> {
    pub(super) exe: &'a Path,
    pub(super) server_cpus: &'a [usize],
    pub(super) load_cpus: &'a [usize],
    pub(super) duration: Duration,
    pub(super) warmup: Duration,
    pub(super) idle_conns: usize,
    pub(super) root: &'a Path,
    /// `--serve-arg`s, for every model's server.
    pub(super) serve_args: &'a [String],
    /// The heavy requests of `skew`.
    pub(super) skew_path: String,
    /// Concurrent downloads in `downloads`.
    pub(super) downloads: usize,
    /// CPUs of the `proxy` scenario's backend.
    pub(super) backend_cpus: &'a [usize],
    /// CPUs of the `scaling` scenario's servers ([`scaling_cpus`]).
    pub(super) scaling_cpus: &'a [usize],
}

/// One load of a run.
#[derive(Debug, Clone, Copy)]
pub(super) struct LoadSpec<'a> {
    pub(super) path: &'a str,
    pub(super) connections: u64,
    pub(super) pipeline: u64,
    pub(super) rate: Option<f64>,
    pub(super) keepalive: bool,
    /// Further paths each connection requests in turn after `path` (`--also`).
    pub(super) also: &'a [String],
    /// The backend behind the server (`proxy`): its CPU is measured apart.
    pub(super) backend: Option<u32>,
    /// CPUs the server runs on, when not all the server CPUs (`scaling`).
    pub(super) server_cores: Option<usize>,
    /// `--recv-buffer` of the load (`large`: [`LARGE_RECV_BUFFER`]).
    pub(super) recv_buffer: Option<u64>,
}

impl LoadSpec<'_> {
    pub(super) fn closed(path: &str, connections: u64) -> LoadSpec<'_> {
        LoadSpec {
            path,
            connections,
            pipeline: 1,
            rate: None,
            keepalive: true,
            also: &[],
            backend: None,
            server_cores: None,
            recv_buffer: None,
        }
    }
}

impl Ctx<'_> {
    pub(super) fn opts(&self, workers: usize) -> StartOpts<'_> {
        self.opts_on(self.server_cpus, workers)
    }

    /// Start options on some of the server CPUs.
    pub(super) fn opts_on<'c>(&'c self, cpus: &'c [usize], workers: usize) -> StartOpts<'c> {
        StartOpts {
            cpus,
            workers,
            root: self.root,
            serve_args: self.serve_args,
            upstream: None,
        }
    }

    /// The `proxy` scenario's backend: gvhttpd's tokio model with one worker on
    /// the backend CPUs, fresh for each run like the server in front of it.
    pub(super) fn start_backend(&self) -> Result<Server, String> {
        let o = StartOpts {
            cpus: self.backend_cpus,
            workers: 1,
            root: self.root,
            serve_args: &[],
            upstream: None,
        };
        Server::start(self.exe, &Target::Model("tokio".into()), &o)
            .map_err(|(StartError::Unavailable(e) | StartError::Failed(e))| e)
    }

    /// Starts a target once to learn whether it is available.
    pub(super) fn probe(&self, t: &Target) -> ModelStatus {
        let peer = match t {
            Target::Peer { command, .. } => Some(command.clone()),
            Target::Model(_) => None,
        };
        let name = t.name().to_string();
        match Server::start(self.exe, t, &self.opts(self.server_cpus.len())) {
            Ok(_) => ModelStatus {
                name,
                available: true,
                reason: None,
                peer,
            },
            Err(StartError::Unavailable(why) | StartError::Failed(why)) => {
                eprintln!("gvhttpd bench compare: {name} unavailable: {why}");
                ModelStatus {
                    name,
                    available: false,
                    reason: Some(why),
                    peer,
                }
            }
        }
    }

    pub(super) fn run_one(
        &self,
        t: &Target,
        s: &Scenario,
        point: Option<&Point>,
        repeat: u32,
        rate: Option<f64>,
    ) -> Run {
        let mut run = Run::new(t.name(), s.name, repeat, point);
        let (workers, cpus) = match (s.kind, point) {
            (Kind::Skew, _) => (SKEW_WORKERS, self.server_cpus),
            // w workers on the first w scaling CPUs.
            (Kind::Scaling, Some(p)) => {
                let w = (p.value as usize).clamp(1, self.scaling_cpus.len().max(1));
                (w, &self.scaling_cpus[..w.min(self.scaling_cpus.len())])
            }
            _ => (self.server_cpus.len(), self.server_cpus),
        };
        // proxy: the backend first, so the server can be pointed at it.
        let backend = if s.kind == Kind::Proxy {
            match self.start_backend() {
                Ok(b) => Some(b),
                Err(e) => {
                    run.error = Some(format!("the backend did not start: {e}"));
                    return run;
                }
            }
        } else {
            None
        };
        let upstream = backend.as_ref().map(|b| b.addr);
        // downloads: every model gets the same generous send timeout (a
        // download may stall for the whole scenario), after the --serve-args.
        let serve_args: Vec<String> = if s.kind == Kind::Downloads {
            let t = format!("{}s", downloads::SEND_TIMEOUT.as_secs());
            self.serve_args
                .iter()
                .cloned()
                .chain(
                    DOWNLOAD_SERVE_FLAGS
                        .iter()
                        .flat_map(|f| [f.to_string(), t.clone()]),
                )
                .collect()
        } else {
            self.serve_args.to_vec()
        };
        let opts = StartOpts {
            upstream,
            serve_args: &serve_args,
            ..self.opts_on(cpus, workers)
        };
        let mut server = match Server::start(self.exe, t, &opts) {
            Ok(srv) => srv,
            Err(StartError::Unavailable(e) | StartError::Failed(e)) => {
                run.error = Some(match upstream {
                    Some(a) => format!("started to proxy to {a}: {e}"),
                    None => e,
                });
                return run;
            }
        };
        let value = point.map_or(0.0, |p| p.value);
        let result = match s.kind {
            Kind::Load {
                path,
                connections,
                pipeline,
                rate,
                keepalive,
            } => self
                .load(
                    &server,
                    LoadSpec {
                        path,
                        connections,
                        pipeline,
                        rate,
                        keepalive,
                        also: &[],
                        backend: None,
                        server_cores: None,
                        recv_buffer: None,
                    },
                )
                .map(|r| run.report = Some(r)),
            Kind::Idle => idle(&mut server, self.idle_conns).map(|r| run.idle = Some(r)),
            Kind::Sweep | Kind::Bound => {
                let spec = LoadSpec {
                    rate,
                    ..LoadSpec::closed("/", SWEEP_CONNECTIONS)
                };
                self.load(&server, spec).map(|r| run.report = Some(r))
            }
            Kind::Scaling => {
                let pipeline = SCALING_SHAPES
                    .iter()
                    .find(|(shape, _)| point.is_some_and(|p| p.label.ends_with(shape)))
                    .map_or(1, |s| s.1);
                let spec = LoadSpec {
                    pipeline,
                    server_cores: Some(workers),
                    ..LoadSpec::closed("/", SWEEP_CONNECTIONS)
                };
                self.load(&server, spec).map(|r| run.report = Some(r))
            }
            Kind::Cost => {
                let spec = LoadSpec {
                    rate,
                    ..LoadSpec::closed("/", COST_CONNECTIONS)
                };
                let traced = point.is_some_and(|p| p.label == COST_POINTS[1]);
                self.cost(&server, spec, traced).map(|(r, extra)| {
                    run.report = Some(r);
                    run.extra = Some(extra);
                })
            }
            Kind::Skew => {
                let (light, heavy) = self.skew(&server);
                run.heavy = heavy.as_ref().ok().cloned();
                light.map(|r| run.report = Some(r)).and(
                    heavy
                        .map(|_| ())
                        .map_err(|e| format!("heavy requests: {e}")),
                )
            }
            Kind::Busy => self
                .load(&server, LoadSpec::closed("/", value as u64))
                .map(|r| run.report = Some(r)),
            Kind::Large if point.is_some_and(|p| p.label == MIX_LABEL) => {
                // Every connection requests the mix's files in turn.
                let paths: Vec<String> = mix_files()
                    .iter()
                    .map(|(name, _)| format!("/static/{name}"))
                    .collect();
                let spec = LoadSpec {
                    also: &paths[1..],
                    recv_buffer: Some(LARGE_RECV_BUFFER),
                    ..LoadSpec::closed(&paths[0], LARGE_CONNECTIONS)
                };
                self.load(&server, spec).map(|r| run.report = Some(r))
            }
            Kind::Large => {
                let file = LARGE_FILES
                    .iter()
                    .find(|f| f.1 as f64 == value)
                    .map_or(LARGE_FILES[0].0, |f| f.0);
                let path = format!("/static/{file}");
                let spec = LoadSpec {
                    recv_buffer: Some(LARGE_RECV_BUFFER),
                    ..LoadSpec::closed(&path, LARGE_CONNECTIONS)
                };
                self.load(&server, spec).map(|r| run.report = Some(r))
            }
            Kind::Downloads => self.downloads(&server).map(|d| run.downloads = Some(d)),
            Kind::Proxy => {
                let spec = LoadSpec {
                    backend: backend.as_ref().map(|b| b.pid),
                    ..LoadSpec::closed(PROXY_PATH, PROXY_CONNECTIONS)
                };
                self.load(&server, spec).map(|r| run.report = Some(r))
            }
        };
        if let Err(e) = result {
            run.error = Some(e);
        }
        if !server.alive() {
            run.error
                .get_or_insert_with(|| "the server exited during the run".into());
        }
        if let Some(mut b) = backend {
            if !b.alive() {
                run.error
                    .get_or_insert_with(|| "the backend exited during the run".into());
            }
        }
        run
    }

    /// `downloads`: [`downloads::measure`] against the 1 MiB file; a run in
    /// which no download was in flight at the measurement has no figure.
    pub(super) fn downloads(&self, server: &Server) -> Result<downloads::DownloadsResult, String> {
        let (name, size) = DOWNLOAD_FILE;
        let expected = file_bytes(size);
        let path = format!("/static/{name}");
        let r = downloads::measure(&downloads::Options {
            addr: server.addr,
            pid: server.pid,
            path: &path,
            expected: &expected,
            downloads: self.downloads,
            drain_deadline: downloads::drain_deadline(self.downloads),
            drain_wave: downloads::DRAIN_WAVE,
        })?;
        if r.in_flight == 0 && r.errors < r.downloads {
            return Err(format!(
                "no download was in flight when the memory was read ({} of {} intact): \
                 the figure would divide by zero",
                r.intact, r.downloads
            ));
        }
        Ok(r)
    }

    /// One `cost` run: the load, with the server's `/stats` io_uring counters
    /// read around it, and (`traced`) its syscalls counted by perf.
    pub(super) fn cost(
        &self,
        server: &Server,
        spec: LoadSpec<'_>,
        traced: bool,
    ) -> Result<(Report, breakdown::Extra), String> {
        let stats = || fetch(&server.addr, "/stats").and_then(|s| breakdown::parse_stats(&s));
        let before = stats();
        let tracer = traced.then(|| breakdown::Tracer::start(server.pid));
        let report = self.load(server, spec);
        let counted = tracer.map(|t| t.and_then(breakdown::Tracer::finish));
        let report = report?;
        let mut extra = breakdown::Extra::default();
        match counted {
            Some(Ok((n, secs))) if secs > 0.0 && report.result.req_per_s > 0.0 => {
                extra.syscalls_per_request = Some(n as f64 / secs / report.result.req_per_s)
            }
            Some(Ok(_)) => extra.syscalls_na = Some("perf counted no time or no requests".into()),
            Some(Err(e)) => extra.syscalls_na = Some(e),
            None => {}
        }
        if let (Some(b), Some(a)) = (before, stats()) {
            if let Some((sqes, enters)) = breakdown::uring_per_request(b, a) {
                extra.uring_sqes_per_request = Some(sqes);
                extra.uring_enters_per_request = Some(enters);
            }
        }
        Ok((report, extra))
    }

    /// Heavy closed-loop `/work` and light open-loop `/` at the same time; (light, heavy).
    pub(super) fn skew(&self, server: &Server) -> (Result<Report, String>, Result<Report, String>) {
        let heavy = LoadSpec::closed(&self.skew_path, SKEW_HEAVY_CONNECTIONS);
        let light = LoadSpec {
            rate: Some(SKEW_LIGHT_RATE),
            ..LoadSpec::closed("/", SKEW_LIGHT_CONNECTIONS)
        };
        std::thread::scope(|sc| {
            let h = sc.spawn(|| self.load(server, heavy));
            let l = self.load(server, light);
            let h = h
                .join()
                .unwrap_or_else(|_| Err("the heavy load thread panicked".into()));
            (l, h)
        })
    }

    pub(super) fn load(&self, server: &Server, spec: LoadSpec<'_>) -> Result<Report, String> {
        let cpus = self
            .load_cpus
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let args = LoadArgs {
            url: Some(format!("http://{}{}", server.addr, spec.path)),
            connections: spec.connections,
            threads: None,
            cpus: Some(cpus),
            duration: Some(format!("{}s", self.duration.as_secs_f64())),
            requests: None,
            warmup: format!("{}s", self.warmup.as_secs_f64()),
            rate: spec.rate,
            start_at: None,
            timeout: "10s".into(),
            headers: Vec::new(),
            method: "GET".into(),
            body: None,
            body_file: None,
            also: spec.also.to_vec(),
            pipeline: spec.pipeline,
            no_keepalive: !spec.keepalive,
            recv_buffer: spec.recv_buffer,
            json: None,
            hgrm: None,
            server_pid: Some(server.pid),
            quiet: true,
            progress: false,
            no_summary: true,
        };
        let (mut plan, config) = cli::plan(&args).map_err(|e| e.0)?;
        plan.server_cores = Some(spec.server_cores.unwrap_or(self.server_cpus.len()));
        plan.backend_pid = spec.backend;
        let out = engine::run(&plan)?;
        let report = Report::new(config, &plan, &out);
        if report.result.successes == 0 {
            let c = &report.result.counts;
            return Err(format!(
                "no successful responses to {}: {} 4xx, {} 5xx, {} transport errors",
                spec.path,
                c.status_4xx,
                c.status_5xx,
                c.transport_errors()
            ));
        }
        Ok(report)
    }
}

/// The body of `GET path` on a new connection to `addr` (`None` on any failure
/// or a status other than 200: a peer without `/stats`, or bench routes off).
fn fetch(addr: &std::net::SocketAddr, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(2)).ok()?;
    c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut got = Vec::new();
    c.read_to_end(&mut got).ok()?;
    let text = String::from_utf8(got).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Send one `GET /` on `c` and read its whole response (headers, then as many
/// body bytes as `Content-Length` says); the connection stays open.
fn one_request(
    mut c: std::net::TcpStream,
    addr: &std::net::SocketAddr,
) -> std::io::Result<std::net::TcpStream> {
    use std::io::{Read, Write};
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(c, "GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut got = Vec::with_capacity(512);
    let mut buf = [0u8; 512];
    loop {
        let n = c.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
        let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if got.len() >= end + 4 + len {
            return Ok(c);
        }
    }
}

/// Opens `n` keep-alive connections, has each serve one `GET /` (so the figure is
/// what a connection costs once it has been used, not before its first request),
/// leaves them all idle, and measures the server's RSS growth.
fn idle(server: &mut Server, n: usize) -> Result<IdleResult, String> {
    let pid = server.pid.to_string();
    std::thread::sleep(Duration::from_millis(200));
    let before = crate::sys::status_kib(&pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let c = std::net::TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
            .and_then(|c| one_request(c, &server.addr))
            .map_err(|e| format!("idle connection {i} of {n} failed: {e}"))?;
        conns.push(c);
    }
    // Let the server accept and set up every connection.
    std::thread::sleep(Duration::from_millis(1500));
    if !server.alive() {
        return Err("the server exited while holding idle connections".into());
    }
    let after = crate::sys::status_kib(&pid, "VmRSS").ok_or("cannot read the server's RSS")?;
    drop(conns);
    Ok(IdleResult {
        connections: n,
        rss_before_kib: before,
        rss_after_kib: after,
        bytes_per_connection: after.saturating_sub(before) as f64 * 1024.0 / n.max(1) as f64,
    })
}
