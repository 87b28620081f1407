//! The redb store's intake log: accepted alerts appended to segment files, each batch written
//! with one `pwrite` and made durable by an `fdatasync` before its alerts are answered. Writing
//! and syncing are separate steps ([`IntakeLog::stage`], [`IntakeLog::sync_through`]), so one
//! batch can be written while those before it are being synced, and one fsync covers them all.
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
//! bytes can ever be read as a record. A write or fsync that fails abandons its segment (a failed
//! fsync fails every batch of that segment not yet durable, including those written while it
//! ran): the next batch starts a new one, past the failed batches' seqs (which may or may not
//! have reached the disk, and were answered with an error either way). Seqs therefore have no gap within a
//! segment, and readers allow one between segments.
//!
//! Retention: a segment whose every alert is processed (the watermark passed it) is deleted,
//! except the one being written and any with batches still to sync.

use std::collections::{BTreeMap, BTreeSet};
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
    /// Batches written but not yet made durable, oldest first.
    staged: Vec<StagedBatch>,
    next_ticket: u64,
    /// The active segment (by first seq) a spare was last asked for while it filled up.
    spare_asked_for: Option<u64>,
}

/// A batch written to its segment, waiting for an fsync.
struct StagedBatch {
    ticket: u64,
    file: Arc<File>,
    segment_first: u64,
    /// Where it starts in its segment, its length, and where each record starts within it.
    at: u64,
    len: u64,
    offsets: Vec<u64>,
}

/// What the fsyncs decided.
#[derive(Default)]
struct Syncing {
    /// Every ticket below this one is decided: durable, or failed (in `failed`).
    decided_below: u64,
    /// The failed tickets nobody has asked about yet, with why.
    failed: BTreeMap<u64, String>,
    /// Segments (by first seq) whose fsync failed: what else was written to them fails too.
    poisoned: BTreeSet<u64>,
}

/// The log: one writer at a time; readers see a batch once it is durable.
///
/// Writing is in two steps, so that one batch can be written while the batch before it is
/// being made durable: [`stage`](Self::stage) encodes a batch and writes it to its segment
/// (`pwrite`, the page cache), [`sync_through`](Self::sync_through) makes every batch staged so
/// far durable with one `fdatasync` per segment and publishes them to readers, in order.
/// [`append`](Self::append) does both.
pub(crate) struct IntakeLog {
    dir: PathBuf,
    segment_bytes: u64,
    writer: Mutex<Writer>,
    sync: Mutex<Syncing>,
    segments: RwLock<Vec<Segment>>,
    spare: Arc<Mutex<Spare>>,
    /// The next write's or fsync's failure, in tests.
    #[cfg(test)]
    fault: Mutex<Option<tests::Fault>>,
}

/// A staged batch: its seqs, and the ticket to ask [`IntakeLog::sync_through`] and
/// [`IntakeLog::take_outcome`] about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Staged {
    pub(crate) seqs: std::ops::Range<u64>,
    pub(crate) ticket: u64,
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
    let file = zero_filled(&path, bytes)?;
    sync_dir(dir)?;
    Ok((path, file))
}

/// A file of `bytes` zeros at `path`, its data and size durable.
fn zero_filled(path: &Path, bytes: u64) -> Result<File, StoreError> {
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(true);
    // What alerts carry (annotations, labels) is its owner's alone, as the redb file is.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .map_err(|e| io_err(path, "cannot create a segment", e))?;
    let zeros = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < bytes {
        let n = (bytes - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)
            .map_err(|e| io_err(path, "cannot fill a new segment", e))?;
        at += n as u64;
    }
    file.sync_all()
        .map_err(|e| io_err(path, "cannot sync a new segment", e))?;
    Ok(file)
}

/// The next segment, made ahead by a thread of its own while the active one fills up: filling
/// 16 MiB with zeros and syncing it took 50-100 ms, during which no batch could be written.
enum Spare {
    None,
    Making,
    Ready(File),
}

/// Where the spare segment is made (not a `.log` name: never read as a segment).
const SPARE: &str = "next.spare";

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
        // A spare segment a crash left half made: made again when needed.
        match std::fs::remove_file(dir.join(SPARE)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_err(dir, "cannot remove the spare segment", e));
            }
            _ => {}
        }
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
                staged: Vec::new(),
                next_ticket: 0,
                spare_asked_for: None,
            }),
            sync: Mutex::new(Syncing::default()),
            segments: RwLock::new(segments),
            spare: Arc::new(Mutex::new(Spare::None)),
            #[cfg(test)]
            fault: Mutex::new(None),
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
        if alerts.is_empty() {
            return Ok(Vec::new());
        }
        let staged = self.stage(at, alerts)?;
        self.sync_through(staged.ticket)?;
        self.take_outcome(staged.ticket)?;
        Ok(staged.seqs.collect())
    }

    /// Writes `alerts` (at least one) as one batch, not yet durable (nor visible to readers).
    pub(crate) fn stage(&self, at: DateTime<Utc>, alerts: &[Alert]) -> Result<Staged, StoreError> {
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

    /// Writes an encoded batch whose first record has seq `first`, and stages it.
    fn write(
        &self,
        w: &mut Writer,
        first: u64,
        buf: &[u8],
        offsets: Vec<u64>,
    ) -> Result<Staged, StoreError> {
        let n = offsets.len() as u64;
        let ticket = w.next_ticket;
        if n == 0 {
            return Err(io_err(&self.dir, "cannot stage", "an empty batch"));
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
        // The batch's seqs are spent from here on, written or not.
        w.next_seq = first + n;
        if let Err(e) = self.pwrite(&active.file, buf, at) {
            // What reached the file is unknown: this segment takes no more, and the next
            // batch starts a new one past these seqs.
            w.active = None;
            return Err(io_err(&self.dir, "cannot write accepted alerts", e));
        }
        active.offset += buf.len() as u64;
        if active.offset * 2 >= active.capacity && w.spare_asked_for != Some(active.first_seq) {
            w.spare_asked_for = Some(active.first_seq);
            self.make_spare();
        }
        let Some(active) = w.active.as_ref() else {
            return Err(io_err(&self.dir, "no segment to write", "internal error"));
        };
        let batch = StagedBatch {
            ticket,
            file: active.file.clone(),
            segment_first: active.first_seq,
            at,
            len: buf.len() as u64,
            offsets,
        };
        w.staged.push(batch);
        w.next_ticket += 1;
        Ok(Staged {
            seqs: first..first + n,
            ticket,
        })
    }

    /// Makes every batch staged so far durable (if `ticket`'s fate is not known yet): one
    /// `fdatasync` per segment they were written to, then publishes them to readers in order.
    /// A failed fsync fails its segment's batches, this round's and every later one's, and
    /// abandons the segment. Each batch's fate is then taken with
    /// [`take_outcome`](Self::take_outcome).
    pub(crate) fn sync_through(&self, ticket: u64) -> Result<(), StoreError> {
        let mut sync = self.sync.lock().map_err(|_| self.poisoned())?;
        if ticket < sync.decided_below {
            return Ok(());
        }
        let staged = std::mem::take(&mut self.writer.lock().map_err(|_| self.poisoned())?.staged);
        let Some(last) = staged.last().map(|b| b.ticket) else {
            return Err(io_err(
                &self.dir,
                "sync",
                format!("ticket {ticket} was never staged"),
            ));
        };
        let mut durable: Vec<&StagedBatch> = Vec::with_capacity(staged.len());
        let mut i = 0;
        while i < staged.len() {
            // The run of batches written to this segment.
            let segment = staged[i].segment_first;
            let run = staged[i..]
                .iter()
                .take_while(|b| b.segment_first == segment)
                .count();
            let batches = &staged[i..i + run];
            i += run;
            let failure = if sync.poisoned.contains(&segment) {
                Some("an earlier fsync of its segment failed".to_owned())
            } else {
                self.fsync(&batches[0].file).err().map(|e| e.to_string())
            };
            match failure {
                None => durable.extend(batches),
                Some(e) => {
                    tracing::error!(segment, "intake log: fdatasync failed: {e}");
                    sync.poisoned.insert(segment);
                    let mut w = self.writer.lock().map_err(|_| self.poisoned())?;
                    if w.active.as_ref().is_some_and(|a| a.first_seq == segment) {
                        w.active = None;
                    }
                    for b in batches {
                        sync.failed.insert(b.ticket, e.clone());
                    }
                }
            }
        }
        sync.decided_below = last + 1;
        let mut segments = self.segments.write().map_err(|_| self.poisoned())?;
        for b in durable {
            let Some(s) = segments
                .iter_mut()
                .rev()
                .find(|s| s.first_seq == b.segment_first)
            else {
                return Err(io_err(&self.dir, "segment index", "out of step"));
            };
            if s.end != b.at {
                return Err(io_err(&s.path, "segment index", "out of step"));
            }
            s.offsets.extend(b.offsets.iter().map(|o| o + b.at));
            s.end = b.at + b.len;
        }
        Ok(())
    }

    /// Whether the batch staged with `ticket` is durable, once [`sync_through`] decided it.
    /// Asked once, by the ticket's owner: a failure is forgotten once it is taken.
    ///
    /// [`sync_through`]: Self::sync_through
    pub(crate) fn take_outcome(&self, ticket: u64) -> Result<(), StoreError> {
        let mut sync = self.sync.lock().map_err(|_| self.poisoned())?;
        if ticket >= sync.decided_below {
            return Err(io_err(
                &self.dir,
                "outcome",
                format!("ticket {ticket} is not synced yet"),
            ));
        }
        match sync.failed.remove(&ticket) {
            None => Ok(()),
            Some(e) => Err(io_err(&self.dir, "cannot make accepted alerts durable", e)),
        }
    }

    #[cfg(not(test))]
    fn pwrite(&self, file: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
        file.write_all_at(buf, at)
    }

    #[cfg(not(test))]
    fn fsync(&self, file: &File) -> std::io::Result<()> {
        file.sync_data()
    }

    /// As outside tests, unless a fault is set for the next write.
    #[cfg(test)]
    fn pwrite(&self, file: &File, buf: &[u8], at: u64) -> std::io::Result<()> {
        let mut fault = self
            .fault
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?;
        match *fault {
            Some(tests::Fault::Write) => {
                *fault = None;
                Err(std::io::Error::other("injected: pwrite"))
            }
            Some(tests::Fault::ShortWrite) => {
                *fault = None;
                file.write_all_at(&buf[..buf.len().min(HEADER + 5)], at)?;
                Err(std::io::Error::other(
                    "injected: pwrite: no space left on device",
                ))
            }
            Some(tests::Fault::Sync | tests::Fault::SyncFailsWhen(_)) | None => {
                file.write_all_at(buf, at)
            }
        }
    }

    /// As outside tests, unless a fault is set for the next fsync.
    #[cfg(test)]
    fn fsync(&self, file: &File) -> std::io::Result<()> {
        let taken = {
            let mut fault = self
                .fault
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            match fault.take() {
                Some(f @ (tests::Fault::Sync | tests::Fault::SyncFailsWhen(_))) => Some(f),
                other => {
                    *fault = other;
                    None
                }
            }
        };
        match taken {
            Some(tests::Fault::SyncFailsWhen(go)) => {
                let _ = go.recv();
                Err(std::io::Error::other("injected: fdatasync"))
            }
            Some(_) => Err(std::io::Error::other("injected: fdatasync")),
            None => file.sync_data(),
        }
    }

    /// Starts making the next segment on a thread of its own, unless one is made or being made.
    fn make_spare(&self) {
        let Ok(mut spare) = self.spare.lock() else {
            return;
        };
        if !matches!(*spare, Spare::None) {
            return;
        }
        *spare = Spare::Making;
        drop(spare);
        let (slot, path, bytes) = (self.spare.clone(), self.dir.join(SPARE), self.segment_bytes);
        let made = std::thread::Builder::new()
            .name("squad-intake-spare".into())
            .spawn(move || {
                let file = zero_filled(&path, bytes)
                    .inspect_err(|e| tracing::warn!("intake log: no spare segment: {e}"))
                    .ok();
                if let Ok(mut spare) = slot.lock() {
                    *spare = file.map_or(Spare::None, Spare::Ready);
                }
            });
        if made.is_err()
            && let Ok(mut spare) = self.spare.lock()
        {
            *spare = Spare::None;
        }
    }

    /// The spare segment, if one is made with room for `bytes`.
    fn take_spare(&self, bytes: u64) -> Option<File> {
        let mut spare = self.spare.lock().ok()?;
        let ready =
            matches!(&*spare, Spare::Ready(f) if f.metadata().is_ok_and(|m| m.len() >= bytes));
        if !ready {
            return None;
        }
        match std::mem::replace(&mut *spare, Spare::None) {
            Spare::Ready(file) => Some(file),
            _ => None,
        }
    }

    /// Starts a segment at `first` with room for at least `need` bytes.
    fn rotate(&self, w: &mut Writer, first: u64, need: u64) -> Result<(), StoreError> {
        if let Some(old) = w.active.take() {
            // The rest of a full segment is zeros: given back (a lost truncation is harmless).
            let _ = old.file.set_len(old.offset);
        }
        let bytes = self.segment_bytes.max(need);
        let (path, file) = match self.take_spare(bytes) {
            Some(spare) => {
                let path = self.dir.join(segment_name(first));
                std::fs::rename(self.dir.join(SPARE), &path)
                    .map_err(|e| io_err(&path, "cannot name the spare segment", e))?;
                sync_dir(&self.dir)?;
                (path, spare)
            }
            None => make_segment(&self.dir, first, bytes)?,
        };
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
            if skip >= s.offsets.len() {
                // A segment started while the batches before it are being synced: nothing in
                // it is durable yet.
                continue;
            }
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
    /// being written and those with batches still to sync.
    pub(crate) fn prune(&self, processed: u64) -> Result<(), StoreError> {
        // Usually one segment: nothing to delete, and no wait for a commit in progress.
        if self.segments.read().map_err(|_| self.poisoned())?.len() <= 1 {
            return Ok(());
        }
        // No sync round in progress meanwhile: its batches are neither staged nor published.
        let _sync = self.sync.lock().map_err(|_| self.poisoned())?;
        let busy: BTreeSet<u64> = {
            let w = self.writer.lock().map_err(|_| self.poisoned())?;
            w.active
                .iter()
                .map(|a| a.first_seq)
                .chain(w.staged.iter().map(|b| b.segment_first))
                .collect()
        };
        let mut gone = Vec::new();
        {
            let mut segments = self.segments.write().map_err(|_| self.poisoned())?;
            segments.retain(|s| {
                let done = !busy.contains(&s.first_seq)
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
        let staged = self.write(&mut w, first, &buf, offsets)?;
        drop(w);
        self.sync_through(staged.ticket)?;
        self.take_outcome(staged.ticket)
    }
}

#[cfg(test)]
mod tests;
