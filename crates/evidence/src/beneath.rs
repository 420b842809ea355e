//! Files beneath an evidence directory, opened as an auditor must: the directory was shaped
//! by whoever wrote it (or mirrored from a bucket someone else can write), so a path is
//! resolved by the kernel with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the
//! directory's own descriptor. No symbolic link is followed, not even one pointing inside (the
//! writer never makes one), no `..` leaves the directory, and a file is read only if it is a
//! regular file no larger than [`MAX_OBJECT_BYTES`]. A FIFO that would block the reader, a
//! link to `/dev/zero` or a file far larger than any report is an error naming why.
//!
//! rustix rather than cap-std: rustix is already in the tree, and `RESOLVE_NO_SYMLINKS` refuses
//! every link, where cap-std follows links that stay inside (and emulates the resolution in
//! userspace on kernels without `openat2`; this one is required here, Linux 5.6 or later).
//!
//! Boundary: one file's bytes; which files a directory holds is the evidence module's.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::path::{Component, Path};

use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::layout::MAX_OBJECT_BYTES;

/// How every path beneath the directory is resolved.
const RESOLVE: ResolveFlags = ResolveFlags::BENEATH
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS);

/// Why a file of the directory is not read: the caller names the file.
fn refused(why: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("refused: {why}"))
}

/// The kernel's refusals, said in the auditor's terms.
fn resolve_error(e: Errno) -> io::Error {
    match e {
        Errno::LOOP => refused("a symbolic link, not followed"),
        Errno::XDEV => refused("resolves outside the evidence directory"),
        Errno::NOSYS => io::Error::new(
            io::ErrorKind::Unsupported,
            "this kernel has no openat2 (Linux 5.6 or later is needed to read evidence safely)",
        ),
        e => e.into(),
    }
}

/// The directory itself: the one path the caller chose, so the only one followed as given.
fn open_root(root: &Path) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// `rel` as plain names: no root, no `.` or `..`, at least one.
fn plain_names(rel: &Path) -> io::Result<Vec<&std::ffi::OsStr>> {
    let names: Vec<_> = rel
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            Component::RootDir
            | Component::Prefix(_)
            | Component::CurDir
            | Component::ParentDir => Err(refused(format!(
                "{} is not a plain relative path",
                rel.display()
            ))),
        })
        .collect::<io::Result<_>>()?;
    if names.is_empty() {
        return Err(refused("an empty path"));
    }
    Ok(names)
}

/// The bytes of the regular file `rel` beneath `root`, refused when any component is a
/// symbolic link, it is not a regular file, or it is larger than [`MAX_OBJECT_BYTES`].
pub fn read(root: &Path, rel: &Path) -> io::Result<Vec<u8>> {
    plain_names(rel)?;
    let dir = open_root(root)?;
    let fd = rustix::fs::openat2(
        &dir,
        rel,
        // O_NONBLOCK: opening a FIFO must not wait for a writer that never comes.
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY,
        Mode::empty(),
        RESOLVE,
    )
    .map_err(resolve_error)?;
    let stat = rustix::fs::fstat(&fd)?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(refused("a directory, not a regular file")),
        FileType::Fifo => return Err(refused("a FIFO, not a regular file")),
        FileType::Socket => return Err(refused("a socket, not a regular file")),
        FileType::CharacterDevice | FileType::BlockDevice => {
            return Err(refused("a device, not a regular file"));
        }
        FileType::Symlink | FileType::Unknown => return Err(refused("not a regular file")),
    }
    let len = stat.st_size.max(0) as u64;
    if len > MAX_OBJECT_BYTES {
        return Err(refused(format!(
            "{len} bytes, over the {MAX_OBJECT_BYTES}-byte limit of evidence"
        )));
    }
    // Bounded again while reading: a file that grows after the check is cut at the limit
    // and refused, not read to its end.
    let mut bytes = Vec::with_capacity(len as usize);
    File::from(fd)
        .take(MAX_OBJECT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_OBJECT_BYTES {
        return Err(refused(format!(
            "grew past the {MAX_OBJECT_BYTES}-byte limit of evidence while read"
        )));
    }
    Ok(bytes)
}

/// Whether `rel` beneath `root` is a regular file reached without a link (its bytes unread).
pub fn is_file(root: &Path, rel: &Path) -> bool {
    if plain_names(rel).is_err() {
        return false;
    }
    let Ok(dir) = open_root(root) else {
        return false;
    };
    let flags = OFlags::PATH | OFlags::CLOEXEC;
    rustix::fs::openat2(&dir, rel, flags, Mode::empty(), RESOLVE)
        .and_then(|fd| rustix::fs::fstat(&fd))
        .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
}

/// [`read`], as text.
pub fn read_to_string(root: &Path, rel: &Path) -> io::Result<String> {
    String::from_utf8(read(root, rel)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

/// Creates the file `rel` beneath `root` for the first time, and the directories before it
/// where missing: never through a symbolic link, never over anything already there.
pub fn create_new(root: &Path, rel: &Path) -> io::Result<File> {
    let names = plain_names(rel)?;
    let (file, parents) = names.split_last().expect("plain_names gives at least one");
    let mut dir = open_root(root)?;
    for name in parents {
        match rustix::fs::mkdirat(&dir, *name, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(e.into()),
        }
        dir = rustix::fs::openat2(
            &dir,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            RESOLVE,
        )
        .map_err(resolve_error)?;
    }
    let fd = rustix::fs::openat2(
        &dir,
        *file,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
        RESOLVE,
    )
    .map_err(resolve_error)?;
    Ok(File::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_link_a_fifo_and_a_directory_are_refused_a_file_is_read() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), b"secret").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        let e = read(root, Path::new("link")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        // A linked directory is refused as well, not only a linked last component.
        std::os::unix::fs::symlink("/etc", root.join("dirlink")).unwrap();
        let e = read(root, Path::new("dirlink/hostname")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = read(root, Path::new("../x")).unwrap_err();
        assert!(e.to_string().contains("plain relative"), "{e}");
        let fifo = root.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read(root, Path::new("fifo")).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        std::fs::create_dir(root.join("sub")).unwrap();
        let e = read(root, Path::new("sub")).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        std::fs::write(root.join("sub/f"), b"report").unwrap();
        assert_eq!(read(root, Path::new("sub/f")).unwrap(), b"report");
        assert!(is_file(root, Path::new("sub/f")));
        for not in ["link", "dirlink/hostname", "fifo", "sub", "../x", "missing"] {
            assert!(!is_file(root, Path::new(not)), "{not}");
        }
    }

    #[test]
    fn a_file_over_the_limit_is_refused_without_being_read() {
        let d = tempfile::tempdir().unwrap();
        // Sparse: declared 2 GB, no blocks; refused from its size alone.
        File::create(d.path().join("big"))
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let e = read(d.path(), Path::new("big")).unwrap_err();
        assert!(e.to_string().contains("over the"), "{e}");
    }

    #[test]
    fn create_new_makes_its_directories_and_never_writes_through_a_link_or_over_a_file() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        create_new(root, Path::new("000001-a/report.json"))
            .unwrap()
            .write_all(b"{}")
            .unwrap();
        assert_eq!(
            std::fs::read(root.join("000001-a/report.json")).unwrap(),
            b"{}"
        );
        let e = create_new(root, Path::new("000001-a/report.json")).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), root.join("000002-b")).unwrap();
        let e = create_new(root, Path::new("000002-b/report.json")).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::os::unix::fs::symlink(elsewhere.path().join("x"), root.join("index.json")).unwrap();
        assert!(create_new(root, Path::new("index.json")).is_err());
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        assert!(create_new(root, Path::new("/tmp/x")).is_err());
    }
}
