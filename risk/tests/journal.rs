//! The risk journal as the risk engine uses it: write, crash (cut or damage the file), reopen,
//! restore.

use std::path::Path;

use proptest::prelude::*;
use qalpha_engine::order::ClientOrderId;
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_risk::journal::{
    restore, utc_day, JournalError, JournalReader, JournalWriter, Restored, RiskEvent,
    RiskEventKind, TailStatus, HEADER_LEN, RECORD_LEN,
};
use qalpha_risk::{Money, RejectReason, RiskState, SwitchKind};

const DAY: u64 = 86_400 * 1_000_000_000;
const SEC: u64 = 1_000_000_000;
/// 2024-03-05T00:00:00Z.
const DAY0: u64 = 19_787 * DAY;

fn decision(ts_ns: u64, reject: Option<RejectReason>) -> RiskEvent {
    RiskEvent {
        ts_ns,
        kind: RiskEventKind::Decision {
            venue: Venue::BybitLinear,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse("qa1x2y3z-4f").unwrap(),
            side: Side::Sell,
            price: Price(6_512_345_000_000),
            qty: Qty(1_500_000),
            reduce_only: reject.is_none(),
            reject,
        },
    }
}

fn change(ts_ns: u64, from: RiskState, to: RiskState, switch: SwitchKind) -> RiskEvent {
    RiskEvent {
        ts_ns,
        kind: RiskEventKind::StateChange {
            from,
            to,
            conservative: false,
            switch,
            detail: -250_000_000_000,
        },
    }
}

fn day_pnl(ts_ns: u64, pnl: i128, realized: i128, losses: u32) -> RiskEvent {
    RiskEvent {
        ts_ns,
        kind: RiskEventKind::DayPnl {
            utc_day: utc_day(ts_ns),
            day_pnl: Money(pnl),
            realized_today: Money(realized),
            consecutive_losses: losses,
        },
    }
}

fn api(ts_ns: u64, n: u32) -> RiskEvent {
    RiskEvent {
        ts_ns,
        kind: RiskEventKind::ApiErrors { in_last_min: n },
    }
}

/// One of each kind, with extreme values where a field allows them.
fn every_kind() -> Vec<RiskEvent> {
    vec![
        decision(DAY0 + 1, None),
        decision(DAY0 + 2, Some(RejectReason::Conservative)),
        decision(DAY0 + 3, Some(RejectReason::MaxLeverage)),
        RiskEvent {
            ts_ns: DAY0 + 4,
            kind: RiskEventKind::StateChange {
                from: RiskState::Active,
                to: RiskState::Reducing,
                conservative: true,
                switch: SwitchKind::VolatilitySpike,
                detail: i64::MIN,
            },
        },
        day_pnl(DAY0 + 5, i128::MIN, i128::MAX, u32::MAX),
        api(u64::MAX, u32::MAX),
    ]
}

fn write(path: &Path, events: &[RiskEvent]) {
    let mut w = JournalWriter::open(path).unwrap();
    for e in events {
        w.append(e).unwrap();
    }
    w.sync().unwrap();
}

fn read(path: &Path) -> (Vec<RiskEvent>, TailStatus) {
    let r = JournalReader::open(path).unwrap();
    (r.events().collect(), r.tail())
}

#[test]
fn every_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let all = every_kind();
    write(&path, &all);
    let (got, tail) = read(&path);
    assert_eq!(got, all);
    assert_eq!(tail, TailStatus::Clean);
    assert_eq!(
        std::fs::metadata(&path).unwrap().len() as usize,
        HEADER_LEN + all.len() * RECORD_LEN
    );
    let r = JournalReader::open(&path).unwrap();
    assert_eq!(r.event_count(), all.len() as u64);
    assert_eq!(r.path(), path.as_path());
}

#[test]
fn reopen_and_append_keeps_earlier_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let all = every_kind();
    write(&path, &all[..2]);
    let mut w = JournalWriter::open(&path).unwrap();
    assert_eq!(w.event_count(), 2);
    assert_eq!(w.dropped_bytes(), 0);
    assert_eq!(w.dropped_at_open(), TailStatus::Clean);
    assert_eq!(w.path(), path.as_path());
    for e in &all[2..] {
        w.append(e).unwrap();
    }
    // Dropping without sync still flushes the buffer (sync is for durability, not visibility).
    drop(w);
    assert_eq!(read(&path), (all.clone(), TailStatus::Clean));
    write(&path, &all);
    let (got, _) = read(&path);
    assert_eq!(got.len(), 2 * all.len());
    assert_eq!(&got[all.len()..], &all[..]);
}

#[test]
fn every_cut_reads_the_whole_prefix_and_reopening_repairs_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let all = every_kind();
    write(&path, &all);
    let full = std::fs::read(&path).unwrap();
    for cut in 0..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let (got, tail) = read(&path);
        if cut < HEADER_LEN {
            // A crash while creating the file: nothing was ever journaled.
            assert_eq!(
                (got.len(), tail),
                (0, TailStatus::Truncated { at: 0 }),
                "cut {cut}"
            );
        } else {
            let whole = (cut - HEADER_LEN) / RECORD_LEN;
            let boundary = HEADER_LEN + whole * RECORD_LEN;
            let want = if boundary == cut {
                TailStatus::Clean
            } else {
                TailStatus::Truncated {
                    at: boundary as u64,
                }
            };
            assert_eq!(tail, want, "cut {cut}");
            assert_eq!(got, all[..whole], "cut {cut}");
        }
        // The writer drops the partial record and appends after the good prefix.
        let mut w = JournalWriter::open(&path).unwrap();
        let kept = got.len();
        assert_eq!(w.event_count(), kept as u64);
        let good_len = if cut < HEADER_LEN {
            0
        } else {
            HEADER_LEN + kept * RECORD_LEN
        };
        assert_eq!(w.dropped_bytes(), (cut - good_len) as u64, "cut {cut}");
        w.append(&api(7, 1)).unwrap();
        w.sync().unwrap();
        drop(w);
        let (again, tail) = read(&path);
        assert_eq!(tail, TailStatus::Clean, "cut {cut}");
        assert_eq!(&again[..kept], &all[..kept]);
        assert_eq!(again[kept..], [api(7, 1)]);
    }
}

#[test]
fn every_flipped_byte_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let all = every_kind();
    write(&path, &all);
    let full = std::fs::read(&path).unwrap();
    for i in 0..full.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut b = full.clone();
            b[i] ^= flip;
            std::fs::write(&path, &b).unwrap();
            if i < HEADER_LEN {
                // Magic, version, flags or event size: the whole file is refused, never misread.
                let e = JournalReader::open(&path).err();
                assert!(
                    matches!(
                        e,
                        Some(JournalError::NotAJournal { .. } | JournalError::Unsupported { .. })
                    ),
                    "byte {i}: {e:?}"
                );
                assert!(JournalWriter::open(&path).is_err(), "byte {i}");
                continue;
            }
            let rec = (i - HEADER_LEN) / RECORD_LEN;
            let (got, tail) = read(&path);
            assert_eq!(
                tail,
                TailStatus::Corrupt {
                    at: (HEADER_LEN + rec * RECORD_LEN) as u64
                },
                "byte {i} ^ {flip:#x}"
            );
            assert_eq!(got, all[..rec], "byte {i}");
        }
    }
}

#[test]
fn not_a_journal_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.qrisk");
    assert!(JournalReader::open(&missing)
        .err()
        .unwrap()
        .to_string()
        .contains("nope.qrisk"));
    assert_eq!(restore(&missing, DAY0).unwrap(), Restored::default());
    // A foreign file is refused by the writer too, and left as it was.
    let notes = dir.path().join("notes.qrisk");
    let text = b"somebody's notes, not a journal";
    std::fs::write(&notes, text).unwrap();
    let e = JournalWriter::open(&notes).err().unwrap().to_string();
    assert!(
        e.contains("not a risk journal") && e.contains("notes.qrisk"),
        "{e}"
    );
    assert_eq!(std::fs::read(&notes).unwrap(), text);
    let junk = dir.path().join("junk.qrisk");
    std::fs::write(&junk, b"QALPHCAP\x01\x00\x00\x00 a capture, not a journal").unwrap();
    let e = restore(&junk, DAY0).err().unwrap().to_string();
    assert!(
        e.contains("junk.qrisk") && e.contains("not a risk journal"),
        "{e}"
    );
}

/// A day that lost its limit: trading, a losing streak, the daily-loss halt at `t_halt`.
fn halted_by_daily_loss(path: &Path, t_halt: u64) {
    write(
        path,
        &[
            decision(DAY0 + 3_600 * SEC, None),
            day_pnl(DAY0 + 3_700 * SEC, -40, -30, 1),
            change(
                DAY0 + 4_000 * SEC,
                RiskState::Active,
                RiskState::Reducing,
                SwitchKind::VolatilitySpike,
            ),
            change(
                DAY0 + 4_100 * SEC,
                RiskState::Reducing,
                RiskState::Active,
                SwitchKind::VolatilitySpike,
            ),
            day_pnl(t_halt - SEC, -900, -800, 4),
            change(
                t_halt,
                RiskState::Active,
                RiskState::Halted,
                SwitchKind::DailyLoss,
            ),
            decision(t_halt + SEC, Some(RejectReason::Halted)),
            day_pnl(t_halt + 2 * SEC, -1_000, -950, 4),
        ],
    );
}

#[test]
fn restart_the_same_day_stays_halted_with_the_days_pnl() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let t = DAY0 + 10 * 3_600 * SEC;
    halted_by_daily_loss(&path, t);
    let r = restore(&path, t + 3_600 * SEC).unwrap();
    assert_eq!(
        r,
        Restored {
            state: RiskState::Halted,
            conservative: false,
            halt_reason: Some(SwitchKind::DailyLoss),
            halted_at_ns: Some(t),
            utc_day: Some(utc_day(t)),
            day_pnl: Money(-1_000),
            realized_today: Money(-950),
            consecutive_losses: 4,
            api_errors_in_last_min: 0,
            events: 8,
        }
    );
}

#[test]
fn next_day_zeroes_the_pnl_but_stays_halted_until_an_operator_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let t = DAY0 + 10 * 3_600 * SEC;
    halted_by_daily_loss(&path, t);
    let tomorrow = DAY0 + DAY + 60 * SEC;
    let r = restore(&path, tomorrow).unwrap();
    assert_eq!(r.state, RiskState::Halted);
    assert_eq!(r.halt_reason, Some(SwitchKind::DailyLoss));
    assert_eq!(r.halted_at_ns, Some(t));
    assert_eq!(r.utc_day, Some(utc_day(t)));
    assert_eq!((r.day_pnl, r.realized_today), (Money::ZERO, Money::ZERO));
    // The streak is of trades, not of days: it carries over midnight.
    assert_eq!(r.consecutive_losses, 4);

    // A switch other than the operator cannot leave Halted; a journal that says so stays halted.
    write(
        &path,
        &[change(
            tomorrow,
            RiskState::Halted,
            RiskState::Active,
            SwitchKind::VolatilitySpike,
        )],
    );
    let r = restore(&path, tomorrow + SEC).unwrap();
    assert_eq!(
        (r.state, r.halt_reason),
        (RiskState::Halted, Some(SwitchKind::DailyLoss))
    );

    write(
        &path,
        &[
            change(
                tomorrow + 2 * SEC,
                RiskState::Halted,
                RiskState::Active,
                SwitchKind::Operator,
            ),
            day_pnl(tomorrow + 3 * SEC, 25, 0, 0),
        ],
    );
    let r = restore(&path, tomorrow + 4 * SEC).unwrap();
    assert_eq!(r.state, RiskState::Active);
    assert_eq!((r.halt_reason, r.halted_at_ns), (None, None));
    assert_eq!(r.day_pnl, Money(25));
    assert_eq!(r.consecutive_losses, 0);
    assert_eq!(r.utc_day, Some(utc_day(tomorrow)));
}

#[test]
fn operator_halt_and_conservative_are_restored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let mut conservative = change(
        DAY0 + 5 * SEC,
        RiskState::Active,
        RiskState::Active,
        SwitchKind::ModelDisagreement,
    );
    if let RiskEventKind::StateChange {
        conservative: ref mut c,
        ..
    } = conservative.kind
    {
        *c = true;
    }
    write(
        &path,
        &[
            conservative,
            day_pnl(DAY0 + 6 * SEC, 10, 5, 2),
            change(
                DAY0 + 7 * SEC,
                RiskState::Active,
                RiskState::Halted,
                SwitchKind::Operator,
            ),
        ],
    );
    let r = restore(&path, DAY0 + 8 * SEC).unwrap();
    assert_eq!(r.state, RiskState::Halted);
    assert_eq!(r.halt_reason, Some(SwitchKind::Operator));
    assert_eq!(r.halted_at_ns, Some(DAY0 + 7 * SEC));
    // The last change carries conservative = false: it was cleared by then.
    assert!(!r.conservative);
    assert_eq!(r.consecutive_losses, 2);
    let r = restore(&path, DAY0 + 6 * SEC).unwrap();
    assert_eq!(r.events, 3);
}

#[test]
fn api_errors_older_than_a_minute_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let t = DAY0 + 100 * SEC;
    write(&path, &[api(t - 10 * SEC, 1), api(t, 2)]);
    assert_eq!(restore(&path, t).unwrap().api_errors_in_last_min, 2);
    assert_eq!(
        restore(&path, t + 59 * SEC).unwrap().api_errors_in_last_min,
        2
    );
    assert_eq!(
        restore(&path, t + 60 * SEC).unwrap().api_errors_in_last_min,
        0
    );
    assert_eq!(restore(&path, t + DAY).unwrap().api_errors_in_last_min, 0);
}

#[test]
fn restore_uses_the_good_prefix_of_a_damaged_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let t = DAY0 + 10 * 3_600 * SEC;
    halted_by_daily_loss(&path, t);
    let mut b = std::fs::read(&path).unwrap();
    // Damage the last record (the final DayPnl): the halt survives, the PnL is the one before it.
    let last = b.len() - RECORD_LEN;
    b[last + 20] ^= 0x10;
    std::fs::write(&path, &b).unwrap();
    let r = restore(&path, t + SEC).unwrap();
    assert_eq!(r.state, RiskState::Halted);
    assert_eq!(r.day_pnl, Money(-900));
    assert_eq!(r.events, 7);
}

fn arb_event() -> impl Strategy<Value = RiskEvent> {
    let state = prop_oneof![
        Just(RiskState::Active),
        Just(RiskState::Reducing),
        Just(RiskState::Halted)
    ];
    let kind = prop_oneof![
        (any::<u32>(), any::<i128>(), any::<i128>(), any::<u32>()).prop_map(|(d, p, r, l)| {
            RiskEventKind::DayPnl {
                utc_day: d,
                day_pnl: Money(p),
                realized_today: Money(r),
                consecutive_losses: l,
            }
        }),
        (state.clone(), state, any::<bool>(), any::<i64>()).prop_map(|(from, to, c, detail)| {
            RiskEventKind::StateChange {
                from,
                to,
                conservative: c,
                switch: SwitchKind::ApiErrorRate,
                detail,
            }
        }),
        (any::<i64>(), any::<i64>(), any::<bool>()).prop_map(|(p, q, ro)| {
            RiskEventKind::Decision {
                venue: Venue::BinanceUsdm,
                symbol: Symbol::parse("ETHUSDT").unwrap(),
                client_id: ClientOrderId::parse("a").unwrap(),
                side: Side::Buy,
                price: Price(p),
                qty: Qty(q),
                reduce_only: ro,
                reject: ro.then_some(RejectReason::PriceBand),
            }
        }),
        any::<u32>().prop_map(|n| RiskEventKind::ApiErrors { in_last_min: n }),
    ];
    (any::<u64>(), kind).prop_map(|(ts_ns, kind)| RiskEvent { ts_ns, kind })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn arbitrary_events_round_trip(events in proptest::collection::vec(arb_event(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.qrisk");
        write(&path, &events);
        let (got, tail) = read(&path);
        prop_assert_eq!(got, events);
        prop_assert_eq!(tail, TailStatus::Clean);
    }
}
