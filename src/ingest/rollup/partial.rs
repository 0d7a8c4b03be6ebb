//! What each worker sums from its blocks, and the merge of the workers' sums into one rollup
//! with exact line numbers.

use super::parse::{null_if_empty, parse_day, parse_number, valid_time};
use super::*;

/// The column at fault (`None` for the row as a whole) and what is wrong, for an error raised
/// while summing; the column is an index so the hot loop does no name lookups.
pub(super) type Problem = (Option<usize>, String);

/// What one worker summed.
#[derive(Default)]
pub(super) struct Partial {
    /// Raw kept values per combination → local combination index.
    pub(super) index: HashMap<Vec<u8>, u32, RandomState>,
    pub(super) combos: Vec<(Vec<u8>, u64)>,
    pub(super) sums: HashMap<(i32, u32), f64, RandomState>,
    pub(super) rows: u64,
    /// Lines in each block this worker parsed whole, by block index.
    pub(super) block_lines: Vec<(u32, u64)>,
    /// The first error in this worker's earliest failing block, at its [`place`].
    pub(super) error: Option<(u64, Problem)>,
}

/// Where a line is before line numbers are known: the block's index in the high half and the
/// line within the block (from 1) in the low half, so places order like the file's lines.
pub(super) fn place(block: u32, line_in_block: u64) -> u64 {
    (u64::from(block) << 32) | line_in_block
}

/// Turns places into line numbers (the header is line 1) from the blocks' line counts.
pub(super) struct Lines {
    /// Blocks parsed whole, in file order: (index, lines in the block).
    pub(super) blocks: Vec<(u32, u64)>,
    /// Lines before each of `blocks`, the header included.
    pub(super) before: Vec<u64>,
}

impl Lines {
    pub(super) fn new(parts: &[Partial]) -> Lines {
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
    pub(super) fn line(&self, place: u64) -> u64 {
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
    pub(super) fn add_block(
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
            let Some(day) = self.day(&record[columns.day], &mut last_day, line, columns.day) else {
                return;
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
            let combo = self.combination(&record, &columns.kept, &mut key, line);
            *self.sums.entry((day, combo)).or_default() += cost;
        }
        self.block_lines.push((index, reader.position().line() - 1));
    }

    /// The day of a row; `last` remembers the newest date prefix, so rows of one day skip the
    /// date parse. `None` after recording the failure.
    #[inline]
    pub(super) fn day(
        &mut self,
        raw_day: &[u8],
        last: &mut ([u8; 10], i32),
        line: u64,
        column: usize,
    ) -> Option<i32> {
        if let Some(prefix) = raw_day.get(..10)
            && prefix == last.0
            && valid_time(&raw_day[10..])
        {
            return Some(last.1);
        }
        match parse_day(raw_day) {
            Some(d) => {
                if let Ok(prefix) = raw_day[..10].try_into() {
                    *last = (prefix, d);
                }
                Some(d)
            }
            None => {
                self.fail_column(
                    line,
                    column,
                    raw_day,
                    "is not a UTC date or timestamp (YYYY-MM-DD[ HH:MM:SS][Z])",
                );
                None
            }
        }
    }

    /// The local index of the row's combination of kept values, added on first sight with the
    /// line it was first seen on.
    #[inline]
    pub(super) fn combination(
        &mut self,
        record: &csv::ByteRecord,
        kept: &[usize],
        key: &mut Vec<u8>,
        line: u64,
    ) -> u32 {
        key.clear();
        for &c in kept {
            let v = null_if_empty(&record[c]).unwrap_or(b"");
            key.extend_from_slice(&(v.len() as u32).to_le_bytes());
            key.extend_from_slice(v);
        }
        if let Some(&i) = self.index.get(key.as_slice()) {
            return i;
        }
        let i = self.combos.len() as u32;
        self.index.insert(key.clone(), i);
        self.combos.push((key.clone(), line));
        i
    }

    pub(super) fn fail(&mut self, line: u64, column: Option<usize>, problem: String) {
        if self.error.as_ref().is_none_or(|(l, _)| line < *l) {
            self.error = Some((line, (column, problem)));
        }
    }

    pub(super) fn fail_column(&mut self, line: u64, column: usize, raw: &[u8], problem: &str) {
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
pub(super) fn merge(parts: Vec<Partial>) -> Result<Rollup, (u64, Problem)> {
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

pub(super) fn decode_key(mut key: &[u8]) -> Vec<Option<String>> {
    let mut values = Vec::new();
    while key.len() >= 4 {
        let len = u32::from_le_bytes([key[0], key[1], key[2], key[3]]) as usize;
        let v = &key[4..4 + len];
        values.push((!v.is_empty()).then(|| String::from_utf8_lossy(v).into_owned()));
        key = &key[4 + len..];
    }
    values
}
