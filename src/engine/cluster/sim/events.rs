//! The time-ordered queue of the simulation's events; nothing else knows how events are ordered.
//!
//! Three kinds of source feed it, merged here:
//! - the next arrival (one time, set by the model from the workload);
//! - each station's next own event (a service completion or a client's deadline), kept in a
//!   tournament tree indexed by station slot, so a station whose state changes re-times its one
//!   entry in O(log n) and the earliest is known in O(1): processor sharing changes every
//!   completion time of a pod whenever a request starts or ends there, and a heap of individual
//!   completions would have to be rebuilt each time;
//! - everything else (pod transitions, metrics samples, HPA syncs, stress ends), which is rare:
//!   a binary heap of (time, sequence, event), the sequence keeping events of equal time in the
//!   order they were scheduled.
//!
//! At equal times a station's event comes before an arrival, and both before scheduled events.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Events scheduled at a time, rarer than arrivals and completions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduled {
    /// A pending pod is scheduled and its container starts.
    PodRunning { pod: u64 },
    /// A pod's readiness probe passes (`epoch` guards against restarts in between).
    PodReady { pod: u64, epoch: u32 },
    /// A deleted pod leaves the Service's endpoints.
    EndpointRemove { pod: u64 },
    /// A deleted pod's grace period ends: what is left in it fails.
    PodKill { pod: u64 },
    /// A CPU stressor reaches its deadline.
    StressEnd { id: u64 },
    /// Record each pod's CPU counter (the start of a future metrics window).
    Snapshot,
    /// metrics-server takes its samples.
    MetricsSample,
    /// The HPA controller syncs.
    HpaSync,
}

/// What comes next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// The station in this slot has its next own event.
    Station(usize),
    Arrival,
    Scheduled(Scheduled),
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    t: f64,
    seq: u64,
    ev: Scheduled,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed: the heap's top is the earliest (then the first scheduled).
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// Each station slot's next event time and the earliest of them. Few slots (a deployment's
/// pods): the earliest is cached and found again by a scan only when the station holding it
/// moves later (about once per request), which beats a tree's walk for up to
/// [`TREE_FROM`] slots; more use a tournament tree (O(log n) per change).
#[derive(Debug, Clone)]
struct MinTree {
    time: Vec<f64>,
    /// Scan mode: the cached earliest slot, and whether it must be found again.
    best: usize,
    dirty: bool,
    /// Tree mode: inner nodes 1..leaves hold the winning slot (node `leaves + i` is leaf `i`).
    win: Vec<u32>,
    leaves: usize,
}

/// Slots from which the tournament tree is used.
const TREE_FROM: usize = 64;

impl MinTree {
    fn new(slots: usize) -> Self {
        let mut t = Self { time: vec![f64::INFINITY; slots.max(1)], best: 0, dirty: false, win: Vec::new(), leaves: 0 };
        t.rebuild();
        t
    }

    fn rebuild(&mut self) {
        if self.time.len() < TREE_FROM {
            self.win.clear();
            self.leaves = 0;
            self.dirty = true;
            return;
        }
        self.leaves = self.time.len().next_power_of_two();
        self.time.resize(self.leaves, f64::INFINITY);
        self.win = vec![0; self.leaves];
        for node in (1..self.leaves).rev() {
            self.win[node] = self.better(self.child(2 * node), self.child(2 * node + 1));
        }
    }

    #[inline]
    fn child(&self, node: usize) -> u32 {
        if node >= self.leaves { (node - self.leaves) as u32 } else { self.win[node] }
    }

    #[inline]
    fn better(&self, a: u32, b: u32) -> u32 {
        if self.time[b as usize] < self.time[a as usize] { b } else { a }
    }

    #[inline]
    fn set(&mut self, slot: usize, t: f64) {
        if slot >= self.time.len() {
            self.time.resize(slot + 1, f64::INFINITY);
            self.time[slot] = t;
            self.rebuild();
            return;
        }
        self.time[slot] = t;
        if self.leaves == 0 {
            if t < self.time[self.best] {
                self.best = slot;
            } else if slot == self.best {
                self.dirty = true;
            }
            return;
        }
        let mut node = (self.leaves + slot) / 2;
        while node >= 1 {
            let w = self.better(self.child(2 * node), self.child(2 * node + 1));
            if self.win[node] == w && w as usize != slot {
                // Nothing above changes unless the winner was this slot.
                break;
            }
            self.win[node] = w;
            node /= 2;
        }
    }

    #[inline]
    fn min(&mut self) -> (f64, usize) {
        if self.leaves > 0 {
            let s = self.win[1] as usize;
            return (self.time[s], s);
        }
        if self.dirty {
            let mut best = 0;
            for (i, t) in self.time.iter().enumerate() {
                if *t < self.time[best] {
                    best = i;
                }
            }
            self.best = best;
            self.dirty = false;
        }
        (self.time[self.best], self.best)
    }
}

#[derive(Debug, Clone)]
pub struct EventQueue {
    heap: BinaryHeap<Entry>,
    seq: u64,
    stations: MinTree,
    arrival: f64,
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl EventQueue {
    pub fn new() -> Self {
        Self { heap: BinaryHeap::new(), seq: 0, stations: MinTree::new(16), arrival: f64::INFINITY }
    }

    pub fn schedule(&mut self, t: f64, ev: Scheduled) {
        self.seq += 1;
        self.heap.push(Entry { t, seq: self.seq, ev });
    }

    /// Station `slot`'s next own event is at `t` (infinite: none).
    #[inline]
    pub fn set_station(&mut self, slot: usize, t: f64) {
        self.stations.set(slot, t);
    }

    /// The next arrival is at `t` (infinite: none).
    #[inline]
    pub fn set_arrival(&mut self, t: f64) {
        self.arrival = t;
    }

    /// The earliest event at or before `until`, taken out of the queue (a station's entry and
    /// the arrival stay until their owner sets them again).
    #[inline]
    pub fn pop_until(&mut self, until: f64) -> Option<(f64, Next)> {
        let (ts, slot) = self.stations.min();
        let ta = self.arrival;
        let th = self.heap.peek().map_or(f64::INFINITY, |e| e.t);
        let until = until.min(f64::MAX);
        if ts <= ta && ts <= th {
            return (ts <= until).then_some((ts, Next::Station(slot)));
        }
        if ta <= th {
            return (ta <= until).then_some((ta, Next::Arrival));
        }
        if th <= until {
            return self.heap.pop().map(|e| (e.t, Next::Scheduled(e.ev)));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_come_in_time_order_with_ties_broken_by_kind_then_sequence() {
        let mut q = EventQueue::new();
        q.schedule(5.0, Scheduled::HpaSync);
        q.schedule(5.0, Scheduled::MetricsSample);
        q.schedule(1.0, Scheduled::Snapshot);
        q.set_station(3, 5.0);
        q.set_arrival(5.0);
        assert_eq!(q.pop_until(10.0), Some((1.0, Next::Scheduled(Scheduled::Snapshot))));
        assert_eq!(q.pop_until(10.0), Some((5.0, Next::Station(3))));
        q.set_station(3, f64::INFINITY);
        assert_eq!(q.pop_until(10.0), Some((5.0, Next::Arrival)));
        q.set_arrival(f64::INFINITY);
        assert_eq!(q.pop_until(4.0), None, "nothing before 4");
        assert_eq!(q.pop_until(10.0), Some((5.0, Next::Scheduled(Scheduled::HpaSync))));
        assert_eq!(q.pop_until(10.0), Some((5.0, Next::Scheduled(Scheduled::MetricsSample))));
        assert_eq!(q.pop_until(f64::INFINITY), None);
    }

    #[test]
    fn the_tree_finds_the_earliest_station_as_times_change_and_grows() {
        for n in [10, 40, 200] {
            the_earliest_is_found(n);
        }
    }

    fn the_earliest_is_found(n: usize) {
        let mut q = EventQueue::new();
        let mut times = vec![f64::INFINITY; n];
        let mut rng = crate::engine::rng::Rng::new(4);
        for _ in 0..5000 {
            let slot = rng.below(n);
            let t = if rng.uniform() < 0.2 { f64::INFINITY } else { rng.uniform() * 100.0 };
            times[slot] = t;
            q.set_station(slot, t);
            let want = times.iter().copied().fold(f64::INFINITY, f64::min);
            let (got, _) = q.stations.min();
            assert_eq!(got, want);
        }
    }
}
