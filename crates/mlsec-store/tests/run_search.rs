//! Run search against a reference: runs with and without each key, searched with every order
//! shape the planner treats differently (attribute, filtered key, unfiltered key with runs that
//! lack it, several keys) and paged across the boundary between runs with and without the sort
//! key, on each backend.

mod common;

use mlsec_audit::{AuditEvent, Decision};
use mlsec_store::{
    CompareOp, FilterValue, MetricRow, RunClause, RunField, RunOrder, RunQuery, RunRow, Store,
};
use mlsec_types::Actor;

/// What a run was seeded with: the reference the database's answers are checked against.
#[derive(Clone)]
struct Seeded {
    run_id: String,
    start_time: i64,
    end_time: Option<i64>,
    acc: Option<f64>,
    lr: Option<&'static str>,
    team: Option<&'static str>,
}

fn event() -> AuditEvent {
    AuditEvent::new(
        time::OffsetDateTime::now_utc(),
        Actor::user("u"),
        "run.create",
        "run:x",
        Decision::Allow,
        "test",
    )
}

async fn seed(store: &Store, n: usize) -> (i64, Vec<Seeded>) {
    let mut w = store.begin_write().await.unwrap();
    let exp = w.insert_experiment("search", 1, "u").await.unwrap();
    let mut runs = Vec::new();
    for i in 0..n {
        // Deterministic, varied: some runs lack each key, start times repeat so the run id
        // breaks ties.
        let s = Seeded {
            run_id: format!(
                "{:032x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15) % (1 << 100)
            ),
            start_time: 1_000 + (i as i64 % 17) * 10,
            end_time: (i % 6 != 0).then_some(5_000 + (i as i64 % 11) * 10),
            acc: (i % 5 != 0).then(|| {
                if i % 11 == 3 {
                    f64::NAN
                } else {
                    ((i * 37) % 100) as f64 / 100.0
                }
            }),
            lr: (i % 7 != 0).then(|| ["0.1", "0.01", "0.001"][i % 3]),
            team: (i % 3 != 0).then(|| ["a", "b"][i % 2]),
        };
        w.insert_run(&RunRow {
            run_id: s.run_id.clone(),
            experiment_id: exp,
            experiment_name: "search".into(),
            name: format!("run-{i}"),
            user_id: "u".into(),
            status: if i % 4 == 0 { "FAILED" } else { "FINISHED" }.into(),
            start_time: s.start_time,
            end_time: s.end_time,
            lifecycle_stage: "active".into(),
            artifact_uri: String::new(),
            parent_run_id: None,
            created_by: "u".into(),
        })
        .await
        .unwrap();
        if let Some(acc) = s.acc {
            let m = MetricRow {
                key: "acc".into(),
                value: acc,
                timestamp: 1,
                step: 0,
            };
            w.insert_run_metrics(&s.run_id, &[m]).await.unwrap();
        }
        if let Some(lr) = s.lr {
            w.insert_run_params(&s.run_id, &[("lr".into(), lr.into())])
                .await
                .unwrap();
        }
        if let Some(team) = s.team {
            w.set_run_tags(&s.run_id, &[("team".into(), team.into())])
                .await
                .unwrap();
        }
        runs.push(s);
    }
    w.commit(&[event()]).await.unwrap();
    (exp, runs)
}

type Filter = fn(&Seeded) -> bool;
type Key = fn(&Seeded) -> (u8, SortKey);

/// A sort key with runs lacking the value last, either direction.
#[derive(PartialEq, PartialOrd, Clone, Debug)]
enum SortKey {
    Num(f64),
    Text(String),
    None,
}

fn reference(runs: &[Seeded], keep: Filter, keys: &[(Key, bool)]) -> Vec<String> {
    let mut out: Vec<&Seeded> = runs.iter().filter(|r| keep(r)).collect();
    out.sort_by(|a, b| {
        for (key, ascending) in keys {
            let (ma, ka) = key(a);
            let (mb, kb) = key(b);
            let ord = ma.cmp(&mb).then_with(|| {
                let o = ka.partial_cmp(&kb).unwrap();
                if *ascending { o } else { o.reverse() }
            });
            if ord.is_ne() {
                return ord;
            }
        }
        b.start_time
            .cmp(&a.start_time)
            .then_with(|| a.run_id.cmp(&b.run_id))
    });
    out.into_iter().map(|r| r.run_id.clone()).collect()
}

/// Metrics sort numbers first, then NaN, then runs without the metric, either direction.
fn by_acc(r: &Seeded) -> (u8, SortKey) {
    match r.acc {
        Some(v) if v.is_nan() => (1, SortKey::None),
        Some(v) => (0, SortKey::Num(v)),
        None => (2, SortKey::None),
    }
}
fn by_end(r: &Seeded) -> (u8, SortKey) {
    r.end_time
        .map_or((1, SortKey::None), |v| (0, SortKey::Num(v as f64)))
}
fn by_lr(r: &Seeded) -> (u8, SortKey) {
    r.lr.map_or((1, SortKey::None), |v| (0, SortKey::Text(v.into())))
}
fn by_team(r: &Seeded) -> (u8, SortKey) {
    r.team
        .map_or((1, SortKey::None), |v| (0, SortKey::Text(v.into())))
}

fn clause(field: RunField, op: CompareOp, value: FilterValue) -> RunClause {
    RunClause { field, op, value }
}

#[tokio::test]
async fn search_matches_the_reference_in_every_order_and_page() {
    for db in common::backends(1000).await {
        let store = db.open().await;
        let (exp, runs) = seed(&store, 120).await;
        let acc = || RunField::Metric("acc".into());
        let lr = || RunField::Param("lr".into());
        let team = || RunField::Tag("team".into());
        // NaN never compares true.
        let acc_gt: Filter = |r| r.acc.is_some_and(|v| v > 0.3);
        let lr_eq: Filter = |r| r.lr == Some("0.01");
        let all: Filter = |_| true;
        let both: Filter = |r| r.acc.is_some_and(|v| v > 0.3) && r.lr == Some("0.01");
        let team_b: Filter = |r| r.team == Some("b");
        #[allow(clippy::type_complexity)]
        let cases: Vec<(
            &str,
            Vec<RunClause>,
            Filter,
            Vec<RunOrder>,
            Vec<(Key, bool)>,
        )> = vec![
            ("default order", vec![], all, vec![], vec![]),
            (
                "filtered metric, ordered by it",
                vec![
                    clause(acc(), CompareOp::Gt, FilterValue::Number(0.3)),
                    clause(lr(), CompareOp::Eq, FilterValue::Text("0.01".into())),
                ],
                both,
                vec![RunOrder {
                    field: acc(),
                    ascending: false,
                }],
                vec![(by_acc, false)],
            ),
            (
                "unfiltered metric order, runs without it last",
                vec![],
                all,
                vec![RunOrder {
                    field: acc(),
                    ascending: true,
                }],
                vec![(by_acc, true)],
            ),
            (
                "unfiltered metric order descending, NaN after numbers",
                vec![],
                all,
                vec![RunOrder {
                    field: acc(),
                    ascending: false,
                }],
                vec![(by_acc, false)],
            ),
            (
                "param filter, tag order then metric order",
                vec![clause(
                    lr(),
                    CompareOp::Eq,
                    FilterValue::Text("0.01".into()),
                )],
                lr_eq,
                vec![
                    RunOrder {
                        field: team(),
                        ascending: false,
                    },
                    RunOrder {
                        field: acc(),
                        ascending: false,
                    },
                ],
                vec![(by_team, false), (by_acc, false)],
            ),
            (
                "metric filter, param order",
                vec![clause(acc(), CompareOp::Gt, FilterValue::Number(0.3))],
                acc_gt,
                vec![RunOrder {
                    field: lr(),
                    ascending: true,
                }],
                vec![(by_lr, true)],
            ),
            (
                "end time order, runs still going last",
                vec![],
                all,
                vec![RunOrder {
                    field: RunField::Attribute("end_time"),
                    ascending: true,
                }],
                vec![(by_end, true)],
            ),
            (
                "end time descending after a metric",
                vec![],
                all,
                vec![
                    RunOrder {
                        field: acc(),
                        ascending: false,
                    },
                    RunOrder {
                        field: RunField::Attribute("end_time"),
                        ascending: false,
                    },
                ],
                vec![(by_acc, false), (by_end, false)],
            ),
            (
                "tag filter, start time order",
                vec![clause(team(), CompareOp::Eq, FilterValue::Text("b".into()))],
                team_b,
                vec![RunOrder {
                    field: RunField::Attribute("start_time"),
                    ascending: false,
                }],
                vec![],
            ),
        ];
        for (name, clauses, keep, order, keys) in cases {
            let want = reference(&runs, keep, &keys);
            assert!(!want.is_empty(), "{name}: the case selects runs");
            for limit in [7, 25, 1000] {
                let mut got = Vec::new();
                let mut offset = 0;
                loop {
                    let page = store
                        .search_runs(&RunQuery {
                            experiment_ids: vec![exp],
                            lifecycle_stages: vec!["active"],
                            clauses: clauses.clone(),
                            order: order.clone(),
                            limit,
                            offset,
                        })
                        .await
                        .unwrap_or_else(|e| panic!("{}: {name}: {e}", db.name));
                    assert!(page.len() as i64 <= limit);
                    assert!(page.iter().all(|r| r.experiment_name == "search"));
                    let n = page.len() as i64;
                    got.extend(page.into_iter().map(|r| r.run_id));
                    if n < limit {
                        break;
                    }
                    offset += limit;
                }
                assert_eq!(got, want, "{}: {name}, pages of {limit}", db.name);
            }
        }
    }
}
