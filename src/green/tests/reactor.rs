//! The edges of the op contract (issue 24, item 7): a blocking call never leaves
//! with its op in flight, and no op is refused after its task gave something up
//! to it (a task the backend could not name is refused at spawn instead).

use std::cell::Cell;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::Duration;

use crate::green::*;
use crate::uring::skip_if_unavailable;

/// Child half of `leaving_a_call_with_its_op_in_flight_aborts`: a green thread
/// parked in a read is dropped by force (its task removed from the table, as a bug
/// in the scheduler might) while the read is still the kernel's.
#[test]
#[ignore = "run as a child process by leaving_a_call_with_its_op_in_flight_aborts"]
fn vanished_reader_child() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let _client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let server = l.accept().unwrap().0;
    let mut rt = Runtime::new(&RuntimeOptions::default()).unwrap();
    let _ = rt.block_on(move || {
        let key = Rc::new(Cell::new(None));
        let k = Rc::clone(&key);
        let _reader = spawn(move || {
            k.set(Some(sched::current().unwrap().1));
            let mut s = net::GvtStream::from_std(server).unwrap();
            let _ = s.read(&mut [0u8; 64]); // nothing ever arrives
        });
        yield_now(); // the reader runs and parks in its read
        let (ctx, _) = sched::current().unwrap();
        let task = ctx.sched.borrow_mut().tasks.remove(key.get().unwrap());
        drop(ctx);
        drop(task); // unwinds the reader's coroutine through its read
    });
    println!("the reader's stack was freed under its read");
}

#[test]
fn leaving_a_call_with_its_op_in_flight_aborts() {
    // Issue 24, item 7: `push_and_wait` returned (or unwound) with its op in flight,
    // freeing the op's buffer under the kernel.
    if skip_if_unavailable() {
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "green::tests::reactor::vanished_reader_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{stderr}");
    assert!(stderr.contains("op still in flight"), "{stderr}");
}

#[test]
fn spawn_refuses_a_task_its_backend_cannot_name() {
    // Issue 24, item 7: a task whose slot index did not fit the dedicated reactor's
    // tag had its ops refused at submission, and `close_fd` then leaked the
    // descriptor it had already given up. Such a task is now refused at spawn
    // (here with a limit of 2 slots instead of 2^24), so every op of a running task
    // is accepted and a close always releases its descriptor.
    if skip_if_unavailable() {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let server = net::GvtStream::from_std(l.accept().unwrap().0).unwrap();
    let opts = ReactorOptions::new(crate::uring::UringOptions::default(), 1).unwrap();
    let reactor = ReactorThread::start(&opts, None).unwrap();
    let mut rt = Runtime::on_reactor(&RuntimeOptions::default(), &reactor, 0).unwrap();
    assert_eq!(rt.ctx.sched.borrow().slot_limit, dedicated::MAX_SLOTS);
    rt.ctx.sched.borrow_mut().slot_limit = 2;
    let (refused, closed) = rt
        .block_on(move || {
            // The root is slot 0; slot 1 closes the socket; a third is refused.
            let closer = spawn(move || server.close());
            let refused = try_spawn(|| ()).map(drop);
            (refused, closer.join().unwrap())
        })
        .unwrap()
        .unwrap();
    let e = refused.unwrap_err();
    assert!(e.to_string().contains("at most 2 green threads"), "{e}");
    assert!(closed.is_ok(), "{closed:?}");
    let eof = client.read(&mut [0u8; 1]);
    assert!(matches!(eof, Ok(0)), "the descriptor leaked: {eof:?}");
}
