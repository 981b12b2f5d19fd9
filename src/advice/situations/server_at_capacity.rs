//! `server_at_capacity` and `server_at_capacity_cpu`: a server whose clients queued at its listener while every worker was busy.
//!
//! ## What it detects
//! A TCP listener of the tree with connections waiting in its accept queue in at least half
//! of the samples, one or more on average (`analysis::demand`): the workers could not accept
//! them as fast as they came. `server_at_capacity` when the threads that served (those of the
//! listener's processes that did work) spent most of their time in a wait (a handler's sleep,
//! a database call, a lock); `server_at_capacity_cpu` when they mostly computed and the
//! program wanted at least 85 % of the cores. A CPU-bound program on every core is
//! `already_parallel` (tried first); one that computes on fewer cores than there are is left
//! to the CPU situations (more worker processes).
//!
//! ## Why it matters
//! A synchronous server at capacity looks idle from its threads: each worker sleeps or waits
//! in its handler, the master waits for its workers, and the verdict of their time alone is
//! `idle` ("nothing is limited"). Its clients say otherwise: they wait in the accept queue,
//! and the server's throughput is its workers divided by the time a request takes. The
//! verdict is `io-bound` then (the serving threads' waits are the work, see
//! `findings::served_waits_are_work`), never `idle`.
//!
//! ## Example
//! gunicorn with 2 sync workers whose handler sleeps 20 ms, under 20 concurrent clients:
//! about 100 requests a second at most, the rest queued at the listener.
//!
//! ## Instead
//! More requests in service at once: more worker processes (gunicorn -w), threads per worker
//! (gunicorn --threads), an async worker, a bigger thread pool (Tomcat's maxThreads), or a
//! faster handler. When the workers compute on every core, the CPU is the limit: faster code
//! or more machines, not another concurrency model.

use super::already_parallel::{AlreadyParallel, ALL_CORES};
use super::{pct, AdviceInput, Situation, Sizing};
use crate::advice::expected::{Band, Estimate};
use crate::analysis::code::CodeState;
use crate::analysis::demand::{ListenerDemand, Serving};

pub struct ServerAtCapacity {
    /// The serving threads mostly computed on every core (the CPU is the limit).
    pub cpu: bool,
}

impl ServerAtCapacity {
    pub const WAITING: ServerAtCapacity = ServerAtCapacity { cpu: false };
    pub const CPU: ServerAtCapacity = ServerAtCapacity { cpu: true };

    /// The listener clients waited at most, and the serving threads.
    fn queue<'a>(input: &AdviceInput<'a>) -> Option<(&'a ListenerDemand, Option<&'a Serving>)> {
        let demand = input.demand.filter(|d| d.clients_waited)?;
        Some((demand.most_queued()?, demand.serving.as_ref()))
    }

    /// The requests in service at once now: the serving threads (one at least).
    fn in_service(serving: Option<&Serving>) -> f64 {
        serving.map_or(1.0, |s| s.threads.max(1) as f64)
    }
}

impl Situation for ServerAtCapacity {
    fn name(&self) -> &'static str {
        if self.cpu {
            "server_at_capacity_cpu"
        } else {
            "server_at_capacity"
        }
    }

    fn applies(&self, input: &AdviceInput) -> bool {
        let Some((_, serving)) = Self::queue(input) else {
            return false;
        };
        if AlreadyParallel.applies(input) {
            return false;
        }
        let computing = serving.is_some_and(|s| s.state == CodeState::Cpu);
        let cores_full = input.avg_cores_wanted >= ALL_CORES * input.cores;
        if self.cpu {
            computing && cores_full
        } else {
            !computing
        }
    }

    fn measured(&self, input: &AdviceInput) -> String {
        let Some((listener, serving)) = Self::queue(input) else {
            return String::new();
        };
        let workers = match serving {
            Some(s) if s.processes > 1 => format!(
                "the {} serving threads (in {} processes)",
                s.threads, s.processes
            ),
            Some(s) => format!("the {} serving threads", s.threads),
            None => "the workers".to_string(),
        };
        let doing = serving.map_or_else(String::new, |s| {
            let state = match s.state {
                CodeState::Cpu => "computing".to_string(),
                other => format!("in {}", other.name()),
            };
            let place = input
                .hotspots(s.state)
                .first()
                .map_or_else(String::new, |h| format!(" at {}", h.place()));
            format!(" {} of their time {state}{place}", pct(s.share))
        });
        let limit = if self.cpu {
            format!(
                "they compute on {:.2} of the {:.0} cores: the CPU is the limit",
                input.avg_cores, input.cores
            )
        } else {
            format!(
                "the server is at its capacity of about {:.0} requests at a time (its workers) \
                 divided by the time each takes",
                Self::in_service(serving)
            )
        };
        format!(
            "Clients waited: on average {:.1} connections (at most {}) were queued at the \
             listener {} in {} of {} samples, while {workers} were busy,{doing}; {limit}.",
            listener.mean_queued,
            listener.max_queued,
            listener.address,
            pct(listener.queued_share),
            listener.samples
        )
    }

    fn change(&self) -> &'static str {
        if self.cpu {
            "faster handlers, or more machines"
        } else {
            "more requests in service at once (more workers, threads per worker, or an async worker)"
        }
    }

    fn measures_capacity(&self) -> bool {
        true
    }

    fn fallback(&self) -> &'static str {
        if self.cpu {
            "already_parallel"
        } else {
            "io_network"
        }
    }

    /// Served now: the requests in service (the serving threads); wanting service: those
    /// and the ones queued. Serving both at once gives (served + mean queued) / served more
    /// capacity, up to (served + most queued) / served; half that gain at the low end, for
    /// what the handlers wait on (a database, a lock) slowing under more requests at once.
    fn expected(&self, input: &AdviceInput, _sizing: &Sizing) -> Estimate {
        let Some((listener, serving)) = Self::queue(input) else {
            return Estimate::Unavailable("no queue was measured".into());
        };
        if self.cpu {
            return Estimate::band(
                Band::unchanged().widened_for(input),
                format!(
                    "the serving threads already compute on {:.2} of the {:.0} cores: more \
                     workers share the same cores",
                    input.avg_cores, input.cores
                ),
            );
        }
        let now = Self::in_service(serving);
        let queued = listener.mean_queued;
        let point = (now + queued) / now;
        let high = (now + f64::from(listener.max_queued)) / now;
        let low = 1.0 + 0.5 * queued / now;
        Estimate::band(
            Band::new(point, low, high).widened_for(input),
            format!(
                "{now:.0} requests in service now and {queued:.1} queued on average (at most \
                 {}): serving those too gives the point, the most queued the high end, half \
                 the gain the low end (what the handlers wait on may slow under more at once); \
                 one run cannot tell how much more the clients would send if served faster, \
                 nor whether what the handlers wait on keeps up",
                listener.max_queued
            ),
        )
    }
}
