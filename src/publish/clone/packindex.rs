//! git's pack index, version 2 (the only one git and libgit2 write), read and written by us:
//! packing the clone writes its packs itself ([`super::packfile`]), so it writes their indexes
//! too, from what it knows as it writes each entry (its id, the CRC32 of its stored bytes and
//! its offset), without inflating anything again.
//!
//! Layout: `\xfftOc`, version 2, 256 big-endian cumulative counts by the ids' first byte, the
//! sorted ids (20 bytes each), one CRC32 per entry, one 4-byte offset per entry (the high bit
//! set: an index into the table of 8-byte offsets that follows, for packs past 2 GiB), the
//! pack's checksum and the SHA-1 of everything before it.

use std::path::Path;

use git2::Oid;
use sha1::{Digest, Sha1};

use super::{io_err, RepoError};

const MAGIC: [u8; 8] = [0xff, b't', b'O', b'c', 0, 0, 0, 2];

/// What a pack index says: for each object (sorted by id), its CRC32 and offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PackIndex {
    /// Sorted, each once.
    pub(super) ids: Vec<Oid>,
    /// The CRC32 of each entry's stored bytes (header and deflated data).
    pub(super) crcs: Vec<u32>,
    /// Each entry's offset in the pack.
    pub(super) offsets: Vec<u64>,
    /// The pack's trailing SHA-1.
    pub(super) pack_checksum: [u8; 20],
}

impl PackIndex {
    /// Whether the index lists `id`.
    pub(super) fn contains(&self, id: &Oid) -> bool {
        self.ids.binary_search(id).is_ok()
    }
}

/// Reads and checks the index at `path` (its own checksum, sizes, order).
pub(super) fn read(path: &Path) -> Result<PackIndex, RepoError> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    parse(&bytes).ok_or_else(|| RepoError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a valid version 2 pack index",
        ),
    })
}

fn be32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// The index in `bytes`, or `None` if it is not a whole, consistent version 2 index.
pub(super) fn parse(bytes: &[u8]) -> Option<PackIndex> {
    if bytes.get(..8)? != MAGIC || bytes.len() < 8 + 1024 + 40 {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 20);
    if Sha1::digest(body).as_slice() != sum {
        return None;
    }
    let mut previous = 0;
    for i in 0..256 {
        let n = be32(bytes, 8 + i * 4)?;
        if n < previous {
            return None;
        }
        previous = n;
    }
    let n = previous as usize;
    let ids_at = 8 + 1024;
    let crcs_at = ids_at + n * 20;
    let offsets_at = crcs_at + n * 4;
    let large_at = offsets_at + n * 4;
    let small: Vec<u32> = (0..n)
        .map(|i| be32(bytes, offsets_at + i * 4))
        .collect::<Option<_>>()?;
    let large = small.iter().filter(|o| *o & 0x8000_0000 != 0).count();
    if bytes.len() != large_at + large * 8 + 40 {
        return None;
    }
    let ids: Vec<Oid> = bytes[ids_at..crcs_at]
        .chunks_exact(20)
        .map(|id| Oid::from_bytes(id).ok())
        .collect::<Option<_>>()?;
    if ids.windows(2).any(|w| w[0] >= w[1]) {
        return None;
    }
    // Each id under its first byte's count.
    for (i, id) in ids.iter().enumerate() {
        let first = usize::from(id.as_bytes()[0]);
        let below = if first == 0 {
            0
        } else {
            be32(bytes, 8 + (first - 1) * 4)?
        };
        let upto = be32(bytes, 8 + first * 4)?;
        if (i as u32) < below || i as u32 >= upto {
            return None;
        }
    }
    let crcs = (0..n)
        .map(|i| be32(bytes, crcs_at + i * 4))
        .collect::<Option<_>>()?;
    let offsets = small
        .iter()
        .map(|&o| {
            if o & 0x8000_0000 == 0 {
                return Some(u64::from(o));
            }
            let at = large_at + (o & 0x7fff_ffff) as usize * 8;
            let b = bytes.get(at..at + 8)?;
            Some(u64::from_be_bytes(b.try_into().ok()?))
        })
        .collect::<Option<_>>()?;
    let pack_checksum = bytes[large_at + large * 8..large_at + large * 8 + 20]
        .try_into()
        .ok()?;
    Some(PackIndex {
        ids,
        crcs,
        offsets,
        pack_checksum,
    })
}

/// The index of a pack whose entries are `entries` (id, CRC32, offset; any order, each id
/// once) and whose checksum is `pack_checksum`.
pub(super) fn encode(entries: &mut [(Oid, u32, u64)], pack_checksum: &[u8; 20]) -> Vec<u8> {
    entries.sort_unstable_by_key(|e| e.0);
    let n = entries.len();
    let mut out = Vec::with_capacity(8 + 1024 + n * 28 + 40);
    out.extend_from_slice(&MAGIC);
    let mut counts = [0u32; 256];
    for (id, _, _) in entries.iter() {
        counts[usize::from(id.as_bytes()[0])] += 1;
    }
    let mut total = 0u32;
    for c in counts {
        total += c;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in entries.iter() {
        out.extend_from_slice(id.as_bytes());
    }
    for (_, crc, _) in entries.iter() {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, _, offset) in entries.iter() {
        if *offset < 0x8000_0000 {
            out.extend_from_slice(&(*offset as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&(0x8000_0000 | (large.len() / 8) as u32).to_be_bytes());
            large.extend_from_slice(&offset.to_be_bytes());
        }
    }
    out.extend_from_slice(&large);
    out.extend_from_slice(pack_checksum);
    let sum = Sha1::digest(&out);
    out.extend_from_slice(&sum);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_reads_back_what_was_encoded_large_offsets_included() {
        let mut entries: Vec<(Oid, u32, u64)> = (0u32..300)
            .map(|i| {
                let mut id = [0u8; 20];
                id[..4].copy_from_slice(&i.wrapping_mul(0x9E37_79B1).to_be_bytes());
                id[19] = i as u8;
                let offset = if i % 7 == 0 {
                    (5u64 << 31) + u64::from(i)
                } else {
                    12 + u64::from(i) * 100
                };
                (Oid::from_bytes(&id).unwrap(), i ^ 0xdead_beef, offset)
            })
            .collect();
        let bytes = encode(&mut entries.clone(), &[7; 20]);
        let index = parse(&bytes).unwrap();
        entries.sort_unstable_by_key(|e| e.0);
        assert_eq!(index.ids, entries.iter().map(|e| e.0).collect::<Vec<_>>());
        assert_eq!(index.crcs, entries.iter().map(|e| e.1).collect::<Vec<_>>());
        assert_eq!(
            index.offsets,
            entries.iter().map(|e| e.2).collect::<Vec<_>>()
        );
        assert_eq!(index.pack_checksum, [7; 20]);
        assert!(index.contains(&entries[5].0));
        // Any damaged byte is refused (the checksum), and so is a truncated index.
        for at in [0, 9, 8 + 1024 + 3, bytes.len() - 30, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            assert!(parse(&bad).is_none(), "byte {at}");
        }
        assert!(parse(&bytes[..bytes.len() - 1]).is_none());
    }
}
