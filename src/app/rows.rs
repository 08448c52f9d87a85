//! What the dashboard holds of the record, for the `e` export: every row of the retention,
//! encoded as the CSV writes it ([`encode_row`]) in chunks, so 24 hours of one-second ticks
//! stay in tens of megabytes. Full chunks are shared (`Arc`), so an export takes a snapshot
//! without copying and writes it off the UI task.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::engine::record::{Row, encode_row};

const CHUNK_ROWS: usize = 256;

/// Encoded rows, oldest first.
#[derive(Debug, Clone, Default)]
pub struct RowChunk {
    pub first_t: f64,
    pub last_t: f64,
    pub rows: usize,
    pub bytes: Vec<u8>,
}

impl RowChunk {
    fn push(&mut self, t: f64, line: &[u8]) {
        if self.rows == 0 {
            self.first_t = t;
        }
        self.last_t = t;
        self.rows += 1;
        self.bytes.extend_from_slice(line);
    }
}

/// The rows of the retention window.
#[derive(Debug, Clone)]
pub struct RowArchive {
    retention_s: f64,
    full: VecDeque<Arc<RowChunk>>,
    open: RowChunk,
}

/// An export's input: the chunks at the time `e` was confirmed.
#[derive(Debug, Clone, Default)]
pub struct RowSnapshot {
    pub chunks: Vec<Arc<RowChunk>>,
}

impl RowSnapshot {
    pub fn rows(&self) -> usize {
        self.chunks.iter().map(|c| c.rows).sum()
    }
}

impl RowArchive {
    pub fn new(retention_s: f64) -> Self {
        Self { retention_s, full: VecDeque::new(), open: RowChunk::default() }
    }

    pub fn push(&mut self, row: &Row) {
        self.open.push(row.t, &encode_row(row));
        if self.open.rows >= CHUNK_ROWS {
            let mut done = std::mem::take(&mut self.open);
            done.bytes.shrink_to_fit();
            self.full.push_back(Arc::new(done));
        }
        // Whole chunks leave once their newest row is older than the retention.
        let limit = row.t - self.retention_s;
        while self.full.front().is_some_and(|c| c.last_t < limit) {
            self.full.pop_front();
        }
    }

    pub fn rows(&self) -> usize {
        self.full.iter().map(|c| c.rows).sum::<usize>() + self.open.rows
    }

    pub fn snapshot(&self) -> RowSnapshot {
        let mut chunks: Vec<Arc<RowChunk>> = self.full.iter().cloned().collect();
        if self.open.rows > 0 {
            chunks.push(Arc::new(self.open.clone()));
        }
        RowSnapshot { chunks }
    }

    /// Bytes held (for the memory benchmark's report).
    pub fn heap_bytes(&self) -> usize {
        self.full.iter().map(|c| c.bytes.capacity()).sum::<usize>() + self.open.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_retention_in_whole_chunks() {
        let mut a = RowArchive::new(1_000.0);
        for i in 0..3_000 {
            a.push(&Row { t: i as f64, current_replicas: Some(i), ..Row::default() });
        }
        let snap = a.snapshot();
        let first = snap.chunks.first().expect("chunks").first_t;
        assert!(first <= 2_000.0 && first > 2_000.0 - CHUNK_ROWS as f64, "oldest kept {first}");
        assert_eq!(snap.rows(), a.rows());
        assert_eq!(snap.chunks.last().map(|c| c.last_t), Some(2_999.0));
    }
}
