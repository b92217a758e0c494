//! Files and directories only the service's own user can read: the data
//! directory and everything the service creates in it (`store.redb`,
//! `events.ndjson`, `keys/` and the key files, their temporary files).
//!
//! Guarantees, whatever the process umask:
//! - a directory made or opened here ends at mode 0700, a file at 0600.
//!   Modes are set explicitly after creation: a umask only takes bits
//!   away, and one that took the owner's own would leave a file the
//!   service cannot reopen;
//! - an existing directory or file with another mode (a data directory an
//!   older version made 0755, a 0644 `store.redb`) is tightened, not
//!   refused, and the change is logged;
//! - a shared directory (sticky bit, such as `/tmp`) is refused as a data
//!   directory: changing its mode would lock every other user out of it.
//!
//! Every place that writes into the data directory goes through here, so
//! the modes live in one place.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of every directory the service creates or opens (owner only).
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the service creates or opens (owner read/write).
pub const FILE_MODE: u32 = 0o600;
/// The sticky bit: set on directories several users share (`/tmp`).
const STICKY: u32 = 0o1000;

/// Makes `path` a directory with mode 0700: creates it (and missing
/// parents, each 0700) or tightens an existing one. Refuses a file, and a
/// directory with the sticky bit (shared by several users).
pub fn dir(path: &Path) -> io::Result<()> {
    make_dirs(path)?;
    let meta = std::fs::metadata(path)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", path.display()),
        ));
    }
    let mode = meta.permissions().mode();
    if mode & STICKY != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a shared directory (sticky bit): give the service a directory of its own",
                path.display()
            ),
        ));
    }
    if mode & 0o7777 != DIR_MODE {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE))?;
        log_tightened(path, mode, DIR_MODE);
    }
    Ok(())
}

/// Creates the missing directories of `path`, from the top, each 0700.
fn make_dirs(path: &Path) -> io::Result<()> {
    match std::fs::metadata(path) {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        make_dirs(parent)?;
    }
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => std::fs::set_permissions(path, std::fs::Permissions::from_mode(DIR_MODE)),
        // Another process (or thread) made it meanwhile.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` with `options`; a file it creates is 0600, an existing
/// one with another mode is set to 0600 (through the open descriptor, so
/// it is this very file).
pub fn open(path: &Path, options: &mut OpenOptions) -> io::Result<File> {
    let file = options.mode(FILE_MODE).open(path)?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o7777 != FILE_MODE {
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        // A file just created under a umask is not worth a log line.
        if mode & 0o077 != 0 {
            log_tightened(path, mode, FILE_MODE);
        }
    }
    Ok(file)
}

/// The text of `path` (tightening its mode to 0600), or `None` if there is
/// no such file.
pub fn read(path: &Path) -> io::Result<Option<String>> {
    let mut file = match open(path, OpenOptions::new().read(true)) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    file.read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Creates `path` holding `content` unless it exists, and returns what the
/// file holds afterwards: `content`, or the content of the file another
/// process created first. Atomic and first-writer-wins: the content is
/// written to a temporary file (0600) in the same directory, synced, then
/// hard-linked into place, so no reader ever sees a partial file and two
/// processes starting at once end up with the same content. The
/// directory must exist (see [`dir`]).
pub fn create_once(path: &Path, content: &str) -> io::Result<String> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?
        .to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}", uuid::Uuid::new_v4().simple()));
    let written = open(&tmp, OpenOptions::new().write(true).create_new(true)).and_then(|mut f| {
        f.write_all(content.as_bytes())?;
        f.sync_all()
    });
    let linked = written.and_then(|()| match std::fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    });
    let _ = std::fs::remove_file(&tmp);
    if linked? {
        Ok(content.to_owned())
    } else {
        read(path)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} vanished after another process created it",
                    path.display()
                ),
            )
        })
    }
}

fn log_tightened(path: &Path, from: u32, to: u32) {
    tracing::info!(
        path = %path.display(),
        from = format!("{:o}", from & 0o7777),
        to = format!("{to:o}"),
        "tightened a data path to owner-only"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn dir_creates_missing_parents_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let deep = root.path().join("a").join("b");
        dir(&deep).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&deep), 0o700);
    }

    #[test]
    fn an_existing_open_dir_and_file_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let file = data.join("store.redb");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        dir(&data).unwrap();
        assert_eq!(mode(&data), 0o700);
        open(&file, OpenOptions::new().read(true).write(true)).unwrap();
        assert_eq!(mode(&file), 0o600);
    }

    #[test]
    fn a_shared_sticky_dir_and_a_file_are_refused() {
        let root = tempfile::tempdir().unwrap();
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert_eq!(
            dir(&shared).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(mode(&shared), 0o1777, "left as it was");
        let file = root.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(dir(&file).unwrap_err().kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn create_once_keeps_the_first_content() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("k");
        assert_eq!(create_once(&path, "first").unwrap(), "first");
        assert_eq!(create_once(&path, "second").unwrap(), "first");
        assert_eq!(read(&path).unwrap().as_deref(), Some("first"));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(read(&root.path().join("none")).unwrap(), None);
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left");
    }
}
