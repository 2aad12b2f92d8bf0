//! Reading what Docker's archive API (`GET /containers/{id}/archive`) sends
//! back: a tar stream of the requested file or directory, every entry named
//! below the requested path's base name (`configs/`, `configs/a.txt`, …).
//! Pure functions over `std::io::Read`, so the listing depth, the skip list
//! and the size cap are tested on in-memory archives; [`ChunkReader`] feeds
//! them the HTTP body from a blocking thread. Talking to Docker is
//! `docker/files.rs`'s job.

use crate::files::{FileEntry, ListDepth, is_skipped};
use bytes::{Buf, Bytes};
use std::io::Read;
use std::path::{Component, Path};

/// Go's `os.FileMode` bits in the archive API's path stat.
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
/// Every type bit of `os.ModeType`: directory, symlink, named pipe,
/// socket, device, char device, irregular.
const MODE_TYPE: u32 = MODE_DIR | MODE_SYMLINK | 1 << 25 | 1 << 24 | 1 << 26 | 1 << 21 | 1 << 19;

/// What a path stat says a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatKind {
    Dir,
    Symlink,
    File,
    /// Pipes, sockets, devices: never read.
    Special,
}

impl StatKind {
    pub(crate) fn of_mode(mode: u32) -> Self {
        if mode & MODE_SYMLINK != 0 {
            Self::Symlink
        } else if mode & MODE_DIR != 0 {
            Self::Dir
        } else if mode & MODE_TYPE == 0 {
            Self::File
        } else {
            Self::Special
        }
    }
}

/// The archive's entries below the requested directory, at most `depth`
/// deep, without skipped names or anything below them, sorted by path.
/// Symlinks (never followed), hard links and special files are files of
/// size 0; names that are not UTF-8 are left out, as nothing could address
/// them.
pub(crate) fn list_archive(reader: impl Read, depth: ListDepth) -> Result<Vec<FileEntry>, String> {
    let mut archive = tar::Archive::new(reader);
    let mut listed = Vec::new();
    for entry in archive.entries().map_err(archive_error)? {
        let entry = entry.map_err(archive_error)?;
        let path = entry.path().map_err(archive_error)?;
        let Some(parts) = below_base(&path) else {
            continue;
        };
        if !depth.includes(parts.len()) || parts.iter().any(|p| is_skipped(p)) {
            continue;
        }
        let kind = entry.header().entry_type();
        listed.push(FileEntry {
            path: parts.join("/"),
            size: if kind.is_file() { entry.size() } else { 0 },
            dir: kind.is_dir(),
        });
    }
    listed.sort_by(|a, b| a.path.cmp(&b.path));
    listed.dedup_by(|a, b| a.path == b.path);
    Ok(listed)
}

/// An entry's components after the base name; `None` for names that are
/// not plain UTF-8 components.
fn below_base(path: &Path) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str()?.to_string()),
            Component::CurDir => {}
            _ => return None,
        }
    }
    if parts.is_empty() {
        return None;
    }
    parts.remove(0);
    Some(parts)
}

/// What the archive of one path held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ArchivedFile {
    Contents(Vec<u8>),
    /// A directory, a symlink, a special file, or an empty archive.
    NotAFile,
    /// More than the limit; reading stopped at limit + 1 bytes.
    TooLarge,
}

/// The first entry of the archive, read when it is a regular file of at most
/// `max_bytes`. Nothing past `max_bytes + 1` bytes of it is read, and
/// nothing after it.
pub(crate) fn read_archive(reader: impl Read, max_bytes: u64) -> Result<ArchivedFile, String> {
    let mut archive = tar::Archive::new(reader);
    let mut entries = archive.entries().map_err(archive_error)?;
    let Some(entry) = entries.next() else {
        return Ok(ArchivedFile::NotAFile);
    };
    let entry = entry.map_err(archive_error)?;
    if !entry.header().entry_type().is_file() {
        return Ok(ArchivedFile::NotAFile);
    }
    let size = entry.size();
    if size > max_bytes {
        return Ok(ArchivedFile::TooLarge);
    }
    let mut contents = Vec::new();
    entry
        .take(max_bytes.saturating_add(1))
        .read_to_end(&mut contents)
        .map_err(archive_error)?;
    if contents.len() as u64 > max_bytes {
        return Ok(ArchivedFile::TooLarge);
    }
    // The tar reader stops quietly where the stream stopped.
    if (contents.len() as u64) < size {
        return Err(format!(
            "the archive ended {} bytes into a {size}-byte file",
            contents.len()
        ));
    }
    Ok(ArchivedFile::Contents(contents))
}

fn archive_error(e: std::io::Error) -> String {
    format!("reading the archive Docker sent: {e}")
}

/// A blocking `Read` over chunks sent from an async task, so the tar crate
/// can parse a download as it streams in, without holding it all. Runs on a
/// blocking thread (`spawn_blocking`). The end of the channel is the end of
/// the stream: the sender decides whether that was complete.
pub(crate) struct ChunkReader {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChunkReader {
    pub(crate) fn new(chunks: tokio::sync::mpsc::Receiver<Bytes>) -> Self {
        Self {
            chunks,
            current: Bytes::new(),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.chunks.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive as Docker sends it for `/configs`: the base directory
    /// first, then everything below it.
    fn archive(entries: &[(&str, Option<&str>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, contents) in entries {
            let mut header = tar::Header::new_gnu();
            match contents {
                Some(body) => {
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(body.len() as u64);
                    header.set_mode(0o644);
                    builder
                        .append_data(&mut header, path, body.as_bytes())
                        .unwrap();
                }
                None => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    header.set_mode(0o755);
                    builder
                        .append_data(&mut header, format!("{path}/"), std::io::empty())
                        .unwrap();
                }
            }
        }
        builder.into_inner().unwrap()
    }

    fn symlink_archive() -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "configs/link", "/etc/passwd")
            .unwrap();
        builder.into_inner().unwrap()
    }

    fn tree() -> Vec<u8> {
        archive(&[
            ("configs", None),
            ("configs/config.yaml", Some("name: pm\n")),
            ("configs/skills", None),
            ("configs/skills/a", None),
            ("configs/skills/a/SKILL.md", Some("# a")),
            ("configs/skills/b.md", Some("bb")),
            ("configs/.git", None),
            ("configs/.git/HEAD", Some("ref")),
            ("configs/skills/node_modules", None),
            ("configs/skills/node_modules/x.js", Some("x")),
            ("configs/__pycache__", None),
            ("configs/.DS_Store", Some("junk")),
        ])
    }

    fn listed(bytes: &[u8], depth: u32) -> Vec<(String, u64, bool)> {
        list_archive(bytes, ListDepth::new(depth).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.path, e.size, e.dir))
            .collect()
    }

    #[test]
    fn listing_honours_depth_and_the_skip_list() {
        let bytes = tree();
        let entry = |p: &str, size, dir| (p.to_string(), size, dir);
        let depth1 = vec![entry("config.yaml", 9, false), entry("skills", 0, true)];
        assert_eq!(listed(&bytes, 1), depth1);
        let depth2 = vec![
            entry("config.yaml", 9, false),
            entry("skills", 0, true),
            entry("skills/a", 0, true),
            entry("skills/b.md", 2, false),
        ];
        assert_eq!(listed(&bytes, 2), depth2);
        let mut depth3 = depth2.clone();
        depth3.insert(3, entry("skills/a/SKILL.md", 3, false));
        assert_eq!(listed(&bytes, 3), depth3);
        assert_eq!(listed(&bytes, 5), depth3);
    }

    #[test]
    fn symlinks_are_listed_as_empty_files_and_never_read() {
        assert_eq!(
            listed(&symlink_archive(), 1),
            vec![("link".to_string(), 0, false)]
        );
        let link_itself = {
            let mut builder = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, "link", "/etc/passwd")
                .unwrap();
            builder.into_inner().unwrap()
        };
        assert_eq!(
            read_archive(link_itself.as_slice(), 100),
            Ok(ArchivedFile::NotAFile)
        );
    }

    #[test]
    fn long_names_survive() {
        let long = format!("configs/{}/file.txt", "d".repeat(150));
        let bytes = archive(&[("configs", None), (long.as_str(), Some("x"))]);
        let got = listed(&bytes, 2);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, format!("{}/file.txt", "d".repeat(150)));
    }

    #[test]
    fn reading_stops_at_the_size_cap() {
        let file = archive(&[("notes.txt", Some("0123456789"))]);
        let cases = [
            (10, ArchivedFile::Contents(b"0123456789".to_vec())),
            (100, ArchivedFile::Contents(b"0123456789".to_vec())),
            (9, ArchivedFile::TooLarge),
            (0, ArchivedFile::TooLarge),
        ];
        for (max, want) in cases {
            assert_eq!(read_archive(file.as_slice(), max), Ok(want), "max {max}");
        }
        let dir = archive(&[("skills", None), ("skills/a.md", Some("a"))]);
        assert_eq!(
            read_archive(dir.as_slice(), 100),
            Ok(ArchivedFile::NotAFile)
        );
        assert_eq!(
            read_archive(&[0u8; 1024][..], 100),
            Ok(ArchivedFile::NotAFile)
        );
    }

    #[test]
    fn a_truncated_archive_is_an_error() {
        let bytes = tree();
        assert!(list_archive(&bytes[..700], ListDepth::CHILDREN).is_err());
        let file = archive(&[("notes.txt", Some("0123456789"))]);
        assert!(read_archive(&file[..515], 100).is_err());
    }

    #[test]
    fn path_stat_modes() {
        let cases = [
            (0o644, StatKind::File),
            (MODE_DIR | 0o755, StatKind::Dir),
            (MODE_SYMLINK | 0o777, StatKind::Symlink),
            (1 << 25 | 0o644, StatKind::Special),
            // setuid and sticky are not type bits.
            (1 << 23 | 1 << 20 | 0o755, StatKind::File),
        ];
        for (mode, want) in cases {
            assert_eq!(StatKind::of_mode(mode), want, "{mode:#x}");
        }
    }

    #[tokio::test]
    async fn chunk_reader_reassembles_the_stream() {
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let bytes = tree();
        let parse = tokio::task::spawn_blocking(move || {
            list_archive(ChunkReader::new(rx), ListDepth::new(2).unwrap())
        });
        for chunk in bytes.chunks(333) {
            // The parser hangs up at the end-of-archive blocks.
            if tx.send(Bytes::copy_from_slice(chunk)).await.is_err() {
                break;
            }
        }
        drop(tx);
        assert_eq!(parse.await.unwrap().unwrap().len(), 4);
    }
}
