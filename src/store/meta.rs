//! The open-time check that LMDB's data file is as long as its meta pages say.
//!
//! LMDB maps `data.mdb` and reads pages straight from the map: a page past the file's end (the
//! file was truncated, a copy was cut short, a disk lost its tail) is a SIGBUS that kills the
//! process with no message. So before heed maps the file, [`check`] reads the two meta pages
//! (`MDB_meta` in lmdb's `mdb.c`: page size, `mm_last_pg`, `mm_txnid`), takes the one with the
//! higher transaction id, as LMDB does, and requires the file to hold every page up to its last
//! used one. LMDB notes that the file "may be shorter if the freeDB lists the final pages" (pages
//! dirtied then freed in one transaction are never written), so a short file passes only when
//! every missing page is listed free in that meta's free-page tree, which the check reads with
//! plain reads (never the map), bounded by [`STORE_CHECK_PAGES_MAX`] pages.
//!
//! An empty file is not damage: LMDB initialises it as a new store (an emptied store is caught by
//! the own-feed marker, [`crate::daemon::own_seq`]). The layout read here is the one of
//! lmdb-master-sys (heed's LMDB) on a 64-bit little-endian machine.

use std::collections::BTreeSet;

use crate::limits::STORE_CHECK_PAGES_MAX;

/// Name of LMDB's data file inside the store directory.
pub(crate) const DATA_FILE: &str = "data.mdb";

const MAGIC: u32 = 0xBEEF_C0DE;
/// `PAGEHDRSZ`: page number (8), pad (2), flags (2), lower and upper (2 + 2).
const PAGE_HEADER: usize = 16;
/// Offsets inside `MDB_meta` (after the page header).
const META_MAGIC: usize = 0;
/// `mm_dbs[FREE_DBI].md_pad` holds the page size.
const META_PSIZE: usize = 24;
/// `mm_dbs[FREE_DBI].md_root`.
const META_FREE_ROOT: usize = 24 + 40;
const META_LAST_PG: usize = 120;
const META_TXNID: usize = 128;
const META_BYTES: usize = 136;
const PAGE_SIZE_MIN: u32 = 512;
const PAGE_SIZE_MAX: u32 = 0x8000;
const P_BRANCH: u16 = 0x01;
const P_LEAF: u16 = 0x02;
const P_OVERFLOW: u16 = 0x04;
const F_BIGDATA: u16 = 0x01;
/// `NODESIZE`: data size or page number (2 + 2), flags (2), key size (2).
const NODE_HEADER: usize = 8;
const P_INVALID: u64 = u64::MAX;
/// Deeper than any real B-tree over a file of 2^64 bytes.
const TREE_DEPTH_MAX: usize = 64;

/// What is wrong with a data file.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Damage {
    /// Too short to hold both meta pages.
    #[error("{len} bytes cannot hold LMDB's two meta pages")]
    NoMetas {
        /// The file's length.
        len: u64,
    },
    /// A meta page does not carry LMDB's magic number or a possible page size.
    #[error("meta page {index} is not an LMDB meta page")]
    BadMeta {
        /// Which meta page (0 or 1).
        index: u8,
    },
    /// The file ends before the last page the newest meta page says is in use.
    #[error("{len} bytes, but LMDB's last used page ends at byte {need}")]
    Truncated {
        /// The file's length.
        len: u64,
        /// The length the meta page requires.
        need: u64,
    },
    /// The free-page tree, read to excuse a short file, is itself damaged.
    #[error("the free-page list is unreadable: {0}")]
    FreeList(&'static str),
}

/// A data file read by position (a real file, or bytes in a test).
pub(crate) trait DataFile {
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// Fill `buf` from `offset`; the caller keeps `offset + buf.len() <= len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()>;
}

impl DataFile for std::fs::File {
    fn len(&self) -> u64 {
        self.metadata().map_or(0, |m| m.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl DataFile for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let start = usize::try_from(offset).map_err(std::io::Error::other)?;
        let part = self
            .get(start..start + buf.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        buf.copy_from_slice(part);
        Ok(())
    }
}

/// Why the check could not decide: reading failed, or the file is damaged.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CheckError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Damaged(#[from] Damage),
}

struct Meta {
    psize: u64,
    last_pg: u64,
    txnid: u64,
    free_root: u64,
}

/// Check that `file` holds every page LMDB may read (see the module doc).
pub(crate) fn check(file: &(impl DataFile + ?Sized)) -> Result<(), CheckError> {
    let len = file.len();
    if len == 0 {
        return Ok(());
    }
    let first = read_meta(file, 0, None)?;
    let second = read_meta(file, 1, Some(first.psize))?;
    let meta = if second.txnid > first.txnid {
        second
    } else {
        first
    };
    let need = meta
        .last_pg
        .checked_add(1)
        .and_then(|pages| pages.checked_mul(meta.psize))
        .ok_or(Damage::BadMeta { index: 0 })?;
    if len >= need {
        return Ok(());
    }
    let truncated = Damage::Truncated { len, need };
    // Pages from `present` on are (at least partly) missing; all must be listed free.
    let present = len / meta.psize;
    let missing = meta.last_pg + 1 - present;
    if missing > STORE_CHECK_PAGES_MAX {
        return Err(truncated.into());
    }
    // A free list that reaches past the end is one more sign of the same truncation.
    let free = match free_pages_from(file, &meta, present) {
        Ok(free) => free,
        Err(CheckError::Damaged(Damage::FreeList(_))) => return Err(truncated.into()),
        Err(e) => return Err(e),
    };
    if free.len() as u64 == missing {
        Ok(())
    } else {
        Err(truncated.into())
    }
}

fn read_meta(
    file: &(impl DataFile + ?Sized),
    index: u8,
    psize: Option<u64>,
) -> Result<Meta, CheckError> {
    let start = psize.unwrap_or(0) * u64::from(index);
    let mut buf = [0u8; PAGE_HEADER + META_BYTES];
    if file.len() < start + buf.len() as u64 {
        return Err(Damage::NoMetas { len: file.len() }.into());
    }
    file.read_at(start, &mut buf)?;
    let meta = &buf[PAGE_HEADER..];
    let bad = Damage::BadMeta { index };
    if u32_at(meta, META_MAGIC) != Some(MAGIC) {
        return Err(bad.into());
    }
    let size = u32_at(meta, META_PSIZE).ok_or(Damage::BadMeta { index })?;
    if !(PAGE_SIZE_MIN..=PAGE_SIZE_MAX).contains(&size) || !size.is_power_of_two() {
        return Err(bad.into());
    }
    let size = u64::from(size);
    if psize.is_some_and(|first| first != size) {
        return Err(bad.into());
    }
    if file.len() < size * 2 {
        return Err(Damage::NoMetas { len: file.len() }.into());
    }
    let field = |at| u64_at(meta, at).ok_or(Damage::BadMeta { index });
    Ok(Meta {
        psize: size,
        last_pg: field(META_LAST_PG)?,
        txnid: field(META_TXNID)?,
        free_root: field(META_FREE_ROOT)?,
    })
}

/// The pages at or past `present` that the free-page tree lists, reading only pages before it.
fn free_pages_from(
    file: &(impl DataFile + ?Sized),
    meta: &Meta,
    present: u64,
) -> Result<BTreeSet<u64>, CheckError> {
    let mut free = BTreeSet::new();
    if meta.free_root == P_INVALID {
        return Ok(free);
    }
    let psize = usize::try_from(meta.psize).map_err(|_| Damage::FreeList("page size"))?;
    let mut read = 0u64;
    let mut page = vec![0u8; psize];
    let mut stack = vec![(meta.free_root, 0usize)];
    while let Some((pgno, depth)) = stack.pop() {
        read += 1;
        if read > STORE_CHECK_PAGES_MAX || depth > TREE_DEPTH_MAX {
            return Err(Damage::FreeList("deeper or larger than any real tree").into());
        }
        load(file, meta, present, pgno, &mut page)?;
        let flags = u16_at(&page, 10).ok_or(Damage::FreeList("page header"))?;
        for node in nodes(&page)? {
            let at = |off: usize| node + off;
            let lo = u64::from(u16_at(&page, at(0)).ok_or(Damage::FreeList("node"))?);
            let hi = u64::from(u16_at(&page, at(2)).ok_or(Damage::FreeList("node"))?);
            let nflags = u16_at(&page, at(4)).ok_or(Damage::FreeList("node"))?;
            let ksize = usize::from(u16_at(&page, at(6)).ok_or(Damage::FreeList("node"))?);
            if flags & P_BRANCH != 0 {
                stack.push((lo | hi << 16 | u64::from(nflags) << 32, depth + 1));
            } else if flags & P_LEAF != 0 {
                let size = lo | hi << 16;
                let data = at(NODE_HEADER + ksize);
                let ids = if nflags & F_BIGDATA != 0 {
                    let first = u64_at(&page, data).ok_or(Damage::FreeList("overflow"))?;
                    read_overflow(file, meta, present, first, size, &mut read)?
                } else {
                    let end = usize::try_from(size)
                        .ok()
                        .and_then(|size| data.checked_add(size))
                        .ok_or(Damage::FreeList("leaf value"))?;
                    page.get(data..end)
                        .ok_or(Damage::FreeList("leaf value"))?
                        .to_vec()
                };
                for id in id_list(&ids)? {
                    if id >= present && id <= meta.last_pg {
                        free.insert(id);
                    }
                }
            } else {
                return Err(Damage::FreeList("neither a branch nor a leaf page").into());
            }
        }
    }
    Ok(free)
}

/// Read page `pgno`, which must lie wholly before `present`.
fn load(
    file: &(impl DataFile + ?Sized),
    meta: &Meta,
    present: u64,
    pgno: u64,
    page: &mut [u8],
) -> Result<(), CheckError> {
    if pgno < 2 || pgno >= present {
        return Err(Damage::FreeList("a page of the list itself is missing").into());
    }
    file.read_at(pgno * meta.psize, page)?;
    Ok(())
}

/// Offsets of the nodes of a branch or leaf page.
fn nodes(page: &[u8]) -> Result<Vec<usize>, Damage> {
    let lower = usize::from(u16_at(page, 12).ok_or(Damage::FreeList("page header"))?);
    let count = lower
        .checked_sub(PAGE_HEADER)
        .ok_or(Damage::FreeList("page header"))?
        / 2;
    (0..count)
        .map(|i| {
            let off = usize::from(
                u16_at(page, PAGE_HEADER + 2 * i).ok_or(Damage::FreeList("node pointer"))?,
            );
            if off + NODE_HEADER > page.len() {
                return Err(Damage::FreeList("node pointer"));
            }
            Ok(off)
        })
        .collect()
}

/// The bytes of a value kept on overflow pages starting at `first`.
fn read_overflow(
    file: &(impl DataFile + ?Sized),
    meta: &Meta,
    present: u64,
    first: u64,
    size: u64,
    read: &mut u64,
) -> Result<Vec<u8>, CheckError> {
    let mut header = [0u8; PAGE_HEADER];
    if first < 2 || first >= present {
        return Err(Damage::FreeList("a page of the list itself is missing").into());
    }
    file.read_at(first * meta.psize, &mut header)?;
    let flags = u16_at(&header, 10).ok_or(Damage::FreeList("overflow"))?;
    let pages = u64::from(u32_at(&header, 12).ok_or(Damage::FreeList("overflow"))?);
    *read += pages;
    let end = first
        .checked_add(pages)
        .ok_or(Damage::FreeList("overflow"))?;
    if flags & P_OVERFLOW == 0
        || *read > STORE_CHECK_PAGES_MAX
        || end > present
        || size + PAGE_HEADER as u64 > pages * meta.psize
    {
        return Err(Damage::FreeList("overflow pages").into());
    }
    let mut value = vec![0u8; usize::try_from(size).map_err(|_| Damage::FreeList("overflow"))?];
    file.read_at(first * meta.psize + PAGE_HEADER as u64, &mut value)?;
    Ok(value)
}

/// An `MDB_IDL`: a count, then that many page numbers.
fn id_list(bytes: &[u8]) -> Result<Vec<u64>, Damage> {
    let count = u64_at(bytes, 0).ok_or(Damage::FreeList("id list"))?;
    let count = usize::try_from(count).map_err(|_| Damage::FreeList("id list"))?;
    if count > bytes.len() / 8 {
        return Err(Damage::FreeList("id list longer than its value"));
    }
    (1..=count)
        .map(|i| u64_at(bytes, i * 8).ok_or(Damage::FreeList("id list")))
        .collect()
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A real store with some data, closed; its data file's bytes.
    fn real_data_file(values: usize, value_bytes: usize) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for round in 0..4 {
                store
                    .write(|w| {
                        for i in 0..values {
                            let host = format!("host-{round}-{i}:1");
                            w.put_switchboard(&host, &"x".repeat(value_bytes))?;
                        }
                        Ok::<_, crate::store::StoreError>(())
                    })
                    .unwrap();
            }
        }
        std::fs::read(dir.path().join(crate::store::STORE_DIR).join(DATA_FILE)).unwrap()
    }

    #[test]
    fn a_whole_store_and_an_empty_file_pass() {
        let bytes = real_data_file(200, 100);
        check(bytes.as_slice()).unwrap();
        check(&[][..]).unwrap();
    }

    #[test]
    fn every_cut_of_a_real_store_is_caught() {
        let bytes = real_data_file(300, 3000);
        let psize = 4096;
        assert!(bytes.len() > 16 * psize, "the store spans many pages");
        for cut in [
            1,
            100,
            psize,
            2 * psize - 1,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let result = check(&bytes[..cut]);
            assert!(
                matches!(result, Err(CheckError::Damaged(_))),
                "a cut at {cut} of {} passed: {result:?}",
                bytes.len()
            );
        }
        match check(&bytes[..bytes.len() / 2]) {
            Err(CheckError::Damaged(Damage::Truncated { len, need })) => {
                assert_eq!(len as usize, bytes.len() / 2);
                assert!(need as usize <= bytes.len());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_foreign_file_is_not_taken_for_a_store() {
        let junk = vec![0x5au8; 64 * 1024];
        assert!(matches!(
            check(junk.as_slice()),
            Err(CheckError::Damaged(Damage::BadMeta { index: 0 }))
        ));
    }

    #[test]
    fn missing_pages_listed_free_are_not_damage() {
        // Build a free list by hand: meta pages claim 6 pages, the file has 5, and the free
        // tree (a single leaf at page 2) lists page 5.
        let psize = 4096usize;
        let mut file = vec![0u8; 5 * psize];
        for index in 0..2u64 {
            let meta = index as usize * psize + PAGE_HEADER;
            file[meta..meta + 4].copy_from_slice(&MAGIC.to_le_bytes());
            file[meta + META_PSIZE..meta + META_PSIZE + 4]
                .copy_from_slice(&(psize as u32).to_le_bytes());
            file[meta + META_FREE_ROOT..meta + META_FREE_ROOT + 8]
                .copy_from_slice(&2u64.to_le_bytes());
            file[meta + META_LAST_PG..meta + META_LAST_PG + 8].copy_from_slice(&5u64.to_le_bytes());
            file[meta + META_TXNID..meta + META_TXNID + 8]
                .copy_from_slice(&(7 + index).to_le_bytes());
        }
        let leaf = 2 * psize;
        file[leaf + 10..leaf + 12].copy_from_slice(&P_LEAF.to_le_bytes());
        file[leaf + 12..leaf + 14].copy_from_slice(&((PAGE_HEADER + 2) as u16).to_le_bytes());
        let node = 1000usize;
        file[leaf + PAGE_HEADER..leaf + PAGE_HEADER + 2]
            .copy_from_slice(&(node as u16).to_le_bytes());
        let ids: Vec<u8> = [1u64, 5].iter().flat_map(|v| v.to_le_bytes()).collect();
        let n = leaf + node;
        file[n..n + 2].copy_from_slice(&(ids.len() as u16).to_le_bytes());
        file[n + 6..n + 8].copy_from_slice(&8u16.to_le_bytes());
        file[n + 8..n + 16].copy_from_slice(&8u64.to_le_bytes());
        file[n + 16..n + 16 + ids.len()].copy_from_slice(&ids);
        check(file.as_slice()).unwrap();
        // Without page 5 on the list the same file is truncated.
        file[n + 16 + 8..n + 16 + 16].copy_from_slice(&3u64.to_le_bytes());
        assert!(matches!(
            check(file.as_slice()),
            Err(CheckError::Damaged(Damage::Truncated { .. }))
        ));
    }
}
