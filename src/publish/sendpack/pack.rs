//! git's pack format (version 2) as a push sends it, and git's delta encoding.
//!
//! A pack is `PACK`, the version (2) and the object count, then each object: a header (type and
//! size, seven bits a byte) and its zlib-deflated content; a `REF_DELTA` (type 7) names its
//! base by id before the deflated delta. The SHA-1 of everything before it ends the pack.
//!
//! A delta is the base's size and the result's, then instructions: copy `size` bytes from
//! `offset` of the base (a byte with the high bit set saying which offset and size bytes
//! follow), or insert the next 1..=127 bytes as they are. The encoder indexes the base's
//! 16-byte blocks and scans the result with a rolling hash, extending each match both ways:
//! the idea of git's `diff-delta.c`, kept simple (our objects are JSON files and trees that
//! differ from their base in a few places).

use std::io::{self, Write};

use flate2::write::ZlibEncoder;
use flate2::Compression;
use git2::{ObjectType, Oid};
use sha1::{Digest, Sha1};

/// The type number of a `REF_DELTA` entry.
const REF_DELTA: u8 = 7;
/// The block size of the base's index and of a match's minimum.
const WINDOW: usize = 16;
/// The rolling hash's multiplier.
const MULTIPLIER: u32 = 0x0100_0193;
/// How many candidate blocks a position looks at.
const MAX_CANDIDATES: usize = 32;
/// The largest copy one instruction carries (what every git reads).
const MAX_COPY: usize = 0x10000;

/// The pack type number of a commit, tree, blob or tag.
fn type_number(kind: ObjectType) -> io::Result<u8> {
    match kind {
        ObjectType::Commit => Ok(1),
        ObjectType::Tree => Ok(2),
        ObjectType::Blob => Ok(3),
        ObjectType::Tag => Ok(4),
        _ => Err(io::Error::other(format!("cannot pack a {kind} object"))),
    }
}

/// Writes a pack of a known number of objects into `out`, hashing as it goes.
pub(crate) struct PackWriter<W: Write> {
    out: W,
    hash: Sha1,
    remaining: u32,
    /// Bytes written so far.
    pub(crate) written: u64,
}

impl<W: Write> PackWriter<W> {
    /// Starts a pack of `count` objects.
    pub(crate) fn new(out: W, count: u32) -> io::Result<PackWriter<W>> {
        let mut pack = PackWriter {
            out,
            hash: Sha1::new(),
            remaining: count,
            written: 0,
        };
        let mut header = Vec::with_capacity(12);
        header.extend_from_slice(b"PACK");
        header.extend_from_slice(&2u32.to_be_bytes());
        header.extend_from_slice(&count.to_be_bytes());
        pack.put(&header)?;
        Ok(pack)
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hash.update(bytes);
        self.out.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn entry(
        &mut self,
        type_number: u8,
        size: usize,
        base: Option<Oid>,
        data: &[u8],
    ) -> io::Result<()> {
        if self.remaining == 0 {
            return Err(io::Error::other("more objects than the pack's header says"));
        }
        self.remaining -= 1;
        let mut header = Vec::with_capacity(32);
        let mut rest = size >> 4;
        let mut byte = (type_number << 4) | (size & 0x0f) as u8;
        while rest > 0 {
            header.push(byte | 0x80);
            byte = (rest & 0x7f) as u8;
            rest >>= 7;
        }
        header.push(byte);
        if let Some(base) = base {
            header.extend_from_slice(base.as_bytes());
        }
        let mut z = ZlibEncoder::new(
            Vec::with_capacity(data.len() / 2 + 64),
            Compression::default(),
        );
        z.write_all(data)?;
        let compressed = z.finish()?;
        self.put(&header)?;
        self.put(&compressed)
    }

    /// An object whole.
    pub(crate) fn full(&mut self, kind: ObjectType, data: &[u8]) -> io::Result<()> {
        self.entry(type_number(kind)?, data.len(), None, data)
    }

    /// An object as a delta against `base` (in this pack or, in a thin pack, on the remote).
    pub(crate) fn ref_delta(&mut self, base: Oid, delta: &[u8]) -> io::Result<()> {
        self.entry(REF_DELTA, delta.len(), Some(base), delta)
    }

    /// An entry as another pack stores it (header, base and deflated data), copied unchanged.
    pub(crate) fn stored(&mut self, entry: &[u8]) -> io::Result<()> {
        if self.remaining == 0 {
            return Err(io::Error::other("more objects than the pack's header says"));
        }
        self.remaining -= 1;
        self.put(entry)
    }

    /// The underlying writer (to see what an entry wrote, e.g. its CRC32 for a pack index).
    pub(crate) fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Ends the pack with its SHA-1 and gives back the writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        self.finish_with_checksum().map(|(out, _)| out)
    }

    /// Ends the pack with its SHA-1 and gives back the writer and that checksum (which names a
    /// pack on disk and ends its index).
    pub(crate) fn finish_with_checksum(mut self) -> io::Result<(W, [u8; 20])> {
        if self.remaining != 0 {
            return Err(io::Error::other(
                "fewer objects than the pack's header says",
            ));
        }
        let digest: [u8; 20] = self.hash.clone().finalize().into();
        self.out.write_all(&digest)?;
        self.written += digest.len() as u64;
        Ok((self.out, digest))
    }
}

/// git's size varint: seven bits a byte, least significant first.
fn push_size(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn push_literal(out: &mut Vec<u8>, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        let n = bytes.len().min(127);
        out.push(n as u8);
        out.extend_from_slice(&bytes[..n]);
        bytes = &bytes[n..];
    }
}

fn push_copy(out: &mut Vec<u8>, mut offset: usize, mut len: usize) {
    while len > 0 {
        let n = len.min(MAX_COPY);
        let at = out.len();
        out.push(0x80);
        let mut command = 0x80u8;
        for k in 0..4 {
            let b = ((offset >> (8 * k)) & 0xff) as u8;
            if b != 0 {
                command |= 1 << k;
                out.push(b);
            }
        }
        // A size of 0x10000 is written as no size bytes at all.
        let size = if n == MAX_COPY { 0 } else { n };
        for k in 0..3 {
            let b = ((size >> (8 * k)) & 0xff) as u8;
            if b != 0 {
                command |= 0x10 << k;
                out.push(b);
            }
        }
        out[at] = command;
        offset += n;
        len -= n;
    }
}

fn window_hash(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0u32, |h, &b| {
        h.wrapping_mul(MULTIPLIER).wrapping_add(u32::from(b))
    })
}

/// The base's 16-byte blocks (at every multiple of 16), by hash.
struct Index {
    shift: u32,
    /// First block of each bucket, `u32::MAX` for none.
    heads: Vec<u32>,
    /// The next block of the same bucket.
    next: Vec<u32>,
}

impl Index {
    fn new(base: &[u8]) -> Index {
        let blocks = base.len() / WINDOW;
        let bits = (blocks.max(1) * 2)
            .next_power_of_two()
            .trailing_zeros()
            .max(4);
        let mut index = Index {
            shift: 32 - bits,
            heads: vec![u32::MAX; 1 << bits],
            next: vec![u32::MAX; blocks],
        };
        // From the end, so that each bucket lists its earliest block first.
        for block in (0..blocks).rev() {
            let at = block * WINDOW;
            let bucket = index.bucket(window_hash(&base[at..at + WINDOW]));
            index.next[block] = index.heads[bucket];
            index.heads[bucket] = block as u32;
        }
        index
    }

    fn bucket(&self, hash: u32) -> usize {
        (hash.wrapping_mul(0x9E37_79B1) >> self.shift) as usize
    }

    /// The longest match of `target[at..]` starting at one of the base's blocks.
    fn best_match(
        &self,
        base: &[u8],
        target: &[u8],
        at: usize,
        hash: u32,
    ) -> Option<(usize, usize)> {
        let mut best: Option<(usize, usize)> = None;
        let mut block = self.heads[self.bucket(hash)];
        let mut looked = 0;
        while block != u32::MAX && looked < MAX_CANDIDATES {
            looked += 1;
            let offset = block as usize * WINDOW;
            let len = common_prefix(&base[offset..], &target[at..]);
            if len >= WINDOW && best.is_none_or(|(_, l)| len > l) {
                best = Some((offset, len));
            }
            block = self.next[block as usize];
        }
        best
    }
}

/// How many bytes `a` and `b` have in common from their start. Eight at a time: a match is
/// typically the rest of a file that changed in a few places (a snapshot's multi-megabyte
/// JSON, a backup chunk with one row updated), so this loop is most of a delta's time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    for (x, y) in a[..n].chunks_exact(8).zip(b[..n].chunks_exact(8)) {
        let (x, y) = (
            u64::from_le_bytes([x[0], x[1], x[2], x[3], x[4], x[5], x[6], x[7]]),
            u64::from_le_bytes([y[0], y[1], y[2], y[3], y[4], y[5], y[6], y[7]]),
        );
        if x != y {
            return i + ((x ^ y).trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    i + a[i..n]
        .iter()
        .zip(&b[i..n])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The delta that turns `base` into `target`.
pub(crate) fn delta(base: &[u8], target: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    push_size(&mut out, base.len());
    push_size(&mut out, target.len());
    if base.len() < WINDOW || target.len() < WINDOW {
        push_literal(&mut out, target);
        return out;
    }
    let index = Index::new(base);
    // The multiplier to the power WINDOW - 1, to take a byte out of the rolling hash.
    let out_factor = (1..WINDOW).fold(1u32, |f, _| f.wrapping_mul(MULTIPLIER));
    let mut pending = 0;
    let mut at = 0;
    let mut hash = window_hash(&target[..WINDOW]);
    while at + WINDOW <= target.len() {
        if let Some((mut offset, mut len)) = index.best_match(base, target, at, hash) {
            let mut start = at;
            while start > pending && offset > 0 && base[offset - 1] == target[start - 1] {
                start -= 1;
                offset -= 1;
                len += 1;
            }
            push_literal(&mut out, &target[pending..start]);
            push_copy(&mut out, offset, len);
            at = start + len;
            pending = at;
            if at + WINDOW <= target.len() {
                hash = window_hash(&target[at..at + WINDOW]);
            }
            continue;
        }
        if at + WINDOW < target.len() {
            hash = hash
                .wrapping_sub(u32::from(target[at]).wrapping_mul(out_factor))
                .wrapping_mul(MULTIPLIER)
                .wrapping_add(u32::from(target[at + WINDOW]));
        }
        at += 1;
    }
    push_literal(&mut out, &target[pending..]);
    out
}

/// git's patch-delta: `delta` applied to `base`, or `None` if the delta is malformed or does not
/// fit `base`. A local pack checks each delta it writes with it before trusting it with the
/// clone's objects (copying is cheap next to encoding).
pub(crate) fn apply(base: &[u8], delta: &[u8]) -> Option<Vec<u8>> {
    fn size(d: &[u8], i: &mut usize) -> Option<usize> {
        let (mut n, mut shift) = (0usize, 0u32);
        loop {
            let b = *d.get(*i)?;
            *i += 1;
            n |= usize::from(b & 0x7f).checked_shl(shift)?;
            shift += 7;
            if b & 0x80 == 0 {
                return Some(n);
            }
            if shift > 63 {
                return None;
            }
        }
    }
    let mut i = 0;
    if size(delta, &mut i)? != base.len() {
        return None;
    }
    let want = size(delta, &mut i)?;
    // The size a delta claims is only a hint until the result has it.
    let mut out = Vec::with_capacity(want.min(1 << 26));
    while i < delta.len() {
        let command = delta[i];
        i += 1;
        if command & 0x80 != 0 {
            let (mut offset, mut len) = (0usize, 0usize);
            for k in 0..4 {
                if command & (1 << k) != 0 {
                    offset |= usize::from(*delta.get(i)?) << (8 * k);
                    i += 1;
                }
            }
            for k in 0..3 {
                if command & (0x10 << k) != 0 {
                    len |= usize::from(*delta.get(i)?) << (8 * k);
                    i += 1;
                }
            }
            if len == 0 {
                len = 0x10000;
            }
            out.extend_from_slice(base.get(offset..offset.checked_add(len)?)?);
        } else if command == 0 {
            return None; // reserved
        } else {
            let n = usize::from(command);
            out.extend_from_slice(delta.get(i..i + n)?);
            i += n;
        }
        if out.len() > want {
            return None;
        }
    }
    (out.len() == want).then_some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// git's patch-delta: the result of `delta` applied to `base`.
    pub(crate) fn apply(base: &[u8], delta: &[u8]) -> Vec<u8> {
        super::apply(base, delta).expect("a well-formed delta")
    }

    /// A deterministic pseudo-random byte stream.
    fn noise(seed: u64, len: usize) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn common_prefix_counts_equal_leading_bytes_at_any_length_and_offset() {
        let a = noise(9, 100);
        for len in 0..40 {
            for diff in 0..=len {
                let mut b = a[..len].to_vec();
                if diff < len {
                    b[diff] ^= 0x5a;
                }
                let want = if diff < len { diff } else { len };
                assert_eq!(common_prefix(&a[..len], &b), want, "len {len} diff {diff}");
                assert_eq!(
                    common_prefix(&b, &a),
                    want,
                    "len {len} diff {diff}, longer a"
                );
            }
        }
    }

    #[test]
    fn deltas_rebuild_the_target_and_are_small_for_small_changes() {
        let base = noise(1, 200_000);
        // One insertion, one deletion, one change: a few copies and the new bytes.
        let mut target = base.clone();
        target.splice(1000..1000, b"inserted".iter().copied());
        target.drain(50_000..50_100);
        target[150_000] ^= 0xff;
        let d = delta(&base, &target);
        assert_eq!(apply(&base, &d), target);
        assert!(d.len() < 200, "{} bytes", d.len());
        // Unrelated data, short inputs, empty inputs, long runs of one byte.
        for (b, t) in [
            (noise(2, 5000), noise(3, 7000)),
            (b"short".to_vec(), b"shorter".to_vec()),
            (Vec::new(), noise(4, 100)),
            (noise(5, 100), Vec::new()),
            (vec![b'a'; 300_000], vec![b'a'; 300_001]),
        ] {
            assert_eq!(apply(&b, &delta(&b, &t)), t);
        }
    }

    #[test]
    fn a_delta_that_does_not_fit_its_base_or_its_size_rebuilds_nothing() {
        let base = b"0123456789abcdef0123456789";
        let good = delta(base, b"0123456789abcdef!");
        assert_eq!(
            super::apply(base, &good).as_deref(),
            Some(&b"0123456789abcdef!"[..])
        );
        // Another base's size, a copy past the base's end, a result longer or shorter than
        // said, the reserved instruction, a truncated copy.
        assert_eq!(super::apply(b"short", &good), None);
        assert_eq!(super::apply(base, &[26, 4, 0x91, 24, 4]), None);
        assert_eq!(super::apply(base, &[26, 2, 3, b'a', b'b', b'c']), None);
        assert_eq!(super::apply(base, &[26, 4, 3, b'a', b'b', b'c']), None);
        assert_eq!(super::apply(base, &[26, 1, 0]), None);
        assert_eq!(super::apply(base, &[26, 1, 0x91]), None);
    }

    #[test]
    fn copies_cover_large_offsets_and_lengths() {
        let base = noise(6, 3 << 20);
        let mut target = base[1 << 20..].to_vec();
        target.extend_from_slice(&base[..100_000]);
        let d = delta(&base, &target);
        assert_eq!(apply(&base, &d), target);
        assert!(d.len() < 400, "{} bytes", d.len());
    }

    #[test]
    fn a_pack_has_its_header_entries_and_checksum() {
        let mut pack = PackWriter::new(Vec::new(), 2).unwrap();
        pack.full(ObjectType::Blob, &[b'x'; 40]).unwrap();
        pack.ref_delta(Oid::zero(), &[1, 2, 3]).unwrap();
        let bytes = pack.finish().unwrap();
        assert_eq!(&bytes[..12], b"PACK\0\0\0\x02\0\0\0\x02");
        // A blob of 40 bytes: type 3, size 40 = 0b10_1000 -> 0xb8 (more), then 0x02.
        assert_eq!(&bytes[12..14], &[0xb8, 0x02]);
        let (body, sum) = bytes.split_at(bytes.len() - 20);
        assert_eq!(sum, Sha1::digest(body).as_slice());
        assert!(PackWriter::new(Vec::new(), 0)
            .unwrap()
            .full(ObjectType::Blob, b"")
            .is_err());
    }
}
