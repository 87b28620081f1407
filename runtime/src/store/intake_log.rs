//! The redb store's intake log: accepted alerts appended to segment files, each batch written
//! with one `pwrite` and made durable with one `fdatasync` before its alerts are answered.
//!
//! Why not a redb table: a redb commit of a few alerts costs two to four fdatasyncs' worth
//! (its B-tree pages, its allocator state and its header), and it shares redb's single write
//! lock with every incident append and the watermark. An append to a file whose blocks are
//! already written (a segment is filled with zeros when it is made) makes `fdatasync` flush the
//! data alone, with no file-system journal commit for a new size or newly allocated blocks.
//!
//! Layout: a directory of segments named by their first seq (`00000000000000000042.log`). A
//! record is `len: u32 LE | crc32c: u32 LE | seq: u64 LE | len bytes of JSON` (an
//! [`Accepted`]); the checksum covers the seq and the JSON. A segment's records have
//! consecutive seqs; its unused tail is zeros.
//!
//! Recovery: a crash can cut the last batch short (it was never answered). Opening the log
//! reads each segment up to the first record that is not whole, with the seq that follows; what
//! comes after that in the newest segment is zeroed, so appends continue there and no stale
//! bytes can ever be read as a record. A write or fsync that fails abandons its segment: the
//! next batch starts a new one, past the failed batch's seqs (which may or may not have reached
//! the disk, and were answered with an error either way). Seqs therefore have no gap within a
//! segment, and readers allow one between segments.
//!
//! Retention: a segment whose every alert is processed (the watermark passed it) is deleted,
//! except the one being written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};
use squad_protocols::Alert;

use super::{Accepted, AcceptedRef, StoreError};

/// Bytes of a record's header: length, checksum, seq.
const HEADER: usize = 16;
/// A segment's size when it is made (a batch larger than this gets a segment its own size).
pub(crate) const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// A segment: where its records start, for readers.
struct Segment {
    first_seq: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Offset of each record; record `i` has seq `first_seq + i`.
    offsets: Vec<u64>,
    /// Where the last record ends.
    end: u64,
}

impl Segment {
    fn next_seq(&self) -> u64 {
        self.first_seq + self.offsets.len() as u64
    }
}

/// The segment being written.
struct Active {
    file: Arc<File>,
    first_seq: u64,
    /// Where the next batch goes.
    offset: u64,
    /// The file's length: the zeroed space ends here.
    capacity: u64,
}

struct Writer {
    active: Option<Active>,
    next_seq: u64,
    buf: Vec<u8>,
}

/// The log: one writer at a time; readers see a batch once it is durable.
pub(crate) struct IntakeLog {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    segments: RwLock<Vec<Segment>>,
}

fn io_err(path: &Path, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend {
        path: path.display().to_string(),
        message: format!("intake log: {what}: {e}"),
    }
}

fn segment_name(first_seq: u64) -> String {
    format!("{first_seq:020}.log")
}

/// Makes a segment file of `bytes` zeros, durable with its directory entry.
fn make_segment(dir: &Path, first_seq: u64, bytes: u64) -> Result<(PathBuf, File), StoreError> {
    let path = dir.join(segment_name(first_seq));
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(true);
    // What alerts carry (annotations, labels) is its owner's alone, as the redb file is.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .map_err(|e| io_err(&path, "cannot create a segment", e))?;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < bytes {
        let n = (bytes - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| io_err(&path, "cannot fill a new segment", e))?;
        at += n as u64;
    }
    file.sync_all()
        .map_err(|e| io_err(&path, "cannot sync a new segment", e))?;
    sync_dir(dir)?;
    Ok((path, file))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, "cannot sync the directory", e))
}

/// Appends one record to `buf`.
fn encode(buf: &mut Vec<u8>, seq: u64, json: &[u8]) {
    let mut digest = CRC.digest();
    digest.update(&seq.to_le_bytes());
    digest.update(json);
    buf.extend_from_slice(&(json.len() as u32).to_le_bytes());
    buf.extend_from_slice(&digest.finalize().to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(json);
}

/// The whole record at the start of `bytes` with seq `seq`: its JSON and its length.
fn decode(bytes: &[u8], seq: u64) -> Option<(&[u8], usize)> {
    let header = bytes.get(..HEADER)?;
    let len = u32::from_le_bytes(header[0..4].try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().ok()?);
    let found = u64::from_le_bytes(header[8..16].try_into().ok()?);
    if len == 0 || found != seq {
        return None;
    }
    let json = bytes.get(HEADER..HEADER + len)?;
    let mut digest = CRC.digest();
    digest.update(&found.to_le_bytes());
    digest.update(json);
    (digest.finalize() == crc).then_some((json, HEADER + len))
}

/// Reads a segment: the offsets of its whole records, where they end, and the file's length.
fn scan(path: &Path, first_seq: u64) -> Result<(File, Vec<u64>, u64, Vec<u8>), StoreError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, "cannot read a segment", e))?;
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| io_err(path, "cannot open a segment", e))?;
    let mut offsets = Vec::new();
    let mut at = 0usize;
    while let Some((_, n)) = decode(&bytes[at..], first_seq + offsets.len() as u64) {
        offsets.push(at as u64);
        at += n;
    }
    Ok((file, offsets, at as u64, bytes))
}

impl IntakeLog {
    /// Opens the log in `dir` (created if missing, mode 0700), numbering new alerts from at
    /// least `floor`.
    pub(crate) fn open(
        dir: &Path,
        floor: u64,
        segment_bytes: u64,
    ) -> Result<IntakeLog, StoreError> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| io_err(dir, "cannot create the directory", e))?;
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, "cannot list", e))? {
            let entry = entry.map_err(|e| io_err(dir, "cannot list", e))?;
            let name = entry.file_name();
            let Some(seq) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".log"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            firsts.push(seq);
        }
        firsts.sort_unstable();
        let mut segments: Vec<Segment> = Vec::with_capacity(firsts.len());
        let mut active = None;
        let count = firsts.len();
        for (i, first_seq) in firsts.into_iter().enumerate() {
            let path = dir.join(segment_name(first_seq));
            if let Some(prev) = segments.last()
                && prev.next_seq() > first_seq
            {
                return Err(io_err(
                    &path,
                    "overlaps the segment before it",
                    format!(
                        "{} holds seqs up to {}; was the directory altered?",
                        prev.path.display(),
                        prev.next_seq() - 1
                    ),
                ));
            }
            let (file, offsets, end, bytes) = scan(&path, first_seq)?;
            let newest = i + 1 == count;
            if let Some(last) = bytes.iter().rposition(|b| *b != 0)
                && last as u64 >= end
            {
                // A batch cut short: never answered. Zeroed, so nothing stale is ever read.
                tracing::warn!(
                    segment = %path.display(),
                    "intake log: {} bytes after offset {end} are not a whole record (a write cut short by a crash, never acknowledged); cleared",
                    last as u64 + 1 - end
                );
                let zeros = vec![0u8; last + 1 - end as usize];
                file.write_all_at(&zeros, end)
                    .and_then(|()| file.sync_data())
                    .map_err(|e| io_err(&path, "cannot clear a torn tail", e))?;
            }
            let file = Arc::new(file);
            if newest {
                active = Some(Active {
                    file: file.clone(),
                    first_seq,
                    offset: end,
                    capacity: bytes.len() as u64,
                });
            }
            segments.push(Segment {
                first_seq,
                path,
                file,
                offsets,
                end,
            });
        }
        let next_seq = segments.last().map_or(floor, |s| s.next_seq().max(floor));
        // Numbering jumps ahead (a floor from the watermark): the newest segment cannot take
        // it, its records must stay consecutive.
        if segments.last().is_some_and(|s| s.next_seq() != next_seq) {
            active = None;
        }
        Ok(IntakeLog {
            dir: dir.to_owned(),
            segment_bytes,
            writer: Mutex::new(Writer {
                active,
                next_seq,
                buf: Vec::new(),
            }),
            segments: RwLock::new(segments),
        })
    }

    fn poisoned(&self) -> StoreError {
        io_err(&self.dir, "lock", "poisoned by a panic")
    }

    /// The seq the next accepted alert gets.
    #[cfg(test)]
    pub(crate) fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.writer.lock().map_err(|_| self.poisoned())?.next_seq)
    }

    /// Appends `alerts` as one batch, durable when this returns.
    pub(crate) fn append(
        &self,
        at: DateTime<Utc>,
        alerts: &[Alert],
    ) -> Result<Vec<u64>, StoreError> {
        let mut w = self.writer.lock().map_err(|_| self.poisoned())?;
        let first = w.next_seq;
        let mut buf = std::mem::take(&mut w.buf);
        buf.clear();
        let mut offsets = Vec::with_capacity(alerts.len());
        for (seq, alert) in (first..).zip(alerts) {
            let json = serde_json::to_vec(&AcceptedRef { seq, at, alert })
                .map_err(|e| io_err(&self.dir, "cannot encode an alert", e))?;
            offsets.push(buf.len() as u64);
            encode(&mut buf, seq, &json);
        }
        let result = self.write(&mut w, first, &buf, offsets);
        w.buf = buf;
        result
    }

    /// Writes an encoded batch whose first record has seq `first`.
    fn write(
        &self,
        w: &mut Writer,
        first: u64,
        buf: &[u8],
        offsets: Vec<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        let n = offsets.len() as u64;
        if n == 0 {
            return Ok(Vec::new());
        }
        let fits = w
            .active
            .as_ref()
            .is_some_and(|a| a.offset + buf.len() as u64 <= a.capacity);
        if !fits {
            self.rotate(w, first, buf.len() as u64)?;
        }
        let Some(active) = w.active.as_mut() else {
            return Err(io_err(&self.dir, "no segment to write", "internal error"));
        };
        let at = active.offset;
        let written = active
            .file
            .write_all_at(buf, at)
            .and_then(|()| active.file.sync_data());
        if let Err(e) = written {
            // What reached the disk is unknown: this segment takes no more, and the next
            // batch starts a new one past these seqs.
            w.active = None;
            w.next_seq = first + n;
            return Err(io_err(&self.dir, "cannot write accepted alerts", e));
        }
        active.offset += buf.len() as u64;
        let segment_first = active.first_seq;
        w.next_seq = first + n;
        let mut segments = self.segments.write().map_err(|_| self.poisoned())?;
        match segments.last_mut() {
            Some(s) if s.first_seq == segment_first => {
                s.offsets.extend(offsets.iter().map(|o| o + at));
                s.end = at + buf.len() as u64;
            }
            _ => return Err(io_err(&self.dir, "segment index", "out of step")),
        }
        Ok((first..first + n).collect())
    }

    /// Starts a segment at `first` with room for at least `need` bytes.
    fn rotate(&self, w: &mut Writer, first: u64, need: u64) -> Result<(), StoreError> {
        if let Some(old) = w.active.take() {
            // The rest of a full segment is zeros: given back (a lost truncation is harmless).
            let _ = old.file.set_len(old.offset);
        }
        let bytes = self.segment_bytes.max(need);
        let (path, file) = make_segment(&self.dir, first, bytes)?;
        let file = Arc::new(file);
        w.active = Some(Active {
            file: file.clone(),
            first_seq: first,
            offset: 0,
            capacity: bytes,
        });
        let mut segments = self.segments.write().map_err(|_| self.poisoned())?;
        // A segment made earlier for this seq that never got a record (a write that failed
        // right after it was made) is replaced.
        segments.retain(|s| !(s.first_seq == first && s.offsets.is_empty()));
        segments.push(Segment {
            first_seq: first,
            path,
            file,
            offsets: Vec::new(),
            end: 0,
        });
        Ok(())
    }

    /// Accepted alerts with seq greater than `after` (all with `None`), oldest first.
    pub(crate) fn read_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<Accepted>, StoreError> {
        let from = after.map_or(0, |a| a.saturating_add(1));
        let segments = self.segments.read().map_err(|_| self.poisoned())?;
        let mut out = Vec::new();
        for s in segments.iter().filter(|s| s.next_seq() > from) {
            if out.len() >= limit {
                break;
            }
            let skip = from.saturating_sub(s.first_seq) as usize;
            let take = (limit - out.len()).min(s.offsets.len() - skip);
            let start = s.offsets[skip];
            let stop = s.offsets.get(skip + take).copied().unwrap_or(s.end);
            let mut bytes = vec![0u8; (stop - start) as usize];
            s.file
                .read_exact_at(&mut bytes, start)
                .map_err(|e| io_err(&s.path, "cannot read accepted alerts", e))?;
            let mut at = 0usize;
            for seq in s.first_seq + skip as u64..s.first_seq + (skip + take) as u64 {
                let Some((json, n)) = decode(&bytes[at..], seq) else {
                    return Err(io_err(
                        &s.path,
                        "unreadable record",
                        format!("seq {seq} at offset {}", start + at as u64),
                    ));
                };
                let accepted: Accepted = serde_json::from_slice(json)
                    .map_err(|e| io_err(&s.path, &format!("record {seq}"), e))?;
                out.push(accepted);
                at += n;
            }
        }
        Ok(out)
    }

    /// Deletes the segments whose every alert has a seq up to `processed`, except the one
    /// being written.
    pub(crate) fn prune(&self, processed: u64) -> Result<(), StoreError> {
        // Usually one segment: nothing to delete, and no wait for a commit in progress.
        if self.segments.read().map_err(|_| self.poisoned())?.len() <= 1 {
            return Ok(());
        }
        let active = self
            .writer
            .lock()
            .map_err(|_| self.poisoned())?
            .active
            .as_ref()
            .map(|a| a.first_seq);
        let mut gone = Vec::new();
        {
            let mut segments = self.segments.write().map_err(|_| self.poisoned())?;
            segments.retain(|s| {
                let done = Some(s.first_seq) != active
                    && s.next_seq() > s.first_seq
                    && s.next_seq() - 1 <= processed;
                if done {
                    gone.push(s.path.clone());
                }
                !done
            });
        }
        for path in &gone {
            std::fs::remove_file(path).map_err(|e| io_err(path, "cannot delete", e))?;
        }
        Ok(())
    }

    /// How many segment files the log holds.
    #[cfg(test)]
    pub(crate) fn segment_count(&self) -> usize {
        self.segments.read().map_or(0, |s| s.len())
    }

    /// Imports alerts from an older store, keeping their seqs: those from the log's next seq
    /// on, which must follow it without a gap.
    pub(crate) fn import(&self, records: &[Accepted]) -> Result<(), StoreError> {
        let mut w = self.writer.lock().map_err(|_| self.poisoned())?;
        let from = w.next_seq;
        let records: Vec<&Accepted> = records.iter().filter(|r| r.seq >= from).collect();
        let Some(first) = records.first().map(|r| r.seq) else {
            return Ok(());
        };
        if first != from || records.windows(2).any(|p| p[1].seq != p[0].seq + 1) {
            return Err(io_err(
                &self.dir,
                "cannot import the older intake table",
                format!("its seqs do not follow {from} without a gap"),
            ));
        }
        let mut buf = Vec::new();
        let mut offsets = Vec::with_capacity(records.len());
        for r in &records {
            let json = serde_json::to_vec(r)
                .map_err(|e| io_err(&self.dir, "cannot encode an alert", e))?;
            offsets.push(buf.len() as u64);
            encode(&mut buf, r.seq, &json);
        }
        self.write(&mut w, first, &buf, offsets).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn alert(i: u64) -> Alert {
        Alert::firing("KubePodCrashLooping")
            .with_label("namespace", "shop")
            .with_label("pod", format!("cart-7d4b9c-{i:05}"))
    }

    fn batch(from: u64, n: u64) -> Vec<Alert> {
        (from..from + n).map(alert).collect()
    }

    fn seqs(log: &IntakeLog, after: Option<u64>, limit: usize) -> Vec<u64> {
        log.read_after(after, limit)
            .unwrap()
            .into_iter()
            .map(|a| a.seq)
            .collect()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn batches_read_back_in_order_across_segments_and_reopens() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("incidents.intake");
        // Room for about four records per segment: every few batches start a new one.
        let log = IntakeLog::open(&dir, 0, 1200).unwrap();
        assert!(
            files(&dir).is_empty(),
            "nothing is made before the first alert"
        );
        let now = Utc::now();
        let mut expected = Vec::new();
        for b in 0..8u64 {
            let got = log.append(now, &batch(b * 3, 3)).unwrap();
            assert_eq!(got, (b * 3..b * 3 + 3).collect::<Vec<_>>());
            expected.extend(got);
        }
        assert!(log.segment_count() > 2, "{:?}", files(&dir));
        assert_eq!(seqs(&log, None, 1000), expected);
        assert_eq!(seqs(&log, Some(4), 7), (5..12).collect::<Vec<_>>());
        let read = log.read_after(Some(9), 1).unwrap();
        assert_eq!(read[0].alert, alert(10));
        assert_eq!(read[0].at, now);
        drop(log);
        let log = IntakeLog::open(&dir, 0, 1200).unwrap();
        assert_eq!(seqs(&log, None, 1000), expected);
        assert_eq!(log.append(now, &batch(24, 2)).unwrap(), vec![24, 25]);
        // One batch larger than a segment gets a segment of its own size.
        assert_eq!(log.append(now, &batch(26, 9)).unwrap().len(), 9);
        assert_eq!(seqs(&log, Some(23), 1000), (24..35).collect::<Vec<_>>());
    }

    #[test]
    fn the_log_is_its_owners_alone() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let log = IntakeLog::open(&dir, 0, 4096).unwrap();
        log.append(Utc::now(), &batch(0, 1)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(segment_name(0))), 0o600);
    }

    #[test]
    fn a_batch_cut_short_by_a_crash_is_cleared_and_never_read() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let now = Utc::now();
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        log.append(now, &batch(0, 2)).unwrap();
        let end = log.segments.read().unwrap()[0].end;
        drop(log);
        // The next batch as a crash leaves it: its first record torn, its second whole.
        let mut torn = Vec::new();
        for seq in 2..4 {
            let json = serde_json::to_vec(&AcceptedRef {
                seq,
                at: now,
                alert: &alert(seq),
            })
            .unwrap();
            encode(&mut torn, seq, &json);
        }
        torn[HEADER + 3] ^= 0xff;
        let path = dir.join(segment_name(0));
        let file = File::options().write(true).open(&path).unwrap();
        file.write_all_at(&torn, end).unwrap();
        drop(file);
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&log, None, 100), vec![0, 1]);
        let bytes = std::fs::read(&path).unwrap();
        assert!(bytes[end as usize..].iter().all(|b| *b == 0), "cleared");
        // Numbering goes on from the last whole record, in the same segment.
        assert_eq!(log.append(now, &batch(10, 1)).unwrap(), vec![2]);
        drop(log);
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        let read = log.read_after(Some(1), 100).unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].alert, alert(10));
        assert_eq!(files(&dir), vec![segment_name(0)]);
    }

    #[test]
    fn processed_segments_are_deleted_and_numbering_survives_them() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let now = Utc::now();
        let log = IntakeLog::open(&dir, 0, 1200).unwrap();
        for b in 0..6u64 {
            log.append(now, &batch(b * 3, 3)).unwrap();
        }
        let before = log.segment_count();
        log.prune(7).unwrap();
        let left = seqs(&log, None, 1000);
        assert!(left[0] <= 8, "an unprocessed alert was deleted: {left:?}");
        assert!(left[0] > 0, "nothing was deleted: {left:?}");
        assert_eq!(*left.last().unwrap(), 17);
        assert!(log.segment_count() < before);
        assert_eq!(files(&dir).len(), log.segment_count());
        // Everything processed: only the segment being written stays.
        log.prune(17).unwrap();
        assert_eq!(log.segment_count(), 1);
        drop(log);
        let log = IntakeLog::open(&dir, 0, 1200).unwrap();
        assert_eq!(log.next_seq().unwrap(), 18);
        assert_eq!(log.append(now, &batch(0, 1)).unwrap(), vec![18]);
    }

    #[test]
    fn a_floor_above_the_log_starts_a_new_segment_there() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let now = Utc::now();
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        log.append(now, &batch(0, 2)).unwrap();
        drop(log);
        let log = IntakeLog::open(&dir, 40, SEGMENT_BYTES).unwrap();
        assert_eq!(log.append(now, &batch(0, 1)).unwrap(), vec![40]);
        assert_eq!(seqs(&log, None, 10), vec![0, 1, 40]);
        assert_eq!(seqs(&log, Some(1), 10), vec![40]);
        drop(log);
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        assert_eq!(seqs(&log, None, 10), vec![0, 1, 40]);
        assert_eq!(files(&dir), vec![segment_name(0), segment_name(40)]);
    }

    #[test]
    fn imports_keep_their_seqs_and_refuse_a_gap() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let at = Utc::now();
        let rows: Vec<Accepted> = (5..9)
            .map(|seq| Accepted {
                seq,
                at,
                alert: alert(seq),
            })
            .collect();
        let log = IntakeLog::open(&dir, 5, SEGMENT_BYTES).unwrap();
        log.import(&rows).unwrap();
        assert_eq!(log.read_after(None, 10).unwrap(), rows);
        // Imported again (a crash before the old table was emptied): nothing twice.
        log.import(&rows).unwrap();
        assert_eq!(seqs(&log, None, 10), vec![5, 6, 7, 8]);
        assert_eq!(log.append(at, &batch(0, 1)).unwrap(), vec![9]);
        let gap = [Accepted {
            seq: 12,
            at,
            alert: alert(12),
        }];
        let e = log.import(&gap).unwrap_err().to_string();
        assert!(e.contains("do not follow 10"), "{e}");
    }
}
