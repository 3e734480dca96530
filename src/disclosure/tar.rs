//! A small POSIX ustar writer and a strict reader, enough for disclosure packages.
//!
//! The format is the ustar interchange format of POSIX.1-2001 (`pax` utility, "ustar
//! Interchange Format"): each file is a 512-byte header followed by its data padded to a
//! multiple of 512 bytes; two zero blocks end the archive. GNU tar, bsdtar and every archive
//! tool read it.
//!
//! Only what a package needs is supported, on purpose: regular files with flat names of at
//! most 100 bytes (no `prefix`, no pax or GNU extensions). The writer is deterministic (the
//! caller gives the modification time; mode 0644, uid and gid 0, no user or group names), so
//! the same files give the same bytes. The reader is the strict counterpart for archives that
//! come back from outside: it refuses links, directories and every other entry type, absolute
//! and `..` paths, duplicate names, names the caller does not expect, bad checksums, sizes over
//! the caller's limit and truncated archives, rather than guessing.

use std::collections::BTreeSet;

/// Size of a header and of the data blocks.
pub const BLOCK: usize = 512;
/// Longest name the `name` field holds (the `prefix` field is never used).
pub const NAME_MAX: usize = 100;
/// The largest value of the 11-digit octal `size` and `mtime` fields.
const OCTAL_11_MAX: u64 = 0o777_7777_7777;

// Header field offsets and lengths (POSIX.1-2001, ustar header block).
const NAME: (usize, usize) = (0, 100);
const MODE: (usize, usize) = (100, 8);
const UID: (usize, usize) = (108, 8);
const GID: (usize, usize) = (116, 8);
const SIZE: (usize, usize) = (124, 12);
const MTIME: (usize, usize) = (136, 12);
const CHKSUM: (usize, usize) = (148, 8);
const TYPEFLAG: usize = 156;
const LINKNAME: (usize, usize) = (157, 100);
const MAGIC: (usize, usize) = (257, 6);
const VERSION: (usize, usize) = (263, 2);
// uname (265, 32) and gname (297, 32) stay empty: no user names in a package.
const DEVMAJOR: (usize, usize) = (329, 8);
const DEVMINOR: (usize, usize) = (337, 8);
const PREFIX: (usize, usize) = (345, 155);

/// Regular files are written `rw-r--r--`.
const FILE_MODE: u64 = 0o644;

/// Why an archive could not be written or was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    /// A file name is unsafe or does not fit the format.
    #[error("file name {name:?} refused: {reason}")]
    BadName {
        /// The name (lossily decoded).
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// An entry is a link, a directory, a device or an extension header.
    #[error(
        "{name:?} is not a regular file (entry type {kind:?}); only regular files are accepted"
    )]
    NotRegularFile {
        /// The entry's name.
        name: String,
        /// The type flag found.
        kind: char,
    },
    /// Two entries have the same name.
    #[error("{0:?} appears twice in the archive")]
    Duplicate(String),
    /// An entry's name is not one the caller expects.
    #[error("unexpected file {0:?} in the archive")]
    Unexpected(String),
    /// A file is bigger than the limit.
    #[error("{name:?} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// The entry's name.
        name: String,
        /// Its stated size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// More entries than the limit.
    #[error("the archive holds more than {0} files")]
    TooManyFiles(usize),
    /// The archive ends inside a header, inside a file's data or before its end marker.
    #[error("the archive is truncated: {0}")]
    Truncated(&'static str),
    /// A header block breaks the ustar format.
    #[error("header of entry {index} is malformed: {reason}")]
    Malformed {
        /// Zero-based entry number.
        index: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// Bytes other than zeros after the end-of-archive marker.
    #[error("data after the end-of-archive marker")]
    TrailingData,
    /// The modification time cannot be written (before 1970 or after 2242).
    #[error("modification time {0} is outside what a ustar header holds")]
    BadMtime(i64),
}

/// One regular file read from an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarFile {
    /// Its name (flat, validated).
    pub name: String,
    /// Its modification time, in seconds since the Unix epoch.
    pub mtime: u64,
    /// Its contents.
    pub data: Vec<u8>,
}

/// What the reader accepts.
#[derive(Clone, Copy)]
pub struct ReadRules<'a> {
    /// At most this many files.
    pub max_files: usize,
    /// No file larger than this many bytes.
    pub max_file_size: u64,
    /// Whether a name is expected; any other name is refused.
    pub allowed: &'a dyn Fn(&str) -> bool,
}

impl std::fmt::Debug for ReadRules<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadRules")
            .field("max_files", &self.max_files)
            .field("max_file_size", &self.max_file_size)
            .finish_non_exhaustive()
    }
}

/// Builds an archive in memory, deterministically.
#[derive(Debug)]
pub struct Builder {
    out: Vec<u8>,
    names: BTreeSet<String>,
    mtime: u64,
}

impl Builder {
    /// A new archive whose files all carry `mtime` (seconds since the Unix epoch).
    pub fn new(mtime: i64) -> Result<Self, TarError> {
        let mtime = u64::try_from(mtime)
            .ok()
            .filter(|m| *m <= OCTAL_11_MAX)
            .ok_or(TarError::BadMtime(mtime))?;
        Ok(Self {
            out: Vec::new(),
            names: BTreeSet::new(),
            mtime,
        })
    }

    /// Adds a regular file. Refuses an unsafe or duplicate name.
    pub fn add(&mut self, name: &str, data: &[u8]) -> Result<(), TarError> {
        check_name(name.as_bytes())?;
        if !self.names.insert(name.to_owned()) {
            return Err(TarError::Duplicate(name.to_owned()));
        }
        write_entry(&mut self.out, name, data, self.mtime)
    }

    /// The finished archive: the entries and the two zero blocks that end it.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.resize(self.out.len() + 2 * BLOCK, 0);
        self.out
    }
}

/// Reads every file of `archive`, refusing anything but what `rules` allow.
pub fn read(archive: &[u8], rules: &ReadRules<'_>) -> Result<Vec<TarFile>, TarError> {
    parse(archive, rules).map(|(files, _)| files)
}

/// Adds one file to an existing archive (read under `rules`, which must allow `name`), before
/// its end marker. The other entries are kept byte for byte.
pub fn append(
    archive: &[u8],
    name: &str,
    data: &[u8],
    mtime: u64,
    rules: &ReadRules<'_>,
) -> Result<Vec<u8>, TarError> {
    let (files, end) = parse(archive, rules)?;
    check_name(name.as_bytes())?;
    if files.iter().any(|f| f.name == name) {
        return Err(TarError::Duplicate(name.to_owned()));
    }
    if !(rules.allowed)(name) {
        return Err(TarError::Unexpected(name.to_owned()));
    }
    if files.len() >= rules.max_files {
        return Err(TarError::TooManyFiles(rules.max_files));
    }
    if mtime > OCTAL_11_MAX {
        return Err(TarError::BadMtime(i64::try_from(mtime).unwrap_or(i64::MAX)));
    }
    let mut out = archive[..end].to_vec();
    write_entry(&mut out, name, data, mtime)?;
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

/// Accepts only flat, printable names: no path separators (so no absolute or nested paths,
/// and nothing GNU tar would create a folder for), no `.` or `..`, no control characters.
fn check_name(name: &[u8]) -> Result<(), TarError> {
    let refuse = |reason| TarError::BadName {
        name: String::from_utf8_lossy(name).into_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(refuse("empty name"));
    }
    if name.len() > NAME_MAX {
        return Err(refuse("longer than 100 bytes"));
    }
    if std::str::from_utf8(name).is_err() {
        return Err(refuse("not UTF-8"));
    }
    if name[0] == b'/' {
        return Err(refuse("absolute path"));
    }
    if name
        .split(|b| *b == b'/' || *b == b'\\')
        .any(|c| c == b"..")
    {
        return Err(refuse("parent directory (..) in path"));
    }
    if name.contains(&b'/') || name.contains(&b'\\') {
        return Err(refuse("not a flat file name"));
    }
    if name == b"." {
        return Err(refuse("not a file name"));
    }
    if name.iter().any(|b| b.is_ascii_control()) {
        return Err(refuse("control character"));
    }
    Ok(())
}

fn write_entry(out: &mut Vec<u8>, name: &str, data: &[u8], mtime: u64) -> Result<(), TarError> {
    let size = data.len() as u64;
    if size > OCTAL_11_MAX {
        return Err(TarError::TooLarge {
            name: name.to_owned(),
            size,
            limit: OCTAL_11_MAX,
        });
    }
    let mut h = [0u8; BLOCK];
    h[NAME.0..NAME.0 + name.len()].copy_from_slice(name.as_bytes());
    put_octal(&mut h, MODE, FILE_MODE);
    put_octal(&mut h, UID, 0);
    put_octal(&mut h, GID, 0);
    put_octal(&mut h, SIZE, size);
    put_octal(&mut h, MTIME, mtime);
    h[TYPEFLAG] = b'0';
    h[MAGIC.0..MAGIC.0 + MAGIC.1].copy_from_slice(b"ustar\0");
    h[VERSION.0..VERSION.0 + VERSION.1].copy_from_slice(b"00");
    put_octal(&mut h, DEVMAJOR, 0);
    put_octal(&mut h, DEVMINOR, 0);
    // The checksum is computed with its own field read as eight spaces, then written as six
    // octal digits, a NUL and a space (the layout every tar writes).
    let sum = checksum(&h);
    h[CHKSUM.0..CHKSUM.0 + CHKSUM.1].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(BLOCK), 0);
    Ok(())
}

/// Writes `value` as zero-padded octal filling the field but for a final NUL.
fn put_octal(h: &mut [u8; BLOCK], (at, len): (usize, usize), value: u64) {
    let digits = format!("{value:0width$o}", width = len - 1);
    h[at..at + len - 1].copy_from_slice(digits.as_bytes());
    h[at + len - 1] = 0;
}

/// Sum of the header's bytes, the checksum field counted as spaces.
fn checksum(h: &[u8; BLOCK]) -> u64 {
    h.iter()
        .enumerate()
        .map(|(i, b)| {
            if (CHKSUM.0..CHKSUM.0 + CHKSUM.1).contains(&i) {
                u64::from(b' ')
            } else {
                u64::from(*b)
            }
        })
        .sum()
}

/// Parses an octal field: optional leading spaces, at least one octal digit, then only NULs
/// or spaces. GNU base-256 numbers and anything else are refused.
fn octal(h: &[u8; BLOCK], (at, len): (usize, usize)) -> Option<u64> {
    let field = &h[at..at + len];
    let start = field.iter().position(|b| *b != b' ')?;
    let digits = field[start..]
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(*b))
        .count();
    if digits == 0
        || field[start + digits..]
            .iter()
            .any(|b| *b != 0 && *b != b' ')
    {
        return None;
    }
    field[start..start + digits].iter().try_fold(0u64, |n, d| {
        n.checked_mul(8)?.checked_add(u64::from(d - b'0'))
    })
}

/// The bytes of a NUL-terminated text field, up to the first NUL.
fn text(h: &[u8; BLOCK], (at, len): (usize, usize)) -> &[u8] {
    let field = &h[at..at + len];
    let end = field.iter().position(|b| *b == 0).unwrap_or(len);
    &field[..end]
}

/// Reads the archive; also returns the offset of its end marker (where [`append`] writes).
fn parse(archive: &[u8], rules: &ReadRules<'_>) -> Result<(Vec<TarFile>, usize), TarError> {
    let mut files: Vec<TarFile> = Vec::new();
    let mut pos = 0usize;
    loop {
        let Some(block) = archive.get(pos..pos + BLOCK) else {
            return Err(TarError::Truncated(if pos == archive.len() {
                "no end-of-archive marker"
            } else {
                "partial header block"
            }));
        };
        let mut h = [0u8; BLOCK];
        h.copy_from_slice(block);
        if h.iter().all(|b| *b == 0) {
            // End of archive: two zero blocks (POSIX), then nothing but zero padding (GNU tar
            // pads to its record size).
            let next = archive
                .get(pos + BLOCK..pos + 2 * BLOCK)
                .ok_or(TarError::Truncated("only one end-of-archive block"))?;
            if next.iter().any(|b| *b != 0) || archive[pos + 2 * BLOCK..].iter().any(|b| *b != 0) {
                return Err(TarError::TrailingData);
            }
            if !archive.len().is_multiple_of(BLOCK) {
                return Err(TarError::Truncated("partial block after the end marker"));
            }
            return Ok((files, pos));
        }
        let index = files.len();
        let file = header(&h, index, rules)?;
        if files.iter().any(|f| f.name == file.0) {
            return Err(TarError::Duplicate(file.0));
        }
        if index >= rules.max_files {
            return Err(TarError::TooManyFiles(rules.max_files));
        }
        let (name, size, mtime) = file;
        let start = pos + BLOCK;
        // `size` is at most `max_file_size`, checked in `header`; `get` refuses what the
        // archive does not hold, before anything is allocated.
        let len = usize::try_from(size).map_err(|_| TarError::Truncated("file data"))?;
        let data = archive
            .get(start..start.saturating_add(len))
            .ok_or(TarError::Truncated("inside a file's data"))?;
        let padded = len.next_multiple_of(BLOCK);
        let padding = archive
            .get(start + len..start + padded)
            .ok_or(TarError::Truncated("inside a file's padding"))?;
        if padding.iter().any(|b| *b != 0) {
            return Err(TarError::Malformed {
                index,
                reason: "non-zero bytes in the padding after the file's data",
            });
        }
        files.push(TarFile {
            name,
            mtime,
            data: data.to_vec(),
        });
        pos = start + padded;
    }
}

/// Checks one header block; returns the name, size and mtime of a regular file.
fn header(
    h: &[u8; BLOCK],
    index: usize,
    rules: &ReadRules<'_>,
) -> Result<(String, u64, u64), TarError> {
    let bad = |reason| TarError::Malformed { index, reason };
    if &h[MAGIC.0..MAGIC.0 + MAGIC.1] != b"ustar\0" || &h[VERSION.0..VERSION.0 + VERSION.1] != b"00"
    {
        return Err(bad("not a POSIX ustar header"));
    }
    let stated = octal(h, CHKSUM).ok_or(bad("checksum field is not octal"))?;
    if stated != checksum(h) {
        return Err(bad("checksum mismatch"));
    }
    let raw_name = text(h, NAME);
    let shown = String::from_utf8_lossy(raw_name).into_owned();
    match h[TYPEFLAG] {
        b'0' | 0 => {}
        kind => {
            return Err(TarError::NotRegularFile {
                name: shown,
                kind: char::from(kind),
            });
        }
    }
    if !text(h, PREFIX).is_empty() {
        return Err(bad(
            "the prefix field is used (names longer than 100 bytes)",
        ));
    }
    check_name(raw_name)?;
    if !text(h, LINKNAME).is_empty() {
        return Err(bad("a regular file with a link name"));
    }
    for field in [MODE, UID, GID] {
        octal(h, field).ok_or(bad("mode, uid or gid is not octal"))?;
    }
    let size = octal(h, SIZE).ok_or(bad("size is not octal"))?;
    let mtime = octal(h, MTIME).ok_or(bad("mtime is not octal"))?;
    if !(rules.allowed)(&shown) {
        return Err(TarError::Unexpected(shown));
    }
    if size > rules.max_file_size {
        return Err(TarError::TooLarge {
            name: shown,
            size,
            limit: rules.max_file_size,
        });
    }
    Ok((shown, size, mtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANY: ReadRules<'static> = ReadRules {
        max_files: 16,
        max_file_size: 1 << 20,
        allowed: &|_| true,
    };

    fn sample() -> Vec<u8> {
        let mut b = Builder::new(1_788_249_600).unwrap();
        b.add("a.json", b"{\"x\":1}\n").unwrap();
        b.add("empty.csv", b"").unwrap();
        b.add("exact.bin", &[7u8; BLOCK]).unwrap();
        b.add("big.bin", &[0x5a; 3 * BLOCK + 1]).unwrap();
        b.finish()
    }

    /// A header as a hostile tar would write it: any name and type, valid checksum.
    fn raw_entry(name: &[u8], kind: u8, data: &[u8]) -> Vec<u8> {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        put_octal(&mut h, MODE, 0o644);
        put_octal(&mut h, UID, 0);
        put_octal(&mut h, GID, 0);
        put_octal(&mut h, SIZE, data.len() as u64);
        put_octal(&mut h, MTIME, 0);
        h[TYPEFLAG] = kind;
        h[MAGIC.0..MAGIC.0 + 6].copy_from_slice(b"ustar\0");
        h[VERSION.0..VERSION.0 + 2].copy_from_slice(b"00");
        let sum = checksum(&h);
        h[CHKSUM.0..CHKSUM.0 + 8].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut out = h.to_vec();
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
        out
    }

    fn archive_of(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut out = entries.concat();
        out.resize(out.len() + 2 * BLOCK, 0);
        out
    }

    #[test]
    fn round_trip_keeps_names_order_contents_and_mtime() {
        let tar = sample();
        assert_eq!(tar.len() % BLOCK, 0);
        let files = read(&tar, &ANY).unwrap();
        let names: Vec<_> = files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a.json", "empty.csv", "exact.bin", "big.bin"]);
        assert_eq!(files[0].data, b"{\"x\":1}\n");
        assert!(files[1].data.is_empty());
        assert_eq!(files[2].data, vec![7u8; BLOCK]);
        assert_eq!(files[3].data, vec![0x5a; 3 * BLOCK + 1]);
        assert!(files.iter().all(|f| f.mtime == 1_788_249_600));
        // 4 headers + 0 + 1 + 1 + 4 data blocks + 2 end blocks.
        assert_eq!(tar.len(), (4 + 6 + 2) * BLOCK);
        assert_eq!(sample(), tar, "deterministic");
    }

    #[test]
    fn headers_follow_the_ustar_layout() {
        let tar = sample();
        let h: &[u8] = &tar[..BLOCK];
        assert_eq!(&h[..7], b"a.json\0");
        assert_eq!(&h[100..108], b"0000644\0");
        assert_eq!(&h[108..124], b"0000000\x000000000\x00");
        assert_eq!(&h[124..136], b"00000000010\0");
        assert_eq!(&h[156], &b'0');
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert!(
            h[265..329].iter().all(|b| *b == 0),
            "no user or group names"
        );
        assert_eq!(&h[154..156], b"\0 ");
    }

    #[test]
    fn gnu_tar_lists_and_extracts_what_we_write() {
        if std::process::Command::new("tar")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("no tar on this machine: skipped");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.tar");
        std::fs::write(&path, sample()).unwrap();
        let list = std::process::Command::new("tar")
            .arg("-tvf")
            .arg(&path)
            .env("TZ", "UTC")
            .output()
            .unwrap();
        assert!(
            list.status.success(),
            "{}",
            String::from_utf8_lossy(&list.stderr)
        );
        let text = String::from_utf8(list.stdout).unwrap();
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("-rw-r--r-- 0/0"), "{text}");
        assert!(lines[0].ends_with(" 2026-09-01 08:00 a.json"), "{text}");
        assert!(lines[3].contains(&format!(" {} ", 3 * BLOCK + 1)), "{text}");
        assert!(list.stderr.is_empty(), "no warnings");

        let out = dir.path().join("x");
        std::fs::create_dir(&out).unwrap();
        let status = std::process::Command::new("tar")
            .arg("-xf")
            .arg(&path)
            .arg("-C")
            .arg(&out)
            .status()
            .unwrap();
        assert!(status.success());
        for file in read(&sample(), &ANY).unwrap() {
            assert_eq!(std::fs::read(out.join(&file.name)).unwrap(), file.data);
        }
    }

    #[test]
    fn archives_made_by_gnu_tar_in_ustar_format_are_read() {
        if std::process::Command::new("tar")
            .arg("--version")
            .output()
            .is_err()
        {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("one.txt"), "hello\n").unwrap();
        let path = dir.path().join("gnu.tar");
        let status = std::process::Command::new("tar")
            .args(["--format=ustar", "--owner=0", "--group=0", "-cf"])
            .arg(&path)
            .arg("-C")
            .arg(dir.path())
            .arg("one.txt")
            .status()
            .unwrap();
        assert!(status.success());
        // GNU tar pads to a 10240-byte record: zeros after the end marker are accepted.
        let files = read(&std::fs::read(&path).unwrap(), &ANY).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].data, b"hello\n");
    }

    #[test]
    fn the_writer_refuses_unsafe_long_and_duplicate_names() {
        let mut b = Builder::new(0).unwrap();
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/b",
            "..",
            ".",
            "a\nb",
            "a\\..\\b",
        ] {
            assert!(
                matches!(b.add(bad, b"x"), Err(TarError::BadName { .. })),
                "{bad:?}"
            );
        }
        assert!(b.add(&"n".repeat(101), b"").is_err());
        b.add(&"n".repeat(100), b"").unwrap();
        b.add("a", b"").unwrap();
        assert_eq!(b.add("a", b""), Err(TarError::Duplicate("a".into())));
        assert_eq!(Builder::new(-1).unwrap_err(), TarError::BadMtime(-1));
    }

    #[test]
    fn links_directories_and_other_entry_types_are_refused() {
        for kind in [
            b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'x', b'g', b'L', b'K',
        ] {
            let tar = archive_of(&[raw_entry(b"a", kind, b"")]);
            assert!(
                matches!(read(&tar, &ANY), Err(TarError::NotRegularFile { .. })),
                "type {}",
                char::from(kind)
            );
        }
        // A NUL type flag is an old-style regular file.
        assert_eq!(
            read(&archive_of(&[raw_entry(b"a", 0, b"x")]), &ANY).unwrap()[0].data,
            b"x"
        );
    }

    #[test]
    fn absolute_parent_and_nested_paths_are_refused() {
        for name in [
            &b"/etc/passwd"[..],
            b"../evil",
            b"a/../../evil",
            b"dir/file",
            b"..",
            b"\xff\xfe",
        ] {
            let tar = archive_of(&[raw_entry(name, b'0', b"x")]);
            assert!(
                matches!(read(&tar, &ANY), Err(TarError::BadName { .. })),
                "{:?}",
                String::from_utf8_lossy(name)
            );
        }
    }

    #[test]
    fn duplicates_unexpected_names_and_oversized_files_are_refused() {
        let tar = archive_of(&[raw_entry(b"a", b'0', b"1"), raw_entry(b"a", b'0', b"2")]);
        assert_eq!(read(&tar, &ANY), Err(TarError::Duplicate("a".into())));

        let only_a = ReadRules {
            allowed: &|n| n == "a",
            ..ANY
        };
        let tar = archive_of(&[raw_entry(b"b", b'0', b"")]);
        assert_eq!(read(&tar, &only_a), Err(TarError::Unexpected("b".into())));

        let small = ReadRules {
            max_file_size: 10,
            ..ANY
        };
        let tar = archive_of(&[raw_entry(b"a", b'0', &[1; 11])]);
        assert!(matches!(
            read(&tar, &small),
            Err(TarError::TooLarge { size: 11, .. })
        ));

        let two = ReadRules {
            max_files: 2,
            ..ANY
        };
        let tar = archive_of(&[
            raw_entry(b"a", b'0', b""),
            raw_entry(b"b", b'0', b""),
            raw_entry(b"c", b'0', b""),
        ]);
        assert_eq!(read(&tar, &two), Err(TarError::TooManyFiles(2)));
    }

    #[test]
    fn a_huge_stated_size_is_refused_before_anything_is_read() {
        let mut entry = raw_entry(b"a", b'0', b"");
        let mut h = [0u8; BLOCK];
        h.copy_from_slice(&entry[..BLOCK]);
        put_octal(&mut h, SIZE, OCTAL_11_MAX);
        h[CHKSUM.0..CHKSUM.0 + 8].fill(b' ');
        let sum = checksum(&h);
        h[CHKSUM.0..CHKSUM.0 + 8].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        entry[..BLOCK].copy_from_slice(&h);
        let big = ReadRules {
            max_file_size: u64::MAX,
            ..ANY
        };
        assert!(matches!(
            read(&archive_of(&[entry.clone()]), &big),
            Err(TarError::Truncated(_))
        ));
        assert!(matches!(
            read(&archive_of(&[entry]), &ANY),
            Err(TarError::TooLarge { .. })
        ));
    }

    #[test]
    fn truncated_archives_are_refused_at_every_length() {
        let tar = sample();
        for len in 0..tar.len() {
            let cut = &tar[..len];
            assert!(read(cut, &ANY).is_err(), "accepted a prefix of {len} bytes");
        }
        assert!(read(&tar, &ANY).is_ok());
    }

    #[test]
    fn bad_checksums_magic_and_trailing_data_are_refused() {
        let tar = sample();
        // Any flipped header byte breaks the checksum (or the field it lands in).
        for i in [0, 100, 124, 136, 156, 257, 300, 500] {
            let mut bad = tar.clone();
            bad[i] ^= 0x01;
            assert!(read(&bad, &ANY).is_err(), "flipped header byte {i}");
        }
        let mut gnu_magic = raw_entry(b"a", b'0', b"");
        gnu_magic[257..265].copy_from_slice(b"ustar  \0");
        assert!(matches!(
            read(&archive_of(&[gnu_magic]), &ANY),
            Err(TarError::Malformed { .. })
        ));
        let mut trailing = tar.clone();
        trailing.extend_from_slice(&raw_entry(b"hidden", b'0', b"x"));
        assert_eq!(read(&trailing, &ANY), Err(TarError::TrailingData));
        let mut dirty_padding = tar.clone();
        dirty_padding[BLOCK + 8] = b' ';
        assert!(matches!(
            read(&dirty_padding, &ANY),
            Err(TarError::Malformed { index: 0, .. })
        ));
        let mut padded = tar;
        padded.resize(10240, 0);
        assert_eq!(read(&padded, &ANY).unwrap().len(), 4);
    }

    #[test]
    fn append_adds_before_the_end_marker_and_keeps_the_rest() {
        let tar = sample();
        let more = append(&tar, "proof.json", b"{}", 42, &ANY).unwrap();
        assert_eq!(
            &more[..tar.len() - 2 * BLOCK],
            &tar[..tar.len() - 2 * BLOCK]
        );
        let files = read(&more, &ANY).unwrap();
        assert_eq!(files.len(), 5);
        assert_eq!((files[4].name.as_str(), files[4].mtime), ("proof.json", 42));
        assert_eq!(
            append(&more, "proof.json", b"{}", 42, &ANY),
            Err(TarError::Duplicate("proof.json".into()))
        );
        let none = ReadRules {
            allowed: &|n| n != "x",
            ..ANY
        };
        assert_eq!(
            append(&tar, "x", b"", 0, &none),
            Err(TarError::Unexpected("x".into()))
        );
    }
}
