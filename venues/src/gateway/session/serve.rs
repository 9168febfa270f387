//! The gateway thread's loop: commands from the strategy's ring, sockets and timers, reports back.
//! Commands are taken between the messages the sockets deliver, not only between polls: a batch of
//! answers and user-data updates must not hold back the next order (bench/README.md measured the
//! `cmd_ring` stage's tail growing with the order rate when they did).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use qalpha_engine::clock::now_ns;
use qalpha_engine::journal::JournalEntry;
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::ring::{Consumer, Producer};
use qalpha_engine::runtime::WaitMode;

use super::{Gateway, GatewayStats};

impl Gateway {
    /// Serves commands until the ring is closed and empty (or `stop`), pushing reports; returns the
    /// counters.
    pub fn run(
        mut self,
        cmds: &mut Consumer<OrderCommand>,
        reports: &mut Producer<ExecReport>,
        wait: WaitMode,
        stop: &AtomicBool,
    ) -> GatewayStats {
        let mut out = Vec::with_capacity(16);
        let mut spins = 0u32;
        let mut turns = 0u64;
        let metrics = self.cfg.metrics.clone();
        loop {
            turns += 1;
            let mut busy = self.take_commands(cmds, &mut out);
            if cmds.is_abandoned() && self.pending.is_empty() {
                break;
            }
            if stop.load(Ordering::Relaxed) && self.pending.is_empty() {
                break;
            }
            // Never block in the poll: commands arrive on the ring, which the poll cannot see.
            // Idle waiting is the thread's wait mode (park: spin briefly, then 50 µs naps).
            busy |= self.poll_serving(Some(Duration::ZERO), &mut out, Some(cmds));
            let idle = out.is_empty() && !busy;
            if let Some(m) = &metrics {
                for r in &out {
                    m.on_report(r.kind);
                }
                if idle || turns.is_multiple_of(1024) {
                    self.publish_metrics(m, cmds.slots());
                }
            }
            if idle {
                wait.idle(&mut spins);
            } else {
                spins = 0;
            }
            for r in out.drain(..) {
                if let Some(j) = self.journal.as_mut() {
                    j.push(JournalEntry::Report(r));
                }
                reports.push(r);
            }
        }
        self.finish()
    }

    /// Submits every command waiting on the ring (journaled first); whether there was any.
    pub(super) fn take_commands(
        &mut self,
        cmds: &mut Consumer<OrderCommand>,
        out: &mut Vec<ExecReport>,
    ) -> bool {
        let mut any = false;
        while let Ok(cmd) = cmds.pop() {
            any = true;
            if let Some(j) = self.journal.as_mut() {
                j.push(JournalEntry::Command {
                    at_ns: now_ns(),
                    cmd,
                });
            }
            self.submit(&cmd, out);
        }
        any
    }

    /// Drives the sockets and timers once (`timeout` for the poll), taking the commands on `cmds`
    /// between the messages read; whether any command was taken.
    pub fn poll_serving(
        &mut self,
        timeout: Option<Duration>,
        out: &mut Vec<ExecReport>,
        mut cmds: Option<&mut Consumer<OrderCommand>>,
    ) -> bool {
        out.append(&mut self.backlog);
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.note_transport(&format!("poll: {e}"));
            }
        }
        let mut took = self.drive_order_ws(out, cmds.as_deref_mut());
        took |= self.drive_private(out, cmds);
        self.timers(out);
        took
    }
}
