//! Reading a file from the repository without ever blocking or reading without end: only a
//! regular file, only up to a cap. The walk, the config, the policies and `merge` all read
//! through here; this module imports nothing of the crate. Writing too: every file envfence
//! writes (a report, SARIF, the Actions files, man pages) is opened by [`open_for_writing`],
//! never through a symlink.

use std::path::Path;

/// Why [`read_regular_file`] read nothing.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, device, socket or directory: reading it could block or never end.
    NotRegularFile,
    TooLarge {
        size: u64,
        cap: u64,
    },
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRegularFile => f.write_str("not a regular file"),
            ReadError::TooLarge { size, cap } => {
                write!(f, "{size} bytes, larger than the limit of {cap} bytes")
            }
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Whether `real` (a resolved path under the repository's resolved `root`) lies in a `.git`
/// folder: git's own files (its config holds the job's token after `actions/checkout`) are
/// never repository content, whatever link leads there.
pub fn in_git_folder(root: &Path, real: &Path) -> bool {
    real.strip_prefix(root)
        .is_ok_and(|rel| rel.components().any(|c| c.as_os_str() == ".git"))
}

/// Reads a file that must be a regular file of at most `cap` bytes, without ever blocking or
/// reading without end: a path checked by the walk may have been swapped for a FIFO or a
/// device since. The file is opened non-blocking (an open of a FIFO with no writer returns
/// at once) and the opened handle's own metadata decides; the buffer is sized from that
/// metadata and grows at most to `cap`, and a failed allocation is an error, not an abort.
pub fn read_regular_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    read_open_file(open_regular_file(path, cap)?, cap)
}

/// Opens a file that must be a regular file of at most `cap` bytes, as [`read_regular_file`]
/// does, for a caller that reads it in parts (and reads at most `cap` bytes of it: the file
/// may grow).
pub fn open_regular_file(path: &Path, cap: u64) -> Result<std::fs::File, ReadError> {
    // Refuse what is not a regular file before opening it: opening some devices acts.
    match std::fs::metadata(path) {
        Ok(meta) if !meta.is_file() => return Err(ReadError::NotRegularFile),
        Ok(_) => {}
        Err(e) => return Err(ReadError::Io(e)),
    }
    let file = open_nonblocking(path).map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegularFile);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    Ok(file)
}

/// Reads a file the walk listed as a regular file. The listing stands in for the check before
/// opening that [`read_regular_file`] makes (two path lookups per file were a tenth of a
/// scan's time): the file is opened without following a symlink, so one swapped in since the
/// walk is refused, and without blocking, and what was opened must be a regular file.
pub fn read_listed_file(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_listed(path).map_err(ReadError::Io)?;
    read_open_file(file, cap)
}

/// Reads an opened file: a regular file of at most `cap` bytes.
fn read_open_file(file: std::fs::File, cap: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;

    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegularFile);
    }
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::new();
    let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    bytes.try_reserve_exact(size).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::OutOfMemory,
            format!("cannot allocate {size} bytes to read it"),
        ))
    })?;
    // At most one byte past the cap, in case the file grew since.
    let read = file
        .take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if read as u64 > cap {
        return Err(ReadError::TooLarge {
            size: read as u64,
            cap,
        });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(unix)]
fn open_listed(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_NOFOLLOW)
        .open(path)
}

#[cfg(not(unix))]
fn open_listed(path: &Path) -> std::io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        return Err(std::io::Error::other("a symlink since it was listed"));
    }
    std::fs::File::open(path)
}

/// How a file that envfence writes is written: truncated or appended to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Truncate,
    Append,
}

/// Opens a file that envfence writes (`--output`, `--sarif`, `GITHUB_OUTPUT`, ...), creating
/// it if missing, but never through a symlink at that path: a pull request can commit
/// `envfence.sarif -> ../../outside/script`, and following it would overwrite a file outside
/// the checkout. On Unix the kernel refuses the symlink in the same `open` (`O_NOFOLLOW`), so
/// there is no window between a check and the open; elsewhere the path is checked first.
/// Only the last component is checked: the folders of a path the user typed are theirs.
/// The error says "is a symlink" in that case. A link to a character device or a pipe
/// (`--output /dev/stdout`) is followed: writing there overwrites no file.
pub fn open_for_writing(path: &Path, mode: WriteMode) -> std::io::Result<std::fs::File> {
    open_write_no_follow(path, mode).or_else(|e| {
        if !std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(e);
        }
        // `--output /dev/stdout` (a link to a pipe or a terminal) is how users write to a
        // stream: a link to a character device or a pipe is followed; one to a file is not.
        if links_to_a_stream(path) {
            return write_options(mode).open(path);
        }
        Err(std::io::Error::other(
            "it is a symlink, and envfence never writes through one",
        ))
    })
}

/// Options that write as `mode` says.
fn write_options(mode: WriteMode) -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    match mode {
        WriteMode::Truncate => options.write(true).truncate(true),
        WriteMode::Append => options.append(true),
    };
    options
}

/// Whether `path` resolves to a character device or a pipe (`/dev/stdout`, `/dev/null`).
#[cfg(unix)]
fn links_to_a_stream(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device() || m.file_type().is_fifo())
}

#[cfg(not(unix))]
fn links_to_a_stream(_path: &Path) -> bool {
    false
}

#[cfg(unix)]
fn open_write_no_follow(path: &Path, mode: WriteMode) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    write_options(mode)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_write_no_follow(path: &Path, mode: WriteMode) -> std::io::Result<std::fs::File> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("a symlink"));
    }
    write_options(mode).create(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn git_folders_are_found_at_any_depth_below_the_root() {
        let root = Path::new("/r");
        assert!(super::in_git_folder(root, Path::new("/r/.git/config")));
        assert!(super::in_git_folder(
            root,
            Path::new("/r/vendor/x/.git/config")
        ));
        assert!(!super::in_git_folder(root, Path::new("/r/.github/x.yaml")));
        assert!(!super::in_git_folder(
            Path::new("/r/.git"),
            Path::new("/r/.git/x")
        ));
    }

    #[test]
    fn fifos_devices_and_growth_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("swapped.yaml");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        // On a thread, so that a regression fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(matches!(
                read_regular_file(&path, 1 << 20),
                Err(ReadError::NotRegularFile)
            ));
        });
        let refused = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("reading a FIFO must not block");
        assert!(refused);
        assert!(matches!(
            read_regular_file(Path::new("/dev/zero"), 1 << 20),
            Err(ReadError::NotRegularFile)
        ));
        let file = dir.path().join("big.yaml");
        std::fs::write(&file, "x".repeat(100)).expect("write");
        assert!(matches!(
            read_regular_file(&file, 99),
            Err(ReadError::TooLarge { size: 100, cap: 99 })
        ));
        assert_eq!(
            read_regular_file(&file, 100).map(|b| b.len()).ok(),
            Some(100)
        );
    }

    /// A listed file is read as it was listed: a symlink swapped in since is not followed.
    #[cfg(unix)]
    #[test]
    fn a_listed_file_swapped_for_a_symlink_is_not_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret.txt");
        std::fs::write(&secret, "token").expect("write");
        let listed = dir.path().join("app.yaml");
        std::os::unix::fs::symlink(&secret, &listed).expect("symlink");
        assert!(matches!(
            read_listed_file(&listed, 1 << 20),
            Err(ReadError::Io(_))
        ));
        // The same path read as a user-named file follows the link.
        assert_eq!(
            read_regular_file(&listed, 1 << 20).ok(),
            Some(b"token".to_vec())
        );
        let plain = dir.path().join("plain.yaml");
        std::fs::write(&plain, "a: 1\n").expect("write");
        assert_eq!(
            read_listed_file(&plain, 1 << 20).ok(),
            Some(b"a: 1\n".to_vec())
        );
        assert!(matches!(
            read_listed_file(&plain, 2),
            Err(ReadError::TooLarge { size: 5, cap: 2 })
        ));
    }
}
