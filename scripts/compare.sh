#!/usr/bin/env bash
# Full model comparison into results/<date>-<host>/ (README.md, raw.json,
# summary.md with the answer per scenario, SVG plots). Every available model is
# started by `gvhttpd bench compare` itself; unavailable ones are listed as such.
#
#   scripts/compare.sh                              # defaults: the whole matrix
#   scripts/compare.sh --quick                      # smoke run: one round, every row undecided
#   BUDGET=40m DURATION=3s scripts/compare.sh       # longer (env: REPEAT = minimum rounds,
#                                                   # BUDGET, DURATION, WARMUP, SERVER_CPUS,
#                                                   # LOAD_CPUS, OUT)
#   scripts/compare.sh --models tokio --scenarios sweep,skew
#   scripts/compare.sh --peer ref='target/release/gvhttpd serve --model tokio --addr 127.0.0.1:{port} --workers {workers} --root {root}'
#   NGINX=1 scripts/compare.sh                      # nginx as a reference row (--peer)
#   NGINX=1 HAPROXY=1 scripts/compare.sh --scenarios proxy   # the proxy scenario with both peers
#
# Defaults (of `bench compare`): server on CPU 0, load on CPU 1, runs of 1 s
# (+0.3 s warm-up); every scenario gets 6 interleaved rounds, then the ones
# whose answer is still undecided get more until resolved, 30 rounds, or the
# 20-minute --budget. Each run writes a new results folder. Scenarios:
# plaintext, pipelined, json, sleep, idle, churn, skew, busy, large, cost,
# bound, downloads, proxy (--scenarios all adds sweep and scaling).
set -euo pipefail

# As a --peer command: one single-process nginx serving the same routes it can
# (/, /plaintext, /json, /static/) on 127.0.0.1:PORT from ROOT, in the foreground;
# with UPSTREAM (HOST:PORT, the proxy scenario's backend) it also forwards
# /proxy/... to it as /... over HTTP/1.1 keep-alive connections it keeps pooled.
#   scripts/compare.sh --nginx-peer PORT ROOT [UPSTREAM]
if [[ "${1:-}" == --nginx-peer ]]; then
    # nginx's prefix (temp files, pid) lives in the run's static root, which
    # bench compare removes when it is done.
    port=$2 root=$3 upstream=${4:-} dir="$3/.nginx-$2"
    mkdir -p "$dir"
    upstream_block="" proxy_location=""
    if [[ -n "$upstream" ]]; then
        # keepalive: idle upstream connections kept per worker (more than the
        # scenario's 64 client connections, so none is closed for want of room);
        # keepalive_requests: never retire a pooled connection during a run.
        upstream_block="upstream backend { server $upstream; keepalive 128; keepalive_requests 1000000; }"
        proxy_location='location /proxy/ { proxy_pass http://backend/; proxy_http_version 1.1; proxy_set_header Connection ""; }'
    fi
    cat > "$dir/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr crit;
events { worker_connections 20000; }
http {
    access_log off;
    log_not_found off;
    sendfile on;
    # The same send timeout bench compare gives its models in the downloads
    # scenario (--write-timeout 600s), where a download may stall for minutes.
    send_timeout 600s;
    $upstream_block
    server {
        listen 127.0.0.1:$port backlog=4096;
        keepalive_requests 1000000;
        location = / { default_type "text/plain; charset=utf-8"; return 200 "Hello, World!"; }
        location = /plaintext { default_type "text/plain; charset=utf-8"; return 200 "Hello, World!"; }
        location = /json { default_type application/json; return 200 '{"message":"Hello, World!"}'; }
        location /static/ { alias $root/; }
        $proxy_location
    }
}
CONF
    exec nginx -p "$dir" -c "$dir/nginx.conf"
fi

# As a --peer command: one HAProxy process with one thread, in the foreground,
# forwarding /proxy/... to UPSTREAM as /... over pooled keep-alive connections
# (`http-reuse always`); everything else is 404 (it serves no files).
#   scripts/compare.sh --haproxy-peer PORT ROOT UPSTREAM
if [[ "${1:-}" == --haproxy-peer ]]; then
    port=$2 upstream=$4 dir="$3/.haproxy-$2"
    mkdir -p "$dir"
    cat > "$dir/haproxy.cfg" <<CONF
global
    nbthread 1
    # Within the descriptors bench compare allows (two per proxied connection).
    maxconn 5000
    log stderr format raw local0 emerg
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    option http-keep-alive
frontend fe
    bind 127.0.0.1:$port backlog 4096
    http-request return status 404 content-type text/plain string "Not Found" unless { path_beg /proxy/ }
    use_backend backend
backend backend
    http-reuse always
    http-request set-path %[path,regsub(^/proxy/,/)]
    server s1 $upstream
CONF
    # -db: stay in the foreground, one process (no master-worker).
    exec haproxy -db -f "$dir/haproxy.cfg"
fi

cd "$(dirname "$0")/.."
cargo build --release --quiet
# 10,000 idle (and 10,000 busy) connections need that many descriptors in the
# generator and the server (which inherits the limit).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
args=(--server-cpus "${SERVER_CPUS:-0}" --load-cpus "${LOAD_CPUS:-1}" --out "${OUT:-results}")
# Only what the environment sets, so that --quick keeps its own defaults.
[[ -n "${REPEAT:-}" ]] && args+=(--repeat "$REPEAT")
[[ -n "${DURATION:-}" ]] && args+=(--duration "$DURATION")
[[ -n "${WARMUP:-}" ]] && args+=(--warmup "$WARMUP")
[[ -n "${BUDGET:-}" ]] && args+=(--budget "$BUDGET")
# NGINX=1: nginx as a reference row (it has no /sleep or /work, so those runs
# fail for it and its rows there are "not comparable"); it proxies in `proxy`.
if [[ -n "${NGINX:-}" ]]; then
    command -v nginx >/dev/null || { echo "NGINX=1 but no nginx on PATH" >&2; exit 2; }
    args+=(--peer "nginx=$PWD/scripts/compare.sh --nginx-peer {port} {root} {upstream}")
fi
# HAPROXY=1: HAProxy as a reference row; it only proxies, so outside the proxy
# scenario its runs fail and its rows are "not comparable" (give --scenarios proxy).
if [[ -n "${HAPROXY:-}" ]]; then
    command -v haproxy >/dev/null || { echo "HAPROXY=1 but no haproxy on PATH" >&2; exit 2; }
    args+=(--peer "haproxy=$PWD/scripts/compare.sh --haproxy-peer {port} {root} {upstream}")
fi
exec target/release/gvhttpd bench compare "${args[@]}" "$@"
