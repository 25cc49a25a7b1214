//! A small handler for the core's own tests, so `src/http` is tested without the
//! application above it: `/` (text), `/json`, `/echo` (POST), `/sleep/<ms>`,
//! `/static/<path>` (a file reply, with its request's codings and conditions), `/work/<n>` (work of `n` slices, whatever the
//! budget, unless the budget is `None`: then all at once), anything else 404.

use std::borrow::Cow;

use super::handler::{FileReply, Handler, Reply, Request, Response, Slice, Work};
use super::representation::{Codings, Conditions};
use super::Method;

pub(crate) struct TestHandler;

impl Handler for TestHandler {
    fn handle<'a>(&'a self, req: &Request<'a>, body: &'a [u8]) -> Reply<'a> {
        let resp = |status, ct: &'static [u8], body: &'static [u8]| Response {
            status,
            content_type: Some(ct),
            body: Cow::Borrowed(body),
            allow: None,
        };
        let path = req.target.split('?').next().unwrap_or("");
        match (req.method, path) {
            (Method::Get | Method::Head, "/") => {
                Reply::Now(resp(200, b"text/plain; charset=utf-8", b"Hello, World!"))
            }
            (Method::Get | Method::Head, "/json") => Reply::Now(resp(
                200,
                b"application/json",
                br#"{"message":"Hello, World!"}"#,
            )),
            (Method::Post, "/echo") => Reply::Now(Response {
                status: 200,
                content_type: Some(req.content_type.unwrap_or(b"application/octet-stream")),
                body: Cow::Borrowed(body),
                allow: None,
            }),
            (_, p) if p.starts_with("/sleep/") => match p[7..].parse() {
                Ok(ms) => Reply::Sleep(ms),
                Err(_) => Reply::Now(resp(400, b"text/plain", b"bad sleep\n")),
            },
            (_, p) if p.starts_with("/static/") => Reply::File(
                FileReply::new(p[8..].to_owned(), b"text/plain; charset=utf-8")
                    .with_codings(Codings::from_accept_encoding(
                        req.headers("accept-encoding"),
                    ))
                    .with_conditions(Conditions::from_request(req)),
            ),
            (_, p) if p.starts_with("/work/") => match p[6..].parse() {
                Ok(n) => Reply::Work(Work {
                    arg: n,
                    left: n,
                    state: 0,
                }),
                Err(_) => Reply::Now(resp(400, b"text/plain", b"bad work\n")),
            },
            _ => Reply::Now(resp(404, b"text/plain; charset=utf-8", b"no such route\n")),
        }
    }

    fn work(&self, job: &mut Work, budget: Option<std::time::Duration>) -> Slice {
        job.state += 1;
        job.left = match budget {
            None => 0,
            Some(_) => job.left.saturating_sub(1),
        };
        if job.left > 0 {
            return Slice::More;
        }
        Slice::Done(Response {
            status: 200,
            content_type: Some(b"text/plain"),
            body: Cow::Owned(format!("{} slices", job.state).into_bytes()),
            allow: None,
        })
    }
}
