//! Static files: the one open-beneath-root contract every model uses.
//!
//! A file under `/static/` is opened with `openat2(2)` relative to the `--root`
//! directory descriptor with [`OPEN_FLAGS`] and [`OPEN_RESOLVE`] (never leaving the
//! root: no `..` escape, no absolute or escaping symlinks, no `/proc` magic links),
//! then stat-ed on the new descriptor (size, modification time and inode: a
//! [`FileMeta`], the validators' inputs); only a regular file is served
//! ([`check_stat`]), and only then is the descriptor made blocking again
//! ([`clear_nonblock`]). The open itself is non-blocking: opening a FIFO for
//! reading otherwise waits for a writer, for ever, and a model's blocking pool
//! (or io_uring's worker) with it, which no shutdown can then wait out. Errors are classified by [`FileError::from_errno`]. Models run
//! the same steps with their own I/O: the callback model as `OPENAT2` + `STATX`
//! io_uring ops, the green model as the same ops from a green thread, tokio through
//! [`open_blocking`] on its blocking pool.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{Mode, OFlags, ResolveFlags};

use crate::error::ServeError;
use crate::http::{FileError, FileMeta};

/// Flags for opening a static file beneath the root: `O_NONBLOCK` so that an open
/// that would wait (a FIFO without a writer, some devices) returns at once; the
/// stat then refuses anything but a regular file.
pub const OPEN_FLAGS: i32 = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
/// Resolution for static files: never leave the root, no magic links.
pub const OPEN_RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;

/// The `--root` directory.
#[derive(Debug)]
pub struct StaticRoot {
    /// INVARIANT: an `O_PATH | O_DIRECTORY` descriptor.
    dir: OwnedFd,
}

impl StaticRoot {
    /// Open `--root` as a directory (a clear error naming the flag otherwise).
    pub fn open(dir: &Path) -> Result<StaticRoot, ServeError> {
        rustix::fs::open(
            dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(|dir| StaticRoot { dir })
        .map_err(|e| {
            ServeError::Config(format!(
                "--root {}: cannot open as a directory: {e}",
                dir.display()
            ))
        })
    }

    /// The directory descriptor files are opened beneath.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir.as_fd()
    }
}

/// After the stat of an opened file: its metadata if it is a regular file.
pub fn check_stat(mode: u32, meta: FileMeta) -> Result<FileMeta, FileError> {
    if mode & libc::S_IFMT == libc::S_IFREG {
        Ok(meta)
    } else {
        Err(FileError::NotFound)
    }
}

/// After [`check_stat`] accepted a file: clear the `O_NONBLOCK` it was opened with,
/// so that its reads wait for the disk as reads do (an io_uring read of an
/// `O_NONBLOCK` file may fail with EAGAIN instead). Of [`OPEN_FLAGS`], only
/// `O_NONBLOCK` is a status flag `F_SETFL` changes, so this sets none.
pub fn clear_nonblock(fd: BorrowedFd<'_>) -> Result<(), FileError> {
    rustix::fs::fcntl_setfl(fd, OFlags::empty())
        .map_err(|e| FileError::from_errno(e.raw_os_error()))
}

/// The whole contract with blocking syscalls (for a model's blocking pool).
pub fn open_blocking(root: Option<&StaticRoot>, rel: &str) -> Result<(File, FileMeta), FileError> {
    let root = root.ok_or(FileError::NotFound)?;
    let fd = rustix::fs::openat2(
        root.fd(),
        rel,
        OFlags::from_bits_retain(OPEN_FLAGS as u32),
        Mode::empty(),
        ResolveFlags::from_bits_retain(OPEN_RESOLVE),
    )
    .map_err(|e| FileError::from_errno(e.raw_os_error()))?;
    finish_open(fd)
}

/// The same contract without waiting for the disk: the path is resolved only
/// from the kernel's lookup cache (`RESOLVE_CACHED`, Linux 5.12). `None` when that
/// cannot be done (a path component not cached, or an older kernel): then
/// [`open_blocking`] on a blocking pool. A model calls this on its own thread and
/// saves the hand-off to the pool for files served recently; the open is
/// `O_NONBLOCK` and the stat reads the inode already in memory.
pub fn open_cached(
    root: Option<&StaticRoot>,
    rel: &str,
) -> Option<Result<(File, FileMeta), FileError>> {
    let Some(root) = root else {
        return Some(Err(FileError::NotFound));
    };
    let resolve = ResolveFlags::from_bits_retain(OPEN_RESOLVE) | ResolveFlags::CACHED;
    match rustix::fs::openat2(
        root.fd(),
        rel,
        OFlags::from_bits_retain(OPEN_FLAGS as u32),
        Mode::empty(),
        resolve,
    ) {
        Ok(fd) => Some(finish_open(fd)),
        Err(e) if e == rustix::io::Errno::AGAIN || e == rustix::io::Errno::INVAL => None,
        Err(e) => Some(Err(FileError::from_errno(e.raw_os_error()))),
    }
}

/// After the open: stat, only a regular file, blocking again. (An io_uring model
/// that opened the file with an `OPENAT2` op calls this on its own thread: an
/// `fstat` of an open descriptor reads the inode in memory, where a `STATX` op
/// always goes to one of io_uring's worker threads.)
pub fn finish_open(fd: OwnedFd) -> Result<(File, FileMeta), FileError> {
    let st = rustix::fs::fstat(&fd).map_err(|e| FileError::from_errno(e.raw_os_error()))?;
    let meta = FileMeta {
        size: st.st_size as u64,
        mtime_sec: st.st_mtime,
        mtime_nsec: st.st_mtime_nsec as u32,
        ino: st.st_ino,
    };
    let meta = check_stat(st.st_mode, meta)?;
    clear_nonblock(fd.as_fd())?;
    Ok((File::from(fd), meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_and_never_outside_the_root() {
        let dir = std::env::temp_dir().join(format!("gvhttpd-files-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.txt"), b"hello").unwrap();
        let root = StaticRoot::open(&dir).unwrap();
        let meta = open_blocking(Some(&root), "a.txt").unwrap().1;
        let std_meta = std::fs::metadata(dir.join("a.txt")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            (
                meta.size,
                meta.mtime_sec,
                i64::from(meta.mtime_nsec),
                meta.ino
            ),
            (5, std_meta.mtime(), std_meta.mtime_nsec(), std_meta.ino())
        );
        assert_eq!(
            open_blocking(Some(&root), "sub").unwrap_err(),
            FileError::NotFound
        );
        assert_eq!(
            open_blocking(Some(&root), "../a.txt").unwrap_err(),
            FileError::NotFound
        );
        assert_eq!(
            open_blocking(Some(&root), "/etc/passwd").unwrap_err(),
            FileError::NotFound
        );
        assert_eq!(
            open_blocking(None, "a.txt").unwrap_err(),
            FileError::NotFound
        );
        assert!(StaticRoot::open(&dir.join("a.txt")).is_err());
        // A FIFO without a writer: refused at once, not waited on.
        rustix::fs::mknodat(
            rustix::fs::CWD,
            dir.join("fifo"),
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(
            open_blocking(Some(&root), "fifo").unwrap_err(),
            FileError::NotFound
        );
        // The cached open agrees with the blocking one wherever it answers (a
        // file just opened is in the lookup cache, so it answers here).
        for rel in ["a.txt", "sub", "../a.txt", "/etc/passwd", "fifo", "missing"] {
            let blocking = open_blocking(Some(&root), rel).map(|(_, m)| m);
            match open_cached(Some(&root), rel) {
                Some(cached) => assert_eq!(cached.map(|(_, m)| m), blocking, "{rel}"),
                // RESOLVE_CACHED exists from Linux 5.12; there, a file just
                // opened is in the lookup cache.
                None => assert!(
                    rel != "a.txt" || crate::uring::probe::kernel_version() < (5, 12),
                    "a.txt was just opened: cached"
                ),
            }
        }
        // A served file is blocking again.
        let (f, _) = open_blocking(Some(&root), "a.txt").unwrap();
        assert!(!rustix::fs::fcntl_getfl(&f)
            .unwrap()
            .contains(OFlags::NONBLOCK));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
