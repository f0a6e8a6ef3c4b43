//! The frames a worker process and the host exchange over pipes.
//!
//! A frame is a 4-byte big-endian length, then that many bytes: a kind byte,
//! an 8-byte big-endian call id, a 2-byte big-endian method length, the
//! method, and the body: the same JSON an in-process call carries, unescaped.

use std::io::{self, Read, Write};

/// Largest frame accepted either way. A bigger length is a broken peer.
pub const MAX_FRAME: usize = 256 << 20;

const HEADER: usize = 1 + 8 + 2;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Host → worker: run `method` with the body as request.
    Call,
    /// Worker → host: the call `id` answered; the body is the response.
    Reply,
    /// Worker → host: the call `id` failed; the body is a `PluginError`.
    Error,
    /// Worker → host, once, first: the body says whether the plugin loaded.
    Hello,
}

impl Kind {
    fn byte(self) -> u8 {
        match self {
            Self::Call => 1,
            Self::Reply => 2,
            Self::Error => 3,
            Self::Hello => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Call,
            2 => Self::Reply,
            3 => Self::Error,
            4 => Self::Hello,
            _ => return None,
        })
    }
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: Kind,
    /// The call it belongs to (0 for `Hello`).
    pub id: u64,
    /// The method (calls only).
    pub method: String,
    /// JSON text.
    pub body: String,
}

/// Why a stream of frames ended badly.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// Reading failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// A length over [`MAX_FRAME`].
    #[error("a frame of {0} bytes (the limit is {MAX_FRAME})")]
    TooLarge(u64),
    /// Anything else that is not a frame.
    #[error("malformed frame: {0}")]
    Malformed(&'static str),
}

/// Writes one frame (one `write_all`, so frames from several threads never
/// interleave when the writer is behind a lock).
pub fn write(w: &mut impl Write, kind: Kind, id: u64, method: &str, body: &str) -> io::Result<()> {
    let len = HEADER + method.len() + body.len();
    if len > MAX_FRAME || method.len() > usize::from(u16::MAX) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("a frame of {len} bytes is too large")));
    }
    let mut buf = Vec::with_capacity(4 + len);
    buf.extend_from_slice(&(len as u32).to_be_bytes());
    buf.push(kind.byte());
    buf.extend_from_slice(&id.to_be_bytes());
    buf.extend_from_slice(&(method.len() as u16).to_be_bytes());
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(body.as_bytes());
    w.write_all(&buf)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` when the stream ends cleanly between frames.
pub fn read(r: &mut impl Read) -> Result<Option<Frame>, FrameError> {
    let mut len = [0u8; 4];
    match read_full(r, &mut len)? {
        0 => return Ok(None),
        4 => {}
        _ => return Err(FrameError::Truncated),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len as u64));
    }
    if len < HEADER {
        return Err(FrameError::Malformed("shorter than its header"));
    }
    let mut buf = vec![0u8; len];
    if read_full(r, &mut buf)? != len {
        return Err(FrameError::Truncated);
    }
    let kind = Kind::from_byte(buf[0]).ok_or(FrameError::Malformed("unknown kind"))?;
    let id = u64::from_be_bytes(buf[1..9].try_into().expect("8 bytes"));
    let method_len = usize::from(u16::from_be_bytes([buf[9], buf[10]]));
    if HEADER + method_len > len {
        return Err(FrameError::Malformed("method longer than the frame"));
    }
    let method = std::str::from_utf8(&buf[HEADER..HEADER + method_len])
        .map_err(|_| FrameError::Malformed("method is not UTF-8"))?
        .to_string();
    buf.drain(..HEADER + method_len);
    let body = String::from_utf8(buf).map_err(|_| FrameError::Malformed("body is not UTF-8"))?;
    Ok(Some(Frame { kind, id, method, body }))
}

/// Fills `buf` as far as the stream allows; the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out at most `step` bytes per read, as a pipe may.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.data.len());
            buf[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    fn encoded(frames: &[(Kind, u64, &str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (kind, id, method, body) in frames {
            write(&mut out, *kind, *id, method, body).unwrap();
        }
        out
    }

    #[test]
    fn frames_survive_one_byte_reads() {
        let bytes = encoded(&[
            (Kind::Call, 7, "aws/gpus.query", "{\"name\":\"A100\"}"),
            (Kind::Reply, 7, "", "{\"é\":[1,2]}"),
            (Kind::Hello, 0, "", ""),
        ]);
        for step in [1, 3, 5, bytes.len()] {
            let mut r = Trickle { data: &bytes, step };
            let a = read(&mut r).unwrap().unwrap();
            assert_eq!(
                (a.kind, a.id, a.method.as_str(), a.body.as_str()),
                (Kind::Call, 7, "aws/gpus.query", "{\"name\":\"A100\"}")
            );
            let b = read(&mut r).unwrap().unwrap();
            assert_eq!((b.kind, b.body.as_str()), (Kind::Reply, "{\"é\":[1,2]}"));
            assert_eq!(read(&mut r).unwrap().unwrap().kind, Kind::Hello);
            assert!(read(&mut r).unwrap().is_none(), "clean end between frames");
        }
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_truncated() {
        let bytes = encoded(&[(Kind::Reply, 1, "", "{\"a\":1}")]);
        for cut in [1, 3, 4, 10, bytes.len() - 1] {
            let err = read(&mut &bytes[..cut]).unwrap_err();
            assert!(matches!(err, FrameError::Truncated), "cut at {cut}: {err}");
        }
    }

    #[test]
    fn oversize_frames_are_refused_before_reading_them() {
        let mut bytes = ((MAX_FRAME + 1) as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(b"whatever follows is never read");
        assert!(matches!(read(&mut bytes.as_slice()), Err(FrameError::TooLarge(n)) if n == MAX_FRAME as u64 + 1));
        let huge = "x".repeat(MAX_FRAME);
        assert!(write(&mut Vec::new(), Kind::Reply, 1, "", &huge).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        // What a plugin printing to the frame stream would produce.
        let text = b"Hello from a plugin that prints!\n";
        assert!(matches!(read(&mut &text[..]), Err(FrameError::TooLarge(_))));
        let mut bad_kind = encoded(&[(Kind::Reply, 1, "", "{}")]);
        bad_kind[4] = 99;
        assert!(matches!(read(&mut bad_kind.as_slice()), Err(FrameError::Malformed("unknown kind"))));
        let mut long_method = encoded(&[(Kind::Call, 1, "m", "")]);
        long_method[13..15].copy_from_slice(&500u16.to_be_bytes());
        assert!(matches!(read(&mut long_method.as_slice()), Err(FrameError::Malformed(_))));
        let mut not_utf8 = encoded(&[(Kind::Reply, 1, "", "ab")]);
        let n = not_utf8.len();
        not_utf8[n - 1] = 0xff;
        assert!(matches!(read(&mut not_utf8.as_slice()), Err(FrameError::Malformed("body is not UTF-8"))));
        let short = [0u8, 0, 0, 2, 1, 2];
        assert!(matches!(read(&mut &short[..]), Err(FrameError::Malformed(_))));
    }
}
