//! Server-side CPU per MB of three ways to send a file over a loopback TCP socket,
//! as the io_uring models would: (1) `sendfile(2)` on an O_NONBLOCK socket, poll
//! for POLLOUT on EAGAIN; (2) io_uring SPLICE file -> pipe -> socket (two linked
//! ops per chunk); (3) io_uring READ into a reused buffer + SEND (what the models
//! did). The reader is a separate process (its CPU is not counted); the sender's
//! CPU is getrusage(RUSAGE_SELF), which includes io_uring's io-wq threads.
//!
//! usage: splicebench <sendfile|splice|readsend> <file> <total MiB>
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring};

fn cpu_us() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 * 1e6 + tv.tv_usec as f64;
    t(ru.ru_utime) + t(ru.ru_stime)
}

const CHUNK: usize = 64 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "reader" {
        let mut s = TcpStream::connect(("127.0.0.1", args[2].parse::<u16>().unwrap())).unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        while s.read(&mut buf).unwrap() > 0 {}
        return;
    }
    let mode = args[1].clone();
    let file = std::fs::File::open(&args[2]).unwrap();
    let size = file.metadata().unwrap().len() as usize;
    let total: usize = args[3].parse::<usize>().unwrap() << 20;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let mut child = std::process::Command::new("taskset")
        .args(["-c", "1", &args[0], "reader", &port.to_string()])
        .spawn()
        .unwrap();
    let (sock, _) = l.accept().unwrap();
    let sfd = sock.as_raw_fd();
    let ffd = file.as_raw_fd();
    let mut ring = IoUring::new(64).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let (pr, pw) = {
        let mut p = [0; 2];
        unsafe { libc::pipe2(p.as_mut_ptr(), libc::O_CLOEXEC) };
        unsafe { libc::fcntl(p[1], libc::F_SETPIPE_SZ, CHUNK as i32) };
        (p[0], p[1])
    };
    if mode == "sendfile" {
        unsafe { libc::fcntl(sfd, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    let (c0, t0) = (cpu_us(), Instant::now());
    let mut sent = 0usize;
    let mut polls = 0u64;
    while sent < total {
        // one "request": the whole file
        let mut off = 0usize;
        while off < size {
            let want = (size - off).min(if mode == "sendfile" { size } else { CHUNK });
            let n = match mode.as_str() {
                "sendfile" => {
                    let mut o = off as libc::off_t;
                    let r = unsafe { libc::sendfile(sfd, ffd, &mut o, want) };
                    if r < 0 {
                        assert_eq!(std::io::Error::last_os_error().raw_os_error(), Some(libc::EAGAIN));
                        // readiness via io_uring, as the model does
                        let e = opcode::PollAdd::new(types::Fd(sfd), libc::POLLOUT as u32).build();
                        unsafe { ring.submission().push(&e).unwrap() };
                        ring.submit_and_wait(1).unwrap();
                        ring.completion().for_each(drop);
                        polls += 1;
                        0
                    } else {
                        r as usize
                    }
                }
                "splice" => {
                    let a = opcode::Splice::new(types::Fd(ffd), off as i64, types::Fd(pw), -1, want as u32)
                        .build()
                        .flags(squeue::Flags::IO_LINK)
                        .user_data(1);
                    let b = opcode::Splice::new(types::Fd(pr), -1, types::Fd(sfd), -1, want as u32)
                        .build()
                        .user_data(2);
                    unsafe {
                        ring.submission().push(&a).unwrap();
                        ring.submission().push(&b).unwrap();
                    }
                    ring.submit_and_wait(2).unwrap();
                    let mut moved = 0;
                    for c in ring.completion() {
                        assert!(c.result() >= 0, "splice {}: {}", c.user_data(), c.result());
                        if c.user_data() == 2 {
                            moved = c.result() as usize;
                        }
                    }
                    assert_eq!(moved, want, "short splice");
                    moved
                }
                _ => {
                    let a = opcode::Read::new(types::Fd(ffd), buf.as_mut_ptr(), want as u32)
                        .offset(off as u64)
                        .build();
                    unsafe { ring.submission().push(&a).unwrap() };
                    ring.submit_and_wait(1).unwrap();
                    let n = ring.completion().next().unwrap().result() as usize;
                    let mut done = 0;
                    while done < n {
                        let b = opcode::Send::new(types::Fd(sfd), buf[done..].as_ptr(), (n - done) as u32).build();
                        unsafe { ring.submission().push(&b).unwrap() };
                        ring.submit_and_wait(1).unwrap();
                        done += ring.completion().next().unwrap().result() as usize;
                    }
                    n
                }
            };
            off += n;
            sent += n;
        }
    }
    let (cpu, wall) = (cpu_us() - c0, t0.elapsed().as_secs_f64());
    drop(sock);
    child.wait().unwrap();
    let mb = sent as f64 / 1e6;
    println!(
        "{mode} file={} KiB: {:.0} us CPU/MB, {:.0} MB/s, polls {}",
        size / 1024,
        cpu / mb,
        mb / wall,
        polls
    );
}
