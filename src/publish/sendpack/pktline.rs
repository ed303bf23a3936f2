//! git's pkt-line framing: four hex digits giving the length (themselves included), then the
//! payload; `0000` is a flush. With `side-band-64k`, each payload of an answer starts with its
//! band: 1 data, 2 progress and messages (a hook's output), 3 a fatal error.

use std::io::{self, Read};

/// The largest payload a pkt-line carries.
const MAX_PAYLOAD: usize = 65516;

/// `payload` as one pkt-line.
pub(crate) fn encode(payload: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", payload.len() + 4).into_bytes();
    out.extend_from_slice(payload);
    out
}

/// A flush packet.
pub(crate) const FLUSH: &[u8] = b"0000";

/// One packet read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Packet {
    Flush,
    Data(Vec<u8>),
}

/// Reads the next packet; `None` at the end of the stream.
pub(crate) fn read(input: &mut impl Read) -> io::Result<Option<Packet>> {
    let mut length = [0u8; 4];
    match input.read_exact(&mut length) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let text = std::str::from_utf8(&length).ok();
    let Some(n) = text.and_then(|t| usize::from_str_radix(t, 16).ok()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a pkt-line length: {:?}",
                String::from_utf8_lossy(&length)
            ),
        ));
    };
    match n {
        // 0001 (delim) and 0002 (response end) are protocol v2's; treated as flushes.
        0..=3 => Ok(Some(Packet::Flush)),
        _ if n - 4 > MAX_PAYLOAD => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("pkt-line of {n} bytes"),
        )),
        _ => {
            let mut payload = vec![0u8; n - 4];
            input.read_exact(&mut payload)?;
            Ok(Some(Packet::Data(payload)))
        }
    }
}

/// `line` without its trailing newline.
pub(crate) fn chomp(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\n").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip() {
        let mut bytes = encode(b"hello\n");
        bytes.extend_from_slice(FLUSH);
        bytes.extend_from_slice(&encode(b""));
        assert_eq!(&bytes[..4], b"000a");
        let mut input = &bytes[..];
        assert_eq!(
            read(&mut input).unwrap(),
            Some(Packet::Data(b"hello\n".to_vec()))
        );
        assert_eq!(read(&mut input).unwrap(), Some(Packet::Flush));
        assert_eq!(read(&mut input).unwrap(), Some(Packet::Data(Vec::new())));
        assert_eq!(read(&mut input).unwrap(), None);
        assert!(read(&mut &b"zzzz"[..]).is_err());
        assert!(read(&mut &b"0010abc"[..]).is_err(), "cut short");
    }
}
