//! Streams a billing CSV (plain or gzipped) and sums its cost per day and distinct set of
//! dimension values, in constant memory and on every core.
//!
//! Why not polars here: on a 10-million-row FOCUS export, polars 0.55's Rust CSV reader alone
//! took 5.9 s, slower than Python polars doing the whole job (4.7 s), and its streaming engine
//! peaked at 1.7–3.2 GB. This module keeps the parsing to the `csv` crate and does only the
//! aggregation by hand: the file is cut into blocks at line ends, each block is parsed and summed
//! by a worker thread, and the reader never holds more than a few blocks. Parquet stays on
//! polars, which reads it as fast as Python does.
//!
//! A row becomes a day (the first ten bytes of a UTC timestamp), a cost, and a *combination*:
//! the raw bytes of every other column the layout keeps. Combinations repeat (a few thousand
//! across millions of rows), so everything slow — Tags JSON, currency codes, value mapping — is
//! done once per combination by the caller, with the first line it appeared on for errors.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::sync::mpsc;

use foldhash::fast::RandomState;

use super::IngestError;

/// Which columns of a CSV file a source sums, found by header name.
#[derive(Debug, Clone)]
pub struct Columns {
    /// The charge day: a date or UTC timestamp.
    pub day: usize,
    /// The amount.
    pub cost: usize,
    /// Every column whose raw value is kept per combination, in the caller's order.
    pub kept: Vec<usize>,
}

/// The header of a CSV file, for finding columns by name.
#[derive(Debug, Clone)]
pub struct Header {
    names: Vec<String>,
}

impl Header {
    /// The index of the first of `candidates` present.
    pub fn find(&self, candidates: &[&str]) -> Option<usize> {
        candidates
            .iter()
            .find_map(|c| self.names.iter().position(|n| n == c))
    }

    /// Every column name.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// One distinct combination of kept values, with where it first appeared.
#[derive(Debug)]
pub struct Combination {
    /// The raw values of the kept columns, in `Columns::kept` order; `None` when empty or `NULL`.
    pub values: Vec<Option<String>>,
    /// The line it first appeared on (the header is line 1).
    pub first_line: u64,
}

/// A whole file summed: the combinations seen and the cost per (day, combination).
#[derive(Debug, Default)]
pub struct Rollup {
    /// Distinct combinations; `sums` refers to them by index.
    pub combinations: Vec<Combination>,
    /// Cost per (day as days since 1970-01-01, combination index).
    pub sums: HashMap<(i32, u32), f64, RandomState>,
    /// Data rows read.
    pub rows: u64,
}

/// Rows outside `[from, to]` (days since 1970-01-01) are read and checked but not summed.
#[derive(Debug, Clone, Copy)]
pub struct DayWindow {
    /// First day kept.
    pub from: i32,
    /// Last day kept.
    pub to: i32,
}

/// Bytes handed to a worker at a time; large enough that channel overhead vanishes, small enough
/// that a few in flight cost little memory.
const BLOCK: usize = 8 << 20;

/// Bytes asked of the file per read.
const READ: usize = 2 << 20;

/// Opens `file`, decompressing `.gz` on the fly.
pub fn open(file: &Path) -> Result<Box<dyn Read + Send>, IngestError> {
    let f = std::fs::File::open(file).map_err(|e| IngestError::Unreadable {
        file: file.to_path_buf(),
        message: e.to_string(),
    })?;
    let gz = file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    Ok(if gz {
        Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
            f,
        )))
    } else {
        Box::new(f)
    })
}

/// Streams a CSV file: reads its header, lets `choose` pick the columns, and sums every row.
pub fn sum_csv(
    file: &Path,
    choose: impl FnOnce(&Header) -> Result<Columns, IngestError>,
    window: Option<DayWindow>,
) -> Result<Rollup, IngestError> {
    sum_csv_in_blocks(file, choose, window, BLOCK)
}

/// [`sum_csv`] with a given block size (tests use small ones to cross many block boundaries).
fn sum_csv_in_blocks(
    file: &Path,
    choose: impl FnOnce(&Header) -> Result<Columns, IngestError>,
    window: Option<DayWindow>,
    block: usize,
) -> Result<Rollup, IngestError> {
    let mut input = open(file)?;
    let unreadable = |message: String| IngestError::Unreadable {
        file: file.to_path_buf(),
        message,
    };

    // The header line, then whatever followed it in the same read.
    let mut pending: Vec<u8> = Vec::with_capacity(block);
    let header = read_header(&mut input, &mut pending).map_err(unreadable)?;
    let columns = choose(&header)?;
    let width = header.names.len();

    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let outcome = std::thread::scope(|scope| {
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, u32)>(workers * 2);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let rx = rx.clone();
                let columns = &columns;
                scope.spawn(move || {
                    let mut part = Partial::default();
                    loop {
                        let next = rx.lock().map(|r| r.recv());
                        let Ok(Ok((block, index))) = next else {
                            break;
                        };
                        if part.error.is_some() {
                            continue; // drain, so the reader never blocks on a full channel
                        }
                        part.add_block(&block, index, width, columns, window);
                    }
                    part
                })
            })
            .collect();

        let read_error = send_blocks(&mut input, pending, block, &tx, file);
        drop(tx);
        // A worker that died took its sums with it: that is a failed read, never a smaller total.
        let parts: Option<Vec<Partial>> = handles.into_iter().map(|h| h.join().ok()).collect();
        match (read_error, parts) {
            (Some(message), _) => Err((None, message)),
            (None, None) => Err((None, "a reader thread failed".to_string())),
            (None, Some(parts)) => {
                merge(parts).map_err(|(line, problem)| (Some((line, problem.0)), problem.1))
            }
        }
    });
    outcome.map_err(|(at, problem)| match at {
        Some((line, column)) => IngestError::BadValue {
            file: file.to_path_buf(),
            location: format!("line {line}"),
            column: column
                .and_then(|c| header.names.get(c).cloned())
                .unwrap_or_else(|| "(row)".into()),
            problem,
        },
        None => unreadable(problem),
    })
}

/// Reads the header line and parses it, leaving in `pending` what followed it.
fn read_header(input: &mut dyn Read, pending: &mut Vec<u8>) -> Result<Header, String> {
    let header_end = loop {
        if let Some(i) = memchr::memchr(b'\n', pending) {
            break i;
        }
        if fill(input, pending).map_err(|e| e.to_string())? == 0 {
            if pending.is_empty() {
                return Err("the file is empty".into());
            }
            break pending.len();
        }
    };
    let header_line = pending[..header_end].to_vec();
    pending.drain(..(header_end + 1).min(pending.len()));
    parse_header(&header_line)
}

/// Cuts the rest of the stream into blocks at line ends and sends them, numbered, to the
/// workers; the read error, if reading failed. Workers count each block's lines as they parse
/// it, so line numbers cost the reader nothing.
fn send_blocks(
    input: &mut dyn Read,
    mut pending: Vec<u8>,
    block: usize,
    tx: &mpsc::SyncSender<(Vec<u8>, u32)>,
    file: &Path,
) -> Option<String> {
    let mut index = 0u32;
    let mut bytes = 0u64;
    let started = std::time::Instant::now();
    let mut reported = started;
    loop {
        let n = match fill(input, &mut pending) {
            Ok(n) => n,
            Err(e) => return Some(e.to_string()),
        };
        let at_end = n == 0;
        if pending.len() < block && !at_end {
            continue;
        }
        let cut = if at_end {
            pending.len()
        } else {
            match memchr::memrchr(b'\n', &pending) {
                Some(i) => i + 1,
                None => continue, // one line longer than a block: keep reading
            }
        };
        if cut > 0 {
            let rest = pending.split_off(cut);
            let block = std::mem::replace(&mut pending, rest);
            bytes += block.len() as u64;
            if tx.send((block, index)).is_err() {
                return None;
            }
            index += 1;
            // Progress for long files, at most every five seconds.
            if reported.elapsed().as_secs() >= 5 {
                reported = std::time::Instant::now();
                tracing::info!(
                    file = %file.display(),
                    mb = bytes >> 20,
                    seconds = started.elapsed().as_secs(),
                    "Reading."
                );
            }
        }
        if at_end {
            return None;
        }
        pending.reserve(block);
    }
}

/// Reads up to [`READ`] more bytes into `buf`; returns the bytes read (0 at end of input).
fn fill(input: &mut dyn Read, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let start = buf.len();
    buf.resize(start + READ, 0);
    let n = loop {
        match input.read(&mut buf[start..]) {
            Ok(n) => break n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.truncate(start);
                return Err(e);
            }
        }
    };
    buf.truncate(start + n);
    Ok(n)
}

fn parse_header(line: &[u8]) -> Result<Header, String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => Ok(Header {
            names: record.iter().map(|s| s.trim().to_string()).collect(),
        }),
        Ok(false) => Err("the file has no header line".into()),
        Err(e) => Err(format!("the header line is not valid CSV: {e}")),
    }
}

/// The column at fault (`None` for the row as a whole) and what is wrong, for an error raised
/// while summing; the column is an index so the hot loop does no name lookups.
type Problem = (Option<usize>, String);

/// What one worker summed.
#[derive(Default)]
struct Partial {
    /// Raw kept values per combination → local combination index.
    index: HashMap<Vec<u8>, u32, RandomState>,
    combos: Vec<(Vec<u8>, u64)>,
    sums: HashMap<(i32, u32), f64, RandomState>,
    rows: u64,
    /// Lines in each block this worker parsed whole, by block index.
    block_lines: Vec<(u32, u64)>,
    /// The first error in this worker's earliest failing block, at its [`place`].
    error: Option<(u64, Problem)>,
}

/// Where a line is before line numbers are known: the block's index in the high half and the
/// line within the block (from 1) in the low half, so places order like the file's lines.
fn place(block: u32, line_in_block: u64) -> u64 {
    (u64::from(block) << 32) | line_in_block
}

/// Turns places into line numbers (the header is line 1) from the blocks' line counts.
struct Lines {
    /// Blocks parsed whole, in file order: (index, lines in the block).
    blocks: Vec<(u32, u64)>,
    /// Lines before each of `blocks`, the header included.
    before: Vec<u64>,
}

impl Lines {
    fn new(parts: &[Partial]) -> Lines {
        let mut blocks: Vec<(u32, u64)> = parts
            .iter()
            .flat_map(|p| p.block_lines.iter().copied())
            .collect();
        blocks.sort_unstable();
        let before = blocks
            .iter()
            .scan(1, |seen, (_, n)| {
                let at = *seen;
                *seen += n;
                Some(at)
            })
            .collect();
        Lines { blocks, before }
    }

    /// Exact when every block before the place's was parsed whole: always without errors, and
    /// for the earliest error, since a worker stops only after its own.
    fn line(&self, place: u64) -> u64 {
        let block = (place >> 32) as u32;
        let within = place & 0xFFFF_FFFF;
        let i = self.blocks.partition_point(|(b, _)| *b < block);
        let before = match i.checked_sub(1) {
            Some(j) => self.before[j] + self.blocks[j].1,
            None => 1,
        };
        before + within
    }
}

impl Partial {
    fn add_block(
        &mut self,
        block: &[u8],
        index: u32,
        width: usize,
        columns: &Columns,
        window: Option<DayWindow>,
    ) {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(block);
        let mut record = csv::ByteRecord::new();
        let mut key = Vec::with_capacity(256);
        let mut last_day: ([u8; 10], i32) = ([0; 10], 0);
        loop {
            let line = place(index, reader.position().line());
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    self.fail(line, None, format!("is not valid CSV: {e}"));
                    return;
                }
            }
            if record.len() == 1 && record.get(0).is_some_and(<[u8]>::is_empty) {
                continue; // a blank line
            }
            if record.len() != width {
                self.fail(
                    line,
                    None,
                    format!("has {} fields where the header has {width}", record.len()),
                );
                return;
            }
            self.rows += 1;
            let raw_day = &record[columns.day];
            let day = match raw_day.get(..10) {
                Some(prefix) if prefix == last_day.0 && valid_time(&raw_day[10..]) => last_day.1,
                _ => match parse_day(raw_day) {
                    Some(d) => {
                        if let Ok(prefix) = raw_day[..10].try_into() {
                            last_day = (prefix, d);
                        }
                        d
                    }
                    None => {
                        self.fail_column(
                            line,
                            columns.day,
                            raw_day,
                            "is not a UTC date or timestamp (YYYY-MM-DD[ HH:MM:SS][Z])",
                        );
                        return;
                    }
                },
            };
            let raw_cost = &record[columns.cost];
            let cost = match parse_number(raw_cost) {
                Some(c) => c,
                None => {
                    self.fail_column(line, columns.cost, raw_cost, "is not a number");
                    return;
                }
            };
            if window.is_some_and(|w| day < w.from || day > w.to) {
                continue;
            }
            key.clear();
            for &c in &columns.kept {
                let v = null_if_empty(&record[c]).unwrap_or(b"");
                key.extend_from_slice(&(v.len() as u32).to_le_bytes());
                key.extend_from_slice(v);
            }
            let combo = match self.index.get(key.as_slice()) {
                Some(&i) => i,
                None => {
                    let i = self.combos.len() as u32;
                    self.index.insert(key.clone(), i);
                    self.combos.push((key.clone(), line));
                    i
                }
            };
            *self.sums.entry((day, combo)).or_default() += cost;
        }
        self.block_lines.push((index, reader.position().line() - 1));
    }

    fn fail(&mut self, line: u64, column: Option<usize>, problem: String) {
        if self.error.as_ref().is_none_or(|(l, _)| line < *l) {
            self.error = Some((line, (column, problem)));
        }
    }

    fn fail_column(&mut self, line: u64, column: usize, raw: &[u8], problem: &str) {
        let shown = String::from_utf8_lossy(raw);
        let problem = if raw.is_empty() {
            "is empty".to_string()
        } else {
            format!("{shown:?} {problem}")
        };
        self.fail(line, Some(column), problem);
    }
}

/// Merges the workers' sums; the error on the earliest line wins.
fn merge(parts: Vec<Partial>) -> Result<Rollup, (u64, Problem)> {
    let lines = Lines::new(&parts);
    if let Some((at, problem)) = parts
        .iter()
        .filter_map(|p| p.error.as_ref())
        .min_by_key(|(at, _)| *at)
    {
        return Err((lines.line(*at), problem.clone()));
    }
    let mut rollup = Rollup::default();
    let mut global: HashMap<Vec<u8>, u32, RandomState> = HashMap::default();
    for part in parts {
        rollup.rows += part.rows;
        let mut map = Vec::with_capacity(part.combos.len());
        for (key, at) in part.combos {
            let line = lines.line(at);
            let id = match global.get(&key) {
                Some(&id) => {
                    let c = &mut rollup.combinations[id as usize];
                    c.first_line = c.first_line.min(line);
                    id
                }
                None => {
                    let id = rollup.combinations.len() as u32;
                    rollup.combinations.push(Combination {
                        values: decode_key(&key),
                        first_line: line,
                    });
                    global.insert(key, id);
                    id
                }
            };
            map.push(id);
        }
        for ((day, local), cost) in part.sums {
            *rollup.sums.entry((day, map[local as usize])).or_default() += cost;
        }
    }
    Ok(rollup)
}

fn decode_key(mut key: &[u8]) -> Vec<Option<String>> {
    let mut values = Vec::new();
    while key.len() >= 4 {
        let len = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize;
        let v = &key[4..4 + len];
        values.push((!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned()));
        key = &key[4 + len..];
    }
    values
}

/// `NULL` and empty cells are both "no value" in billing exports.
fn null_if_empty(v: &[u8]) -> Option<&[u8]> {
    (!v.is_empty() && v != b"NULL" && v != b"null").then_some(v)
}

fn parse_number(raw: &[u8]) -> Option<f64> {
    let v = null_if_empty(raw)?;
    let n: f64 = std::str::from_utf8(v).ok()?.trim().parse().ok()?;
    n.is_finite().then_some(n)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date with an optional UTC time.
fn parse_day(raw: &[u8]) -> Option<i32> {
    let date = raw.get(..10)?;
    if !valid_time(&raw[10..]) || date[4] != b'-' || date[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        date[r].iter().try_fold(0u32, |n, &b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    let d = chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// The part after the date: nothing, or ` HH:MM[:SS[.fff]]` / `THH:MM...`, then optionally a
/// UTC marker (`Z`, `+00:00`, `+0000`). A time in another offset would put cost on the wrong day.
fn valid_time(rest: &[u8]) -> bool {
    if rest.is_empty() {
        return true;
    }
    let rest = match rest.strip_suffix(b"Z") {
        Some(r) => r,
        None => ["+00:00", "+0000", "-00:00"]
            .iter()
            .find_map(|s| rest.strip_suffix(s.as_bytes()))
            .unwrap_or(rest),
    };
    if rest.is_empty() {
        return true;
    }
    let (sep, time) = (rest[0], &rest[1..]);
    if sep != b' ' && sep != b'T' {
        return false;
    }
    let shape = |t: &[u8]| t.len() >= 5 && t[2] == b':' && t[..2].iter().all(u8::is_ascii_digit);
    if !shape(time) || !time[3..5].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let more = &time[5..];
    more.is_empty()
        || (more.len() >= 3
            && more[0] == b':'
            && more[1..3].iter().all(u8::is_ascii_digit)
            && (more.len() == 3
                || (more[3] == b'.' && more.len() > 4 && more[4..].iter().all(u8::is_ascii_digit))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_in_utc_are_accepted() {
        let d = |s: &str| parse_day(s.as_bytes());
        assert_eq!(d("1970-01-02"), Some(1));
        assert_eq!(d("2024-09-01 00:00:00"), d("2024-09-01"));
        assert_eq!(d("2024-09-01T23:59:59Z"), d("2024-09-01"));
        assert_eq!(d("2023-11-01T00:00:00.000Z"), d("2023-11-01"));
        assert_eq!(d("2024-09-01T10:00:00+00:00"), d("2024-09-01"));
        assert_eq!(d("2024-09-01T10:00"), d("2024-09-01"));
        for bad in [
            "2024-09-01T10:00:00+02:00",
            "2024-13-01",
            "9/2/2023",
            "2024-09-01X",
            "",
        ] {
            assert_eq!(d(bad), None, "{bad}");
        }
    }

    /// A CSV of `rows` rows over ten days and 3 services; `bad` replaces one line's cost.
    fn write_csv(rows: usize, bad: Option<usize>) -> tempfile::NamedTempFile {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "ChargePeriodStart,Cost,Service").unwrap();
        for i in 0..rows {
            let line = i + 2;
            let cost = if Some(line) == bad {
                "n/a".to_string()
            } else {
                format!("{}.25", i % 7)
            };
            // Service "late" first appears on line 30,001.
            let service = if line >= 30_001 && line % 2 == 1 {
                "late"
            } else {
                ["a", "b"][i % 2]
            };
            writeln!(f, "2024-01-{:02} 10:00:00,{cost},{service}", 1 + i % 10).unwrap();
        }
        f
    }

    fn columns(h: &Header) -> Result<Columns, IngestError> {
        Ok(Columns {
            day: h.find(&["ChargePeriodStart"]).unwrap(),
            cost: h.find(&["Cost"]).unwrap(),
            kept: vec![h.find(&["Service"]).unwrap()],
        })
    }

    #[test]
    fn many_small_blocks_sum_like_one_and_number_lines_exactly() {
        let f = write_csv(50_000, None);
        let whole = sum_csv(f.path(), columns, None).unwrap();
        let blocks = sum_csv_in_blocks(f.path(), columns, None, 4096).unwrap();
        assert_eq!(whole.rows, 50_000);
        assert_eq!(blocks.rows, 50_000);
        let total = |r: &Rollup| r.sums.values().sum::<f64>();
        assert!((total(&whole) - total(&blocks)).abs() < 1e-6);
        let late = |r: &Rollup| {
            r.combinations
                .iter()
                .find(|c| c.values[0].as_deref() == Some("late"))
                .map(|c| c.first_line)
        };
        assert_eq!(late(&whole), Some(30_001));
        assert_eq!(late(&blocks), Some(30_001));

        let f = write_csv(50_000, Some(41_234));
        for block in [4096, BLOCK] {
            let err = sum_csv_in_blocks(f.path(), columns, None, block)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("line 41234, column Cost: \"n/a\" is not a number"),
                "{err}"
            );
        }
    }

    #[test]
    fn numbers_refuse_null_and_text() {
        assert_eq!(parse_number(b"1.5e-3"), Some(0.0015));
        assert_eq!(parse_number(b"-2"), Some(-2.0));
        assert_eq!(parse_number(b"NULL"), None);
        assert_eq!(parse_number(b"abc"), None);
        assert_eq!(parse_number(b"inf"), None);
    }
}
