//! How the Service picks a pod for a request: random (kube-proxy's default), round robin, least
//! outstanding, or none at all with a central queue (the model hands requests to the first free
//! worker instead; see `model.rs`).

use crate::config::Routing;
use crate::engine::rng::Rng;

#[derive(Debug, Clone)]
pub struct Router {
    pub routing: Routing,
    rng: Rng,
    next: usize,
}

impl Router {
    pub fn new(routing: Routing, rng: Rng) -> Self {
        Self { routing, rng, next: 0 }
    }

    /// Pick one of `endpoints` (not empty); `load(i)` is the requests in endpoint `i`.
    #[inline]
    pub fn pick(&mut self, endpoints: &[usize], load: impl Fn(usize) -> u32) -> usize {
        let n = endpoints.len();
        match self.routing {
            Routing::Random => endpoints[self.rng.below(n)],
            Routing::RoundRobin => {
                self.next = (self.next + 1) % n;
                endpoints[self.next]
            }
            Routing::LeastOutstanding | Routing::CentralQueue => self.least(endpoints, load),
        }
    }

    /// The endpoint with the smallest `key`, ties going round (so equal pods share the work).
    #[inline]
    pub fn least(&mut self, endpoints: &[usize], key: impl Fn(usize) -> u32) -> usize {
        let n = endpoints.len();
        self.next = (self.next + 1) % n;
        let mut best = endpoints[self.next];
        let mut best_key = key(best);
        for k in 1..n {
            let s = endpoints[(self.next + k) % n];
            let v = key(s);
            if v < best_key {
                best = s;
                best_key = v;
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_spread_requests() {
        let eps = [3, 5, 9];
        let mut rr = Router::new(Routing::RoundRobin, Rng::new(1));
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&eps, |_| 0)).collect();
        assert_eq!(picks, vec![5, 9, 3, 5, 9, 3]);
        let mut lo = Router::new(Routing::LeastOutstanding, Rng::new(1));
        assert_eq!(lo.pick(&eps, |s| if s == 9 { 0 } else { 4 }), 9);
        let mut rnd = Router::new(Routing::Random, Rng::new(1));
        let mut counts = [0; 10];
        for _ in 0..30_000 {
            counts[rnd.pick(&eps, |_| 0)] += 1;
        }
        for s in eps {
            assert!((counts[s] as f64 / 10_000.0 - 1.0).abs() < 0.05, "{counts:?}");
        }
    }
}
