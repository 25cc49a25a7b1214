//! Green file I/O for the static route: `openat2` beneath a directory descriptor,
//! `statx`, positional `read` and `close`, each one io_uring op that parks the
//! calling green thread (the worker keeps serving others while the disk works).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{opcode, types};

use super::reactor::{submit, GivesWay};
use super::task::ParkReason;

/// What `statx` told us about a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub size: u64,
    /// `st_mode` (file type and permission bits).
    pub mode: u32,
    /// Last modification: seconds since the epoch, and nanoseconds.
    pub mtime_sec: i64,
    pub mtime_nsec: u32,
    pub ino: u64,
}

impl FileStat {
    pub fn is_regular(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFREG
    }
}

/// An open file whose operations park the green thread.
#[derive(Debug)]
pub struct GvtFile {
    fd: OwnedFd,
}

/// Open `path` relative to `dir` with `openat2(2)`: `flags` are `O_*` open flags,
/// `resolve` the `RESOLVE_*` flags (e.g. `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`)
/// that keep the lookup inside `dir`.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    path: &Path,
    flags: u64,
    resolve: u64,
) -> io::Result<GvtFile> {
    let cpath = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    let how = types::OpenHow::new()
        .flags(flags | libc::O_CLOEXEC as u64)
        .resolve(resolve);
    let sqe = opcode::OpenAt2::new(types::Fd(dir.as_raw_fd()), cpath.as_ptr(), &how).build();
    // SAFETY: `cpath` and `how` live in this frame until `submit` returns after the
    // CQE; `dir` is borrowed for the call.
    let fd = unsafe { submit(sqe, None, GivesWay::OnHard, ParkReason::Io) }?;
    // SAFETY: a successful openat2 returns a new descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(GvtFile { fd })
}

impl GvtFile {
    /// Size, mode, modification time and inode of the open file (`statx` with
    /// `AT_EMPTY_PATH`).
    pub fn stat(&self) -> io::Result<FileStat> {
        // SAFETY: `statx` is plain old data; all-zero is a valid value.
        let mut st: libc::statx = unsafe { std::mem::zeroed() };
        let empty = c"";
        let sqe = opcode::Statx::new(
            types::Fd(self.fd.as_raw_fd()),
            empty.as_ptr(),
            (&mut st as *mut libc::statx).cast(),
        )
        .flags(libc::AT_EMPTY_PATH)
        .mask(
            libc::STATX_TYPE
                | libc::STATX_MODE
                | libc::STATX_SIZE
                | libc::STATX_MTIME
                | libc::STATX_INO,
        )
        .build();
        // SAFETY: `st` and the empty path live in this frame until `submit` returns
        // after the CQE.
        unsafe { submit(sqe, None, GivesWay::OnHard, ParkReason::Io) }?;
        Ok(FileStat {
            size: st.stx_size,
            mode: u32::from(st.stx_mode),
            mtime_sec: st.stx_mtime.tv_sec,
            mtime_nsec: st.stx_mtime.tv_nsec,
            ino: st.stx_ino,
        })
    }

    /// Read into `buf` at `offset`; `Ok(0)` at end of file.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
        let sqe = opcode::Read::new(types::Fd(self.fd.as_raw_fd()), buf.as_mut_ptr(), len)
            .offset(offset)
            .build();
        // SAFETY: `buf` is borrowed for this call and `submit` returns only after the
        // read's CQE.
        let n = unsafe { submit(sqe, None, GivesWay::OnHard, ParkReason::Io) }?;
        Ok(n as usize)
    }

    /// Close through `IORING_OP_CLOSE`.
    pub fn close(self) -> io::Result<()> {
        super::net::close_fd(self.fd)
    }
}

/// A descriptor opened elsewhere (an open on the caller's thread, from the
/// lookup cache) becomes a green file.
impl From<OwnedFd> for GvtFile {
    fn from(fd: OwnedFd) -> GvtFile {
        GvtFile { fd }
    }
}

impl From<GvtFile> for OwnedFd {
    fn from(f: GvtFile) -> OwnedFd {
        f.fd
    }
}

impl AsFd for GvtFile {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
