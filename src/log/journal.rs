//! journald's native protocol: one datagram per entry to
//! `/run/systemd/journal/socket`, with `sd_journal_sendv(3)` semantics.
//!
//! An entry is a list of `NAME=value` fields (systemd.journal-fields(7)). A value
//! without a newline is sent as `NAME=value\n`; one with a newline (a traceback) uses
//! the binary-safe form `NAME\n` + 64-bit little-endian length + bytes + `\n`, so it
//! stays one entry. An entry too large for one datagram (`EMSGSIZE`, `ENOBUFS`) is
//! written to a sealed memfd whose descriptor is passed with `SCM_RIGHTS`, exactly
//! as libsystemd does. This module also answers "is this fd the journal?" from
//! `$JOURNAL_STREAM` (sd_journal_stream_fd(3), systemd.exec(5)).
//!
//! It knows nothing of HTTP or WSGI: callers hand it field names and bytes.

use std::io::{self, IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use nix::fcntl::{FcntlArg, SealFlag, fcntl};
use nix::sys::memfd::{MFdFlags, memfd_create};
use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};

/// Where journald listens for native-protocol datagrams.
pub const SOCKET_PATH: &str = "/run/systemd/journal/socket";

/// The send buffer libsystemd asks for; the kernel caps it at `net.core.wmem_max`.
const SEND_BUFFER: usize = 8 * 1024 * 1024;

/// A connection-less writer to journald's native socket.
///
/// The socket is unbound and addressed per datagram, so one `Journal` made in the
/// master keeps working in forked workers; journald reads each sender's pid from
/// the datagram's credentials, so `_PID` is the worker's own.
pub struct Journal {
    /// Unbound `AF_UNIX` datagram socket, close-on-exec.
    sock: UnixDatagram,
    /// The journald socket every entry is sent to.
    path: PathBuf,
}

impl Journal {
    /// A writer to the system journal at [`SOCKET_PATH`].
    ///
    /// # Errors
    /// The socket cannot be created.
    pub fn open() -> io::Result<Journal> {
        Journal::with_path(SOCKET_PATH)
    }

    /// A writer to the native-protocol socket at `path` (tests bind their own).
    ///
    /// # Errors
    /// The socket cannot be created.
    pub fn with_path(path: impl AsRef<Path>) -> io::Result<Journal> {
        let sock = UnixDatagram::unbound()?;
        // Best effort, as in libsystemd: a bigger buffer means fewer memfd round trips.
        let _ = socket2::SockRef::from(&sock).set_send_buffer_size(SEND_BUFFER);
        Ok(Journal {
            sock,
            path: path.as_ref().to_owned(),
        })
    }

    /// Send one entry made of `fields` (`(NAME, value)`), in order.
    ///
    /// Names must be valid journal field names (see [`valid_field_name`]); the
    /// callers in this crate use constants.
    ///
    /// # Errors
    /// journald is not listening (`ENOENT`, `ECONNREFUSED`), or the memfd fallback
    /// failed. Callers fall back to stderr.
    pub fn send(&self, fields: &[(&str, &[u8])]) -> io::Result<()> {
        let data = encode(fields);
        match self.sock.send_to(&data, &self.path) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EMSGSIZE | libc::ENOBUFS)) => {
                self.send_memfd(&data)
            }
            Err(e) => Err(e),
        }
    }

    /// Large entries: write them to a memfd, seal it so journald can trust its size
    /// and contents, and pass the descriptor in an otherwise empty datagram.
    fn send_memfd(&self, data: &[u8]) -> io::Result<()> {
        let memfd = memfd_create(
            "journal-data",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )?;
        let mut file = std::fs::File::from(memfd);
        file.write_all(data)?;
        // journald refuses an unsealed memfd: the sender could change it under it.
        fcntl(
            file.as_fd(),
            FcntlArg::F_ADD_SEALS(
                SealFlag::F_SEAL_SHRINK
                    | SealFlag::F_SEAL_GROW
                    | SealFlag::F_SEAL_WRITE
                    | SealFlag::F_SEAL_SEAL,
            ),
        )?;
        let addr = UnixAddr::new(self.path.as_path())?;
        let fds = [file.as_raw_fd()];
        let no_data: [IoSlice<'_>; 0] = [];
        sendmsg(
            self.sock.as_raw_fd(),
            &no_data,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )?;
        Ok(())
    }
}

/// Serialize `fields` in the native protocol (see the module doc).
pub fn encode(fields: &[(&str, &[u8])]) -> Vec<u8> {
    let size = fields.iter().map(|(k, v)| k.len() + v.len() + 10).sum();
    let mut out = Vec::with_capacity(size);
    for (name, value) in fields {
        debug_assert!(valid_field_name(name), "bad journal field {name:?}");
        out.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            out.push(b'\n');
            out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            out.push(b'=');
        }
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// journald's rule for names a client may send: 1–64 characters of `A-Z`, `0-9`
/// and `_`, not starting with `_` (trusted fields) or a digit.
pub fn valid_field_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && !b[0].is_ascii_digit()
        && b[0] != b'_'
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

/// True when `fd` is the stream systemd connected to the journal, i.e. its device
/// and inode equal `$JOURNAL_STREAM` (`"DEV:INODE"`, decimal).
///
/// Comparing with fstat(2) matters: a child whose stderr was redirected elsewhere
/// inherits the variable but must not switch to the native protocol.
pub fn is_journal_stream(fd: BorrowedFd<'_>, journal_stream: Option<&str>) -> bool {
    let Some((dev, ino)) = journal_stream.and_then(parse_stream) else {
        return false;
    };
    match nix::sys::stat::fstat(fd) {
        Ok(st) => st.st_dev == dev && st.st_ino == ino,
        Err(_) => false,
    }
}

fn parse_stream(value: &str) -> Option<(libc::dev_t, libc::ino_t)> {
    let (dev, ino) = value.trim().split_once(':')?;
    Some((dev.parse().ok()?, ino.parse().ok()?))
}

#[cfg(test)]
/// Decode the native protocol the way journald does.
pub(crate) fn decode(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    while !data.is_empty() {
        let nl = data.iter().position(|&b| b == b'\n').expect("newline");
        let line = &data[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = String::from_utf8(line[..eq].to_vec()).unwrap();
            out.push((name, line[eq + 1..].to_vec()));
            data = &data[nl + 1..];
        } else {
            let name = String::from_utf8(line.to_vec()).unwrap();
            let rest = &data[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.push((name, rest[8..8 + len].to_vec()));
            assert_eq!(rest[8 + len], b'\n', "binary field ends with a newline");
            data = &rest[8 + len + 1..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{ControlMessageOwned, recvmsg};
    use std::io::{IoSliceMut, Read, Seek};
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::time::Duration;

    /// A fake journald: a bound datagram socket in its own temp dir.
    struct Server {
        sock: UnixDatagram,
        dir: PathBuf,
    }

    impl Server {
        fn bind(name: &str) -> Server {
            let dir = std::env::temp_dir()
                .join(format!("rgunicorn-journal-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let sock = UnixDatagram::bind(dir.join("socket")).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            Server { sock, dir }
        }

        fn journal(&self) -> Journal {
            Journal::with_path(self.dir.join("socket")).unwrap()
        }

        /// Receive one entry; returns its bytes and whether it came in a memfd.
        fn recv(&self) -> (Vec<u8>, bool) {
            let mut buf = vec![0u8; 256 * 1024];
            let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
            let (len, fd) = {
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg = recvmsg::<()>(
                    self.sock.as_raw_fd(),
                    &mut iov,
                    Some(&mut cmsg),
                    MsgFlags::MSG_CMSG_CLOEXEC,
                )
                .unwrap();
                let mut fd = None;
                for c in msg.cmsgs().unwrap() {
                    if let ControlMessageOwned::ScmRights(fds) = c {
                        fd = fds.first().copied();
                    }
                }
                (msg.bytes, fd)
            };
            match fd {
                None => {
                    buf.truncate(len);
                    (buf, false)
                }
                Some(fd) => {
                    assert_eq!(len, 0, "a memfd datagram carries no inline data");
                    // SAFETY: the kernel just installed this fd for us; we own it.
                    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
                    let seals = fcntl(f.as_fd(), FcntlArg::F_GET_SEALS).unwrap();
                    assert!(SealFlag::from_bits_truncate(seals).contains(
                        SealFlag::F_SEAL_WRITE | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_GROW
                    ));
                    f.rewind().unwrap();
                    let mut data = Vec::new();
                    f.read_to_end(&mut data).unwrap();
                    (data, true)
                }
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn short_entry_is_one_plain_datagram() {
        let srv = Server::bind("short");
        srv.journal()
            .send(&[
                ("MESSAGE", b"Listening at: unix:/run/x.sock"),
                ("PRIORITY", b"6"),
                ("SYSLOG_IDENTIFIER", b"rgunicorn"),
            ])
            .unwrap();
        let (data, via_memfd) = srv.recv();
        assert!(!via_memfd);
        assert_eq!(
            data,
            b"MESSAGE=Listening at: unix:/run/x.sock\nPRIORITY=6\nSYSLOG_IDENTIFIER=rgunicorn\n"
        );
    }

    #[test]
    fn multi_line_value_is_binary_safe_and_one_entry() {
        let srv = Server::bind("multi");
        let tb = "Traceback (most recent call last):\n  File \"app.py\", line 3\nValueError: boom";
        srv.journal()
            .send(&[("MESSAGE", tb.as_bytes()), ("PRIORITY", b"3")])
            .unwrap();
        let (data, via_memfd) = srv.recv();
        assert!(!via_memfd);
        let mut expected = b"MESSAGE\n".to_vec();
        expected.extend_from_slice(&(tb.len() as u64).to_le_bytes());
        expected.extend_from_slice(tb.as_bytes());
        expected.extend_from_slice(b"\nPRIORITY=3\n");
        assert_eq!(data, expected);
        assert_eq!(decode(&data), fields(&[("MESSAGE", tb), ("PRIORITY", "3")]));
    }

    #[test]
    fn oversized_entry_goes_through_a_sealed_memfd() {
        let srv = Server::bind("large");
        let journal = srv.journal();
        // Shrink the send buffer so the test does not depend on net.core.wmem_max.
        socket2::SockRef::from(&journal.sock)
            .set_send_buffer_size(16 * 1024)
            .unwrap();
        let big: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
        journal
            .send(&[
                ("MESSAGE", big.as_bytes()),
                ("PRIORITY", b"3"),
                ("SYSLOG_IDENTIFIER", b"rgunicorn"),
            ])
            .unwrap();
        let (data, via_memfd) = srv.recv();
        assert!(via_memfd);
        assert_eq!(
            decode(&data),
            fields(&[
                ("MESSAGE", &big),
                ("PRIORITY", "3"),
                ("SYSLOG_IDENTIFIER", "rgunicorn")
            ])
        );
    }

    #[test]
    fn missing_journal_is_an_error_not_a_panic() {
        let dir = std::env::temp_dir().join("rgunicorn-journal-absent");
        let j = Journal::with_path(dir.join("socket")).unwrap();
        assert!(j.send(&[("MESSAGE", b"x")]).is_err());
    }

    #[test]
    fn field_names_follow_journald_rules() {
        assert!(valid_field_name("REQUEST_METHOD"));
        assert!(valid_field_name("DURATION_US"));
        assert!(!valid_field_name("_PID"));
        assert!(!valid_field_name("1ABC"));
        assert!(!valid_field_name("message"));
        assert!(!valid_field_name(""));
        assert!(!valid_field_name(&"A".repeat(65)));
    }

    #[test]
    fn journal_stream_must_match_the_fd() {
        let file = tempfile_in_target("stream");
        let st = nix::sys::stat::fstat(file.as_fd()).unwrap();
        let value = format!("{}:{}", st.st_dev, st.st_ino);
        assert!(is_journal_stream(file.as_fd(), Some(&value)));
        let wrong = format!("{}:{}", st.st_dev, st.st_ino + 1);
        assert!(!is_journal_stream(file.as_fd(), Some(&wrong)));
        assert!(!is_journal_stream(file.as_fd(), Some("garbage")));
        assert!(!is_journal_stream(file.as_fd(), None));
    }

    fn tempfile_in_target(name: &str) -> std::fs::File {
        let path =
            std::env::temp_dir().join(format!("rgunicorn-journal-{}-{name}", std::process::id()));
        let f = std::fs::File::create(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        f
    }
}
