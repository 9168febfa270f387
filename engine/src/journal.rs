//! The order journal's hot side: fixed-size entries the gateway thread pushes into an SPSC ring
//! (drop-newest: the gateway never waits for the disk; drops are counted in its stats) and the
//! journal writer thread (`qalpha_tools::order_journal`) turns into append-only JSON lines.

use crate::order::{ExecReport, OrderCommand};

/// One journal entry: a command as the gateway took it, or a report as it handed it on.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum JournalEntry {
    Command { at_ns: u64, cmd: OrderCommand },
    Report(ExecReport),
}

/// The producer half the gateway holds.
pub type JournalTx = crate::ring::Producer<JournalEntry>;
