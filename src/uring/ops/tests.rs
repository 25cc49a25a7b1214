//! The owned ops hand their memory back with the completion that ends them, over
//! real loopback sockets and files.

use std::ffi::CString;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::*;
use crate::uring::{skip_if_unavailable, OpKind, Token, UringOptions};

const SEND: OpKind = OpKind::new(1);
const RECV: OpKind = OpKind::new(2);
const FILE: OpKind = OpKind::new(3);

fn ring() -> Option<Ring> {
    if skip_if_unavailable() {
        return None;
    }
    Some(
        Ring::new(&UringOptions {
            entries: 8,
            sqpoll: false,
        })
        .expect("ring setup"),
    )
}

/// Submit and reap until a completion for `token` arrives (bounded: 5 s).
fn wait_token(r: &mut Ring, token: Token) -> Completion {
    let end = Instant::now() + Duration::from_secs(5);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < end, "no completion for {token:?}");
        r.submit_and_wait(1).expect("enter");
        r.reap(&mut out);
        if let Some(i) = out.iter().position(|c| c.token == token) {
            return out.swap_remove(i);
        }
    }
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    (c, s)
}

#[test]
fn send_and_recv_give_their_buffers_back() {
    let Some(mut r) = ring() else { return };
    let (mut client, server) = tcp_pair();
    let tok = Token::new(4, 1, SEND);
    r.send(server.as_fd(), b"xxhello".to_vec(), 2..7, tok)
        .unwrap();
    let mut c = wait_token(&mut r, tok);
    assert_eq!(c.result, 5);
    assert_eq!(c.take_buf().as_deref(), Some(&b"xxhello"[..]));
    assert!(c.take_buf().is_none(), "handed back once");
    let mut got = [0u8; 5];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hello");

    let tok = Token::new(4, 1, RECV);
    client.write_all(b"abc").unwrap();
    r.recv(server.as_fd(), vec![b'-'; 8], 3, tok).unwrap();
    let mut c = wait_token(&mut r, tok);
    assert_eq!(c.result, 3);
    assert_eq!(c.take_buf().as_deref(), Some(&b"---abc--"[..]));
    assert_eq!(r.owned_in_flight(), 0);
}

#[test]
fn a_cancelled_recv_keeps_its_buffer_until_its_completion() {
    let Some(mut r) = ring() else { return };
    let (_client, server) = tcp_pair();
    let tok = Token::new(9, 3, RECV);
    r.recv(server.as_fd(), vec![7; 64], 0, tok).unwrap();
    r.submit_and_wait(0).unwrap();
    assert_eq!(r.owned_in_flight(), 1, "the table owns the buffer");
    r.push_cancel(tok, Token::internal(OpKind::CANCEL));
    let mut c = wait_token(&mut r, tok);
    assert_eq!(c.result, -libc::ECANCELED);
    assert_eq!(c.take_buf(), Some(vec![7; 64]), "buffer back, untouched");
    assert_eq!(r.owned_in_flight(), 0);
}

#[test]
fn a_second_op_on_a_busy_token_is_refused_with_its_buffer() {
    let Some(mut r) = ring() else { return };
    let (_client, server) = tcp_pair();
    let tok = Token::new(1, 0, RECV);
    r.recv(server.as_fd(), vec![0; 16], 0, tok).unwrap();
    let Err(Busy(Some(back))) = r.recv(server.as_fd(), vec![1; 4], 0, tok) else {
        panic!("a second owned op on the same token was accepted");
    };
    assert_eq!(back, vec![1; 4]);
    r.push_cancel(tok, Token::internal(OpKind::CANCEL));
    let mut c = wait_token(&mut r, tok);
    assert_eq!(c.take_buf().map(|b| b.len()), Some(16));
}

#[test]
fn open_stat_and_read_beneath_a_directory() {
    let Some(mut r) = ring() else { return };
    let dir = std::env::temp_dir().join(format!("gvhttpd-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("f.txt"), b"0123456789").unwrap();
    let root = crate::files::StaticRoot::open(&dir).unwrap();
    let (flags, resolve) = (crate::files::OPEN_FLAGS, crate::files::OPEN_RESOLVE);

    let tok = Token::new(2, 0, FILE);
    let path = CString::new("f.txt").unwrap();
    r.openat2(root.fd(), path, flags, resolve, tok).unwrap();
    let mut c = wait_token(&mut r, tok);
    let fd = c.take_fd().expect("opened");

    r.statx(fd.as_fd(), tok).unwrap();
    let c = wait_token(&mut r, tok);
    let st = c.stat().expect("stat");
    assert_eq!(st.size, 10);
    assert_eq!(st.mode & libc::S_IFMT, libc::S_IFREG);
    // The validators' inputs: the same modification time and inode as fstat's.
    let meta = std::fs::metadata(dir.join("f.txt")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (st.mtime_sec, i64::from(st.mtime_nsec), st.ino),
        (meta.mtime(), meta.mtime_nsec(), meta.ino())
    );

    r.read_at(fd.as_fd(), vec![0; 8], 4, 3, tok).unwrap();
    let mut c = wait_token(&mut r, tok);
    assert_eq!(c.result, 4);
    assert_eq!(c.take_buf().as_deref(), Some(&b"3456\0\0\0\0"[..]));

    let escape = CString::new("../f.txt").unwrap();
    r.openat2(root.fd(), escape, flags, resolve, tok).unwrap();
    let mut c = wait_token(&mut r, tok);
    assert!(c.result < 0, "escaped the root: {}", c.result);
    assert!(c.take_fd().is_none());
    assert_eq!(r.owned_in_flight(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn accepted_connections_arrive_as_owned_descriptors() {
    let Some(mut r) = ring() else { return };
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let tok = Token::new(0, 0, FILE);
    let multi = r.features().multishot_accept;
    r.accept(l.as_fd(), multi, false, tok).unwrap();
    let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let mut c = wait_token(&mut r, tok);
    let fd = c.take_fd().expect("accepted");
    assert!(rustix::fs::fstat(&fd).is_ok());
    if multi {
        assert!(c.more());
        r.push_cancel(tok, Token::internal(OpKind::CANCEL));
        let c = wait_token(&mut r, tok);
        assert!(!c.more());
    }
    assert_eq!(r.owned_in_flight(), 0);
}

#[test]
fn dropping_the_ring_with_owned_ops_in_flight_drains_them() {
    let Some(mut r) = ring() else { return };
    let (_client, server) = tcp_pair();
    for slot in 0..4 {
        r.recv(server.as_fd(), vec![0; 1024], 0, Token::new(slot, 0, RECV))
            .unwrap();
    }
    r.submit_and_wait(0).unwrap();
    assert_eq!(r.owned_in_flight(), 4);
    assert!(r.drain(Duration::from_secs(5)), "ops left in flight");
    assert_eq!(
        r.owned_in_flight(),
        0,
        "every buffer came back and was freed"
    );
}
