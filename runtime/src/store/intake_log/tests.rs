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

/// How the next write fails.
#[derive(Debug)]
pub(super) enum Fault {
    /// Nothing reaches the file.
    Write,
    /// The start of the batch's first record reaches the file (the disk filled up).
    ShortWrite,
    /// The whole batch reaches the file, the fsync fails.
    Sync,
    /// The fsync waits for a word on the channel, then fails.
    SyncFailsWhen(std::sync::mpsc::Receiver<()>),
}

/// The segment files in `dir` (a spare being made is not one).
fn files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".log"))
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
fn a_failed_write_abandons_its_segment_and_burns_its_seqs() {
    for fault in [Fault::Write, Fault::ShortWrite, Fault::Sync] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("intake");
        let now = Utc::now();
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        assert_eq!(log.append(now, &batch(0, 3)).unwrap(), vec![0, 1, 2]);
        let failed_batch_read = match fault {
            Fault::Sync => vec![3, 4],
            _ => vec![],
        };
        let kind = format!("{fault:?}");
        *log.fault.lock().unwrap() = Some(fault);
        let e = log.append(now, &batch(3, 2)).unwrap_err().to_string();
        assert!(
            e.contains("accepted alerts") && e.contains("injected"),
            "{kind}: {e}"
        );
        // What reached the disk is unknown: the next batch goes to a new segment, past
        // the failed batch's seqs, and readers never see the failed one in this process.
        assert_eq!(log.append(now, &batch(5, 4)).unwrap(), vec![5, 6, 7, 8]);
        assert_eq!(files(&dir), vec![segment_name(0), segment_name(5)]);
        assert_eq!(seqs(&log, None, 100), vec![0, 1, 2, 5, 6, 7, 8], "{kind}");
        assert_eq!(seqs(&log, Some(2), 100), vec![5, 6, 7, 8], "{kind}");
        drop(log);
        // After a restart: a torn batch is cleared; a whole one that was never synced as
        // far as this process knows may be read (its sender was told it failed, so at
        // worst it is processed as a retry would be, as a repeat). Numbering goes on.
        let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
        let expected: Vec<u64> = [0, 1, 2]
            .into_iter()
            .chain(failed_batch_read)
            .chain(5..9)
            .collect();
        assert_eq!(seqs(&log, None, 100), expected, "{kind}");
        assert_eq!(log.append(now, &batch(9, 1)).unwrap(), vec![9]);
        let first = std::fs::read(dir.join(segment_name(0))).unwrap();
        let end = log.segments.read().unwrap()[0].end as usize;
        assert!(first[end..].iter().all(|b| *b == 0), "{kind}: cleared");
    }
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

#[test]
fn staged_batches_are_read_only_once_synced_and_one_sync_covers_them_all() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("intake");
    let now = Utc::now();
    let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
    let a = log.stage(now, &batch(0, 2)).unwrap();
    let b = log.stage(now, &batch(2, 3)).unwrap();
    let c = log.stage(now, &batch(5, 1)).unwrap();
    assert_eq!((a.seqs.clone(), b.seqs.clone(), c.seqs), (0..2, 2..5, 5..6));
    assert!(seqs(&log, None, 100).is_empty(), "nothing durable yet");
    assert!(log.take_outcome(a.ticket).is_err(), "not decided yet");
    // Syncing through the middle one makes all three durable.
    log.sync_through(b.ticket).unwrap();
    assert_eq!(seqs(&log, None, 100), (0..6).collect::<Vec<_>>());
    for t in [a.ticket, b.ticket, c.ticket] {
        log.take_outcome(t).unwrap();
        log.sync_through(t).unwrap();
    }
    assert!(log.stage(now, &[]).is_err(), "an empty batch");
    let d = log.stage(now, &batch(6, 2)).unwrap();
    assert_eq!(d.seqs, 6..8);
    log.sync_through(d.ticket).unwrap();
    drop(log);
    let log = IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap();
    assert_eq!(seqs(&log, None, 100), (0..8).collect::<Vec<_>>());
}

#[test]
fn a_failed_fsync_fails_what_was_staged_in_its_segment_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("intake");
    let now = Utc::now();
    let log = Arc::new(IntakeLog::open(&dir, 0, SEGMENT_BYTES).unwrap());
    assert_eq!(log.append(now, &batch(0, 2)).unwrap(), vec![0, 1]);
    let a = log.stage(now, &batch(2, 2)).unwrap();
    let (go, wait) = std::sync::mpsc::channel();
    *log.fault.lock().unwrap() = Some(Fault::SyncFailsWhen(wait));
    // A's fsync is under way (and will fail) when B is written to the same segment.
    let syncer = {
        let log = log.clone();
        std::thread::spawn(move || log.sync_through(a.ticket))
    };
    while !log.writer.lock().unwrap().staged.is_empty() {
        std::thread::yield_now();
    }
    let b = log.stage(now, &batch(4, 3)).unwrap();
    go.send(()).unwrap();
    syncer.join().unwrap().unwrap();
    let e = log.take_outcome(a.ticket).unwrap_err().to_string();
    assert!(e.contains("injected: fdatasync"), "{e}");
    // B's own fsync would succeed (Linux reports a writeback error once), but what came
    // before it in the file is not known to be there: B fails without one.
    log.sync_through(b.ticket).unwrap();
    let e = log.take_outcome(b.ticket).unwrap_err().to_string();
    assert!(e.contains("an earlier fsync of its segment failed"), "{e}");
    // The segment is abandoned: C starts a new one, past A's and B's seqs.
    assert_eq!(log.append(now, &batch(7, 1)).unwrap(), vec![7]);
    assert_eq!(files(&dir), vec![segment_name(0), segment_name(7)]);
    assert_eq!(seqs(&log, None, 100), vec![0, 1, 7]);
}

#[test]
fn a_segment_with_batches_still_to_sync_is_not_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("intake");
    let now = Utc::now();
    // Room for about four records per segment.
    let log = IntakeLog::open(&dir, 0, 1200).unwrap();
    assert_eq!(log.append(now, &batch(0, 2)).unwrap(), vec![0, 1]);
    // X goes to segment 0, Y does not fit and starts segment 3: segment 0 is no longer the
    // one being written, and X in it is not durable yet.
    let x = log.stage(now, &batch(2, 1)).unwrap();
    let y = log.stage(now, &batch(3, 3)).unwrap();
    assert_eq!((x.seqs.start, y.seqs.start), (2, 3));
    assert_eq!(files(&dir), vec![segment_name(0), segment_name(3)]);
    log.prune(1).unwrap();
    assert_eq!(log.segment_count(), 2, "X would have been lost");
    log.sync_through(y.ticket).unwrap();
    assert_eq!(seqs(&log, None, 100), (0..6).collect::<Vec<_>>());
    log.prune(2).unwrap();
    assert_eq!(files(&dir), vec![segment_name(3)]);
    assert_eq!(seqs(&log, None, 100), vec![3, 4, 5]);
}

#[test]
#[allow(clippy::disallowed_methods)] // waits on the thread making the spare
fn the_next_segment_is_made_ahead_and_a_leftover_spare_is_cleared() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("intake");
    let now = Utc::now();
    // Room for about four records per segment: past half of it, the next one is made.
    let log = IntakeLog::open(&dir, 0, 1200).unwrap();
    log.append(now, &batch(0, 3)).unwrap();
    let mut waited = 0;
    while !matches!(*log.spare.lock().unwrap(), Spare::Ready(_)) {
        assert!(waited < 10_000, "no spare made");
        std::thread::sleep(std::time::Duration::from_millis(1));
        waited += 1;
    }
    let spare = std::fs::metadata(dir.join(SPARE)).unwrap();
    assert_eq!(spare.len(), 1200);
    assert_eq!(spare.mode() & 0o777, 0o600);
    // The batch that does not fit goes to the spare, renamed.
    log.append(now, &batch(3, 3)).unwrap();
    let segment = std::fs::metadata(dir.join(segment_name(3))).unwrap();
    assert_eq!(segment.ino(), spare.ino());
    // (The new segment is past half full already: another spare may be under way.)
    assert!(std::fs::metadata(dir.join(SPARE)).map_or(true, |m| m.ino() != spare.ino()));
    assert_eq!(seqs(&log, None, 100), (0..6).collect::<Vec<_>>());
    drop(log);
    // A spare half made when the process died is removed on open, never read.
    std::fs::write(dir.join(SPARE), b"\x01\x02garbage").unwrap();
    let log = IntakeLog::open(&dir, 0, 1200).unwrap();
    assert!(!dir.join(SPARE).exists());
    assert_eq!(seqs(&log, None, 100), (0..6).collect::<Vec<_>>());
}

#[test]
#[allow(clippy::disallowed_methods)] // the reader polls the other threads' progress
fn a_reader_sees_every_batch_in_order_while_a_writer_and_a_syncer_rotate_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("intake");
    let now = Utc::now();
    // Small segments: a rotation every few batches, spares made ahead and used.
    let log = Arc::new(IntakeLog::open(&dir, 0, 4096).unwrap());
    let total = 3000u64;
    let (to_sync, staged) = std::sync::mpsc::channel::<Staged>();
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut i = 0;
            while i < total {
                let n = (i % 7 + 1).min(total - i);
                to_sync.send(log.stage(now, &batch(i, n)).unwrap()).unwrap();
                i += n;
            }
        })
    };
    let syncer = {
        let log = log.clone();
        std::thread::spawn(move || {
            while let Ok(first) = staged.recv() {
                let mut tickets = vec![first.ticket];
                tickets.extend(staged.try_iter().map(|s| s.ticket));
                log.sync_through(*tickets.last().unwrap()).unwrap();
                for t in tickets {
                    log.take_outcome(t).unwrap();
                }
            }
        })
    };
    let mut next = 0u64;
    let mut idle = 0;
    while next < total {
        let read = log.read_after(next.checked_sub(1), 50).unwrap();
        if read.is_empty() {
            idle += 1;
            assert!(idle < 20_000, "stuck at {next}: {:?}", files(&dir));
            std::thread::sleep(std::time::Duration::from_micros(100));
            continue;
        }
        idle = 0;
        for a in read {
            assert_eq!(a.seq, next);
            assert_eq!(a.alert, alert(next));
            next += 1;
        }
        log.prune(next - 1).unwrap();
    }
    writer.join().unwrap();
    syncer.join().unwrap();
    assert!(log.segment_count() <= 2, "{:?}", files(&dir));
}
