//! The order journal (`--journal FILE`): every order command the gateway took, every report it
//! handed on (acks, fills, cancels, rejects, expiries, amends) and the engine's system events
//! (start, stop and why, thread stalls, alerts' failures), as append-only JSON lines.
//!
//! The gateway pushes fixed-size entries ([`qalpha_engine::journal::JournalEntry`]) into an SPSC
//! ring; this module's writer thread — never a hot thread — formats and appends them, flushing
//! whenever the ring runs empty, and syncs the file to disk when it stops. System events come from
//! the cold side over a channel. The first line of a new file is a header
//! (`{"qalpha_journal":"orders","version":1}`) by which `qalpha journal` recognises it; a restart
//! appends to the same file.
//!
//! Prices and quantities are exact decimals (strings); times are the engine clock's (UTC) ms.

use std::fs::OpenOptions;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use crossbeam::channel::{Receiver, Sender};
use qalpha_engine::journal::{JournalEntry, JournalTx};
use qalpha_engine::order::{ExecKind, ExecReport, OrderAction, OrderCommand};
use qalpha_engine::ring::{ring, Consumer, FullPolicy};
use qalpha_engine::runtime::WaitMode;
use serde_json::{json, Value};

/// The header line's marker.
pub const HEADER_KEY: &str = "qalpha_journal";

/// The writer thread's handle.
pub struct OrderJournal {
    pub path: PathBuf,
    sys: Option<Sender<Value>>,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Result<u64>>>,
}

fn now_ms() -> u64 {
    qalpha_engine::clock::now_ns() / 1_000_000
}

impl OrderJournal {
    /// Opens (creates or appends to) `path` and starts the writer; the producer goes to the gateway.
    pub fn start(path: &Path) -> Result<(OrderJournal, JournalTx)> {
        let fresh = std::fs::metadata(path).map_or(true, |m| m.len() == 0);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("--journal {}: cannot open for appending", path.display()))?;
        let mut w = BufWriter::new(file);
        if fresh {
            writeln!(w, "{}", json!({HEADER_KEY: "orders", "version": 1}))?;
        }
        let (tx, rx) = ring::<JournalEntry>(1 << 16, FullPolicy::DropNewest, WaitMode::Park);
        let (sys_tx, sys_rx) = crossbeam::channel::unbounded();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("qa-journal".into())
            .spawn(move || write_loop(w, rx, sys_rx, &s))?;
        Ok((
            OrderJournal {
                path: path.to_path_buf(),
                sys: Some(sys_tx),
                stop,
                handle: Some(handle),
            },
            tx,
        ))
    }

    /// A system event (`start`, `stop`, `stall`, …) with its details.
    pub fn system(&self, event: &str, detail: Value) {
        if let Some(tx) = &self.sys {
            let _ = tx.send(json!({
                "ts_ms": now_ms(),
                "kind": "system",
                "event": event,
                "detail": detail,
            }));
        }
    }

    /// Writes what is left (the gateway's producer must be gone, or its last entries are taken as
    /// they are), syncs the file and returns the number of records written this run.
    pub fn finish(mut self) -> Result<u64> {
        self.close()
            .unwrap_or_else(|| Err(anyhow::anyhow!("journal writer already stopped")))
    }

    fn close(&mut self) -> Option<Result<u64>> {
        self.sys.take();
        self.stop.store(true, Ordering::Relaxed);
        let h = self.handle.take()?;
        Some(
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("journal writer panicked"))),
        )
    }
}

impl Drop for OrderJournal {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

fn write_loop(
    mut w: BufWriter<std::fs::File>,
    mut rx: Consumer<JournalEntry>,
    sys: Receiver<Value>,
    stop: &AtomicBool,
) -> Result<u64> {
    let mut n = 0u64;
    loop {
        // Read `stop` first: what was pushed before it was set is drained below.
        let stopping = stop.load(Ordering::Relaxed);
        let mut wrote = false;
        while let Ok(e) = rx.pop() {
            writeln!(w, "{}", entry_json(&e))?;
            n += 1;
            wrote = true;
        }
        while let Ok(v) = sys.try_recv() {
            writeln!(w, "{v}")?;
            n += 1;
            wrote = true;
        }
        if wrote {
            w.flush()?;
        }
        if stopping && (rx.is_abandoned() || !wrote) {
            while let Ok(e) = rx.pop() {
                writeln!(w, "{}", entry_json(&e))?;
                n += 1;
            }
            w.flush()?;
            w.get_ref().sync_all()?;
            return Ok(n);
        }
        if !wrote {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// The JSON line of one entry.
pub fn entry_json(e: &JournalEntry) -> Value {
    match e {
        JournalEntry::Command { at_ns, cmd } => command_json(*at_ns, cmd),
        JournalEntry::Report(r) => report_json(r),
    }
}

fn command_json(at_ns: u64, c: &OrderCommand) -> Value {
    let mut v = json!({
        "ts_ms": at_ns / 1_000_000,
        "kind": "order",
        "venue": c.venue.name(),
        "symbol": c.symbol.as_str(),
        "tick_recv_ns": c.tick_recv_ns,
        "decided_ns": c.decided_ns,
    });
    let m = v.as_object_mut().expect("object");
    match &c.action {
        OrderAction::New(o) => {
            m.insert("action".into(), "new".into());
            m.insert("client_id".into(), o.client_id.to_string().into());
            m.insert("side".into(), format!("{:?}", o.side).to_lowercase().into());
            m.insert("type".into(), format!("{:?}", o.order_type).into());
            m.insert("tif".into(), format!("{:?}", o.tif).into());
            m.insert("price".into(), o.price.to_string().into());
            m.insert("qty".into(), o.qty.to_string().into());
            m.insert("reduce_only".into(), o.reduce_only.into());
        }
        OrderAction::Cancel { client_id } => {
            m.insert("action".into(), "cancel".into());
            m.insert("client_id".into(), client_id.to_string().into());
        }
        OrderAction::Amend {
            client_id,
            price,
            qty,
        } => {
            m.insert("action".into(), "amend".into());
            m.insert("client_id".into(), client_id.to_string().into());
            m.insert("price".into(), price.to_string().into());
            m.insert("qty".into(), qty.to_string().into());
        }
        OrderAction::CancelAll => {
            m.insert("action".into(), "cancel_all".into());
        }
    }
    v
}

/// The journal kind of a report.
pub fn report_kind(k: ExecKind) -> &'static str {
    match k {
        ExecKind::Ack => "ack",
        ExecKind::Rejected => "reject",
        ExecKind::PartialFill | ExecKind::Fill => "fill",
        ExecKind::Canceled | ExecKind::Expired => "cancel",
        ExecKind::Amended => "amend",
    }
}

fn report_json(r: &ExecReport) -> Value {
    json!({
        "ts_ms": r.recv_ns / 1_000_000,
        "kind": report_kind(r.kind),
        "report": format!("{:?}", r.kind),
        "venue": r.venue.name(),
        "symbol": r.symbol.as_str(),
        "client_id": r.client_id.to_string(),
        "venue_order_id": r.venue_order_id,
        "side": format!("{:?}", r.side).to_lowercase(),
        "last_px": r.last_px.to_string(),
        "last_qty": r.last_qty.to_string(),
        "cum_qty": r.cum_qty.to_string(),
        "leaves_qty": r.leaves_qty.to_string(),
        "fee": r.fee.to_string(),
        "maker": r.is_maker,
        "reason": r.reason,
        "exch_ms": r.exch_ms,
    })
}
