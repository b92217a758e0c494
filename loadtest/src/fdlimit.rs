//! Raises the process's open-file limit: every client connection is a
//! file descriptor, and the usual soft limit (1024) stops a run long
//! before 10,000 connections.

use rlimit::Resource;

/// The open-file limit after [`raise_fd_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft limit to the hard limit; when even the hard limit is
/// below `wanted`, first tries to raise both to `wanted` (which works for
/// root). Never lowers a limit. Returns the limit now in force.
pub fn raise_fd_limit(wanted: u64) -> std::io::Result<FdLimit> {
    let (soft, hard) = Resource::NOFILE.get()?;
    if hard < wanted {
        // Best effort: refused without CAP_SYS_RESOURCE or above fs.nr_open.
        let _ = Resource::NOFILE.set(wanted, wanted);
    }
    let (_, hard) = Resource::NOFILE.get()?;
    if soft < hard {
        Resource::NOFILE.set(hard, hard)?;
    }
    let (soft, hard) = Resource::NOFILE.get()?;
    Ok(FdLimit { soft, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_lowers_the_limit() {
        let (before, _) = Resource::NOFILE.get().unwrap();
        let after = raise_fd_limit(16).unwrap();
        assert!(after.soft >= before);
        assert!(after.soft <= after.hard);
    }
}
