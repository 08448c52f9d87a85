//! A pod as a queueing station: `concurrency` workers, a FIFO of at most `queue_capacity` waiting
//! requests, and processor sharing under the CPU limit. Each busy worker and each stress worker
//! is a thread that wants one core; when they want more than the limit, the kernel's fair
//! scheduler gives each the same share, `limit / threads`. So a request's CPU work takes
//! `work / min(1, limit / threads)` of wall time while that many threads run, and CPU usage is
//! `min(limit, threads + idle)`: a consequence of the work, never an input.
//!
//! All busy workers progress at the same rate, so the station keeps one clock of attained
//! service per worker (`v`); a request that starts at `v0` with work `w` is done when `v`
//! reaches `v0 + w`. The in-service requests sit in a heap by that finishing point, and the next
//! completion is `(min − v) / rate` away whatever the rate does in between.
//!
//! Requests live in a [`Slab`]; stations hold handles (slot and generation), so a request that
//! was cancelled or failed elsewhere is recognised as gone when its handle comes up.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

/// A request's place in the slab; `epoch` tells a live handle from one whose request is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle {
    pub slot: u32,
    pub epoch: u32,
}

/// The request came through the HTTP endpoint (a real client waits for it).
pub const HTTP: u8 = 1;
/// The client gave up (timed out); the server may still be working on it.
pub const GONE: u8 = 2;
/// In service (else waiting).
pub const IN_SERVICE: u8 = 4;

#[derive(Debug, Clone, Copy)]
pub struct Req {
    pub arrival: f64,
    /// CPU work, core-seconds.
    pub work: f64,
    /// The HTTP request's token (0 for modelled traffic).
    pub token: u64,
    epoch: u32,
    /// Where it is: 0 = the central queue, else the station's slot.
    pub place: u32,
    pub flags: u8,
}

/// The requests in the system.
#[derive(Debug, Clone, Default)]
pub struct Slab {
    reqs: Vec<Req>,
    free: Vec<u32>,
}

impl Slab {
    #[inline]
    pub fn alloc(&mut self, arrival: f64, work: f64, place: u32, flags: u8, token: u64) -> Handle {
        match self.free.pop() {
            Some(slot) => {
                let r = &mut self.reqs[slot as usize];
                let epoch = r.epoch;
                *r = Req { arrival, work, token, epoch, place, flags };
                Handle { slot, epoch }
            }
            None => {
                let slot = self.reqs.len() as u32;
                self.reqs.push(Req { arrival, work, token, epoch: 0, place, flags });
                Handle { slot, epoch: 0 }
            }
        }
    }

    #[inline]
    pub fn live(&self, h: Handle) -> bool {
        self.reqs[h.slot as usize].epoch == h.epoch
    }

    #[inline]
    pub fn get(&self, h: Handle) -> &Req {
        &self.reqs[h.slot as usize]
    }

    #[inline]
    pub fn get_mut(&mut self, h: Handle) -> &mut Req {
        &mut self.reqs[h.slot as usize]
    }

    /// The request is done with: its handles go stale.
    #[inline]
    pub fn release(&mut self, h: Handle) {
        let r = &mut self.reqs[h.slot as usize];
        r.epoch = r.epoch.wrapping_add(1);
        self.free.push(h.slot);
    }

    /// Requests alive now.
    pub fn len(&self) -> usize {
        self.reqs.len() - self.free.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An in-service request by its finishing point on the station's service clock.
#[derive(Debug, Clone, Copy)]
struct Finish {
    v: f64,
    h: Handle,
}

impl PartialEq for Finish {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Finish {}
impl PartialOrd for Finish {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Finish {
    fn cmp(&self, o: &Self) -> Ordering {
        self.v.total_cmp(&o.v).then(self.h.slot.cmp(&o.h.slot))
    }
}

/// What became of a request offered to a station.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Started,
    Queued,
    Full,
}

#[derive(Debug, Clone)]
pub struct Station {
    /// CPU limit, cores.
    pub limit: f64,
    pub concurrency: u32,
    /// Waiting room (0 with a central queue).
    pub capacity: u32,
    /// Idle usage, cores, while the container runs.
    idle: f64,
    running: bool,
    t: f64,
    v: f64,
    rate: f64,
    usage: f64,
    /// Core-seconds used (cAdvisor's counter).
    cpu: f64,
    pub busy: u32,
    pub stress: u32,
    pub waiting: u32,
    /// Requests routed here (for a per-pod request rate).
    pub arrivals: u64,
    heap: BinaryHeap<Reverse<Finish>>,
    queue: VecDeque<Handle>,
    /// Modelled requests that arrived here, in arrival order: the front has the earliest
    /// deadline (stale handles are skipped).
    pub order: VecDeque<Handle>,
    /// The next completion and the next deadline as last computed.
    pub next_done: f64,
    pub next_deadline: f64,
}

impl Station {
    pub fn new(limit_cores: f64, concurrency: u32, capacity: u32, idle_cores: f64, t: f64) -> Self {
        Self {
            limit: limit_cores,
            concurrency,
            capacity,
            idle: idle_cores,
            running: false,
            t,
            v: 0.0,
            rate: 0.0,
            usage: 0.0,
            cpu: 0.0,
            busy: 0,
            stress: 0,
            waiting: 0,
            arrivals: 0,
            heap: BinaryHeap::new(),
            queue: VecDeque::new(),
            order: VecDeque::new(),
            next_done: f64::INFINITY,
            next_deadline: f64::INFINITY,
        }
    }

    /// Bring the service clock and the CPU counter to `t`.
    #[inline]
    pub fn sync(&mut self, t: f64) {
        let dt = t - self.t;
        if dt > 0.0 {
            self.v += self.rate * dt;
            self.cpu += self.usage * dt;
            self.t = t;
        }
    }

    /// Recompute the per-thread rate and the usage after the threads changed (call after
    /// [`Station::sync`]).
    #[inline]
    pub fn retune(&mut self) {
        let threads = f64::from(self.busy + self.stress);
        self.rate = if threads > 0.0 { (self.limit / threads).min(1.0) } else { 0.0 };
        self.usage = if self.running { (threads + self.idle).min(self.limit) } else { 0.0 };
    }

    /// The container starts (idle usage from now) or stops.
    pub fn set_running(&mut self, t: f64, running: bool) {
        self.sync(t);
        self.running = running;
        self.retune();
    }

    pub fn set_stress(&mut self, t: f64, threads: u32) {
        self.sync(t);
        self.stress = threads;
        self.retune();
    }

    /// Core-seconds used by `t` (not before the last sync).
    pub fn cpu_at(&self, t: f64) -> f64 {
        self.cpu + self.usage * (t - self.t).max(0.0)
    }

    /// Usage now, cores.
    pub fn usage(&self) -> f64 {
        self.usage
    }

    /// Requests waiting or in service.
    #[inline]
    pub fn in_system(&self) -> u32 {
        self.busy + self.waiting
    }

    #[inline]
    pub fn has_free_worker(&self) -> bool {
        self.busy < self.concurrency
    }

    /// Start `h` on a free worker (the caller checked there is one; sync first).
    #[inline]
    pub fn start(&mut self, h: Handle, slab: &mut Slab, slot: u32) {
        let r = slab.get_mut(h);
        r.flags |= IN_SERVICE;
        r.place = slot;
        self.heap.push(Reverse(Finish { v: self.v + r.work, h }));
        self.busy += 1;
    }

    /// Offer `h`: a free worker, else the waiting room, else full (sync first, retune after).
    #[inline]
    pub fn admit(&mut self, h: Handle, slab: &mut Slab, slot: u32) -> Admit {
        if self.busy < self.concurrency {
            self.start(h, slab, slot);
            Admit::Started
        } else if self.waiting < self.capacity {
            self.queue.push_back(h);
            self.waiting += 1;
            Admit::Queued
        } else {
            Admit::Full
        }
    }

    /// Would a request be turned away here now?
    #[inline]
    pub fn is_full(&self) -> bool {
        self.busy >= self.concurrency && self.waiting >= self.capacity
    }

    /// The request whose service just ended (sync first).
    #[inline]
    pub fn pop_done(&mut self, slab: &Slab) -> Option<Handle> {
        while let Some(Reverse(f)) = self.heap.pop() {
            if slab.live(f.h) {
                self.busy -= 1;
                return Some(f.h);
            }
        }
        None
    }

    /// Start the next waiting request, if any (sync first, retune after).
    #[inline]
    pub fn start_waiting(&mut self, slab: &mut Slab, slot: u32) -> bool {
        while let Some(h) = self.queue.pop_front() {
            if slab.live(h) {
                self.waiting -= 1;
                self.start(h, slab, slot);
                return true;
            }
        }
        false
    }

    /// A waiting or in-service request here was cancelled (its handle is released by the
    /// caller afterwards; sync first, retune after).
    pub fn forget(&mut self, in_service: bool) {
        if in_service {
            self.busy -= 1;
        } else {
            self.waiting -= 1;
        }
    }

    /// When the next service completes (infinite when idle).
    #[inline]
    pub fn completion_time(&mut self, slab: &Slab) -> f64 {
        while let Some(Reverse(f)) = self.heap.peek() {
            if slab.live(f.h) {
                return self.t + ((f.v - self.v) / self.rate).max(0.0);
            }
            self.heap.pop();
        }
        f64::INFINITY
    }

    /// Every request here, the station emptied (a killed container).
    pub fn drain(&mut self, slab: &Slab) -> Vec<Handle> {
        let mut out: Vec<Handle> = self.heap.drain().map(|Reverse(f)| f.h).filter(|h| slab.live(*h)).collect();
        out.extend(self.queue.drain(..).filter(|h| slab.live(*h)));
        self.busy = 0;
        self.waiting = 0;
        self.order.clear();
        self.retune();
        out
    }
}

/// The earliest deadline among the modelled requests of an arrival-ordered list: stale handles
/// and requests whose client is already gone are dropped from its front.
#[inline]
pub fn front_deadline(order: &mut VecDeque<Handle>, slab: &Slab, timeout: f64) -> f64 {
    while let Some(h) = order.front() {
        if slab.live(*h) && slab.get(*h).flags & GONE == 0 {
            return slab.get(*h).arrival + timeout;
        }
        order.pop_front();
    }
    f64::INFINITY
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processor_sharing_under_the_limit_slows_requests() {
        let mut slab = Slab::default();
        // Half a core, one worker: a request of 10 ms of work takes 20 ms.
        let mut s = Station::new(0.5, 1, 10, 0.0, 0.0);
        s.set_running(0.0, true);
        let h = slab.alloc(0.0, 0.010, 1, 0, 0);
        assert_eq!(s.admit(h, &mut slab, 1), Admit::Started);
        s.retune();
        assert!((s.completion_time(&slab) - 0.020).abs() < 1e-12);
        // Two cores, four workers busy with 1 s each: each runs at half speed.
        let mut s = Station::new(2.0, 4, 0, 0.0, 0.0);
        s.set_running(0.0, true);
        for _ in 0..4 {
            let h = slab.alloc(0.0, 1.0, 1, 0, 0);
            s.admit(h, &mut slab, 1);
        }
        s.retune();
        assert!((s.completion_time(&slab) - 2.0).abs() < 1e-12);
        assert_eq!(s.usage(), 2.0);
        // A stressor joins at t = 1: five threads share two cores.
        s.set_stress(1.0, 1);
        assert!((s.completion_time(&slab) - (1.0 + 0.5 / 0.4)).abs() < 1e-12);
        let h = slab.alloc(0.0, 1.0, 1, 0, 0);
        assert_eq!(s.admit(h, &mut slab, 1), Admit::Full, "no waiting room");
    }

    #[test]
    fn fifo_waiting_and_stale_handles() {
        let mut slab = Slab::default();
        let mut s = Station::new(1.0, 1, 2, 0.0, 0.0);
        s.set_running(0.0, true);
        let hs: Vec<Handle> = (0..3).map(|i| slab.alloc(f64::from(i), 1.0, 1, 0, 0)).collect();
        for h in &hs {
            s.admit(*h, &mut slab, 1);
        }
        s.retune();
        assert_eq!((s.busy, s.waiting), (1, 2));
        // The second is cancelled while waiting.
        s.forget(false);
        slab.release(hs[1]);
        s.sync(1.0);
        let done = s.pop_done(&slab).expect("first done");
        assert_eq!(done, hs[0]);
        slab.release(done);
        assert!(s.start_waiting(&mut slab, 1), "the third starts");
        assert_eq!((s.busy, s.waiting), (1, 0));
        assert_eq!(slab.get(hs[2]).flags & IN_SERVICE, IN_SERVICE);
    }
}
