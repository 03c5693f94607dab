//! `mixed`: a realistic LMS at a configured scale. Each tenant has one admin socket, one
//! instructor per course and students enrolled in a few courses (membership set through the
//! service API first, so sockets join their course rooms on connect). Most sockets stay idle;
//! students join courses, report progress (forwarded live to the course's instructor) and ask
//! for their unread count; the backend stores notifications for students and broadcasts to
//! tenants. Every kind of traffic is timed (acks, deliveries) and every delivery accounted.

use crate::cli::MixedArgs;
use crate::client::Outgoing;
use crate::proto::{StreamKind, marker};
use crate::report;
use crate::run::{self, Ctx, Meter, Spec};
use crate::stats::AckKind;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;

/// What client `i` is in a mixed population.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Who {
    Admin,
    Instructor { course: usize },
    Student { courses: Vec<usize> },
}

fn who(i: usize, a: &MixedArgs) -> Who {
    let slot = i / a.pop.tenants;
    match slot {
        0 => Who::Admin,
        s if s <= a.courses => Who::Instructor { course: s - 1 },
        s => Who::Student {
            courses: (0..a.courses_per_student.min(a.courses))
                .map(|m| (s + m) % a.courses)
                .collect(),
        },
    }
}

fn course_id(c: usize) -> String {
    format!("c{c}")
}

pub async fn run(ctx: &Ctx, a: &MixedArgs) -> anyhow::Result<Value> {
    let p = &a.pop;
    anyhow::ensure!(a.courses > 0, "--courses must be > 0");
    anyhow::ensure!(
        p.connections / p.tenants >= a.courses + 2,
        "need at least courses + 2 sockets per tenant (admin, instructors, a student)"
    );

    // Membership first, one PUT per course (the whole roster), so sockets join course rooms on connect.
    ctx.set_phase("enroll");
    for t in 0..p.tenants {
        let mut rosters: Vec<Vec<(String, &str)>> = vec![Vec::new(); a.courses];
        for i in (t..p.connections).step_by(p.tenants) {
            let (_, user) = super::identity(i, p.tenants);
            match who(i, a) {
                Who::Admin => {}
                Who::Instructor { course } => rosters[course].push((user, "instructor")),
                Who::Student { courses } => courses
                    .iter()
                    .for_each(|c| rosters[*c].push((user.clone(), "student"))),
            }
        }
        for (c, roster) in rosters.iter().enumerate() {
            ctx.api
                .put_members(&ctx.targets[0], &ctx.tenant(t), &course_id(c), roster)
                .await
                .map_err(|e| anyhow::anyhow!("enrolling tenant {t} course {c}: {e}"))?;
        }
    }

    let mut specs = Vec::with_capacity(p.connections);
    let mut senders: Vec<Option<mpsc::Sender<Outgoing>>> = Vec::with_capacity(p.connections);
    for i in 0..p.connections {
        let (t, user) = super::identity(i, p.tenants);
        let w = who(i, a);
        let role = match w {
            Who::Admin => "admin",
            Who::Instructor { .. } => "instructor",
            Who::Student { .. } => "student",
        };
        let (tx, rx) = match w {
            Who::Student { .. } => {
                let (tx, rx) = mpsc::channel(64);
                (Some(tx), Some(rx))
            }
            _ => (None, None),
        };
        senders.push(tx);
        specs.push(Spec {
            index: i,
            node: ctx.node_for_client(i, p.tenants),
            token: ctx.minter.mint(&user, Some(&ctx.tenant(t)), role)?,
            accounted: true,
            outgoing: rx,
        });
    }
    ctx.set_phase("ramp");
    let ramp_meter = Meter::start(&ctx.common.pids);
    let ramp = run::ramp(ctx, specs, p.connect_rate, p.connect_concurrency).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ramp_cost = ramp_meter.finish();
    let connected = ramp.connected.clone();
    let students: Arc<Vec<usize>> = Arc::new(
        (0..p.connections)
            .filter(|i| connected[*i] && matches!(who(*i, a), Who::Student { .. }))
            .collect(),
    );
    anyhow::ensure!(!students.is_empty(), "no student connected");
    let tenant_members = Arc::new(super::per_tenant(&connected, p.tenants));
    // The socket index of each (tenant, course)'s instructor, to know whether a progress event has a recipient.
    let instructor_up = |t: usize, c: usize| {
        connected
            .get(t + (c + 1) * p.tenants)
            .copied()
            .unwrap_or(false)
    };
    let senders = Arc::new(senders);

    ctx.set_phase("traffic");
    let meter = Meter::start(&ctx.common.pids);
    let stats = ctx.stats.clone();
    let dur = Duration::from_secs(ctx.common.duration);
    let nodes = ctx.targets.len();
    let pick = |students: &Arc<Vec<usize>>| students[fastrand::usize(..students.len())];

    let progress = run::pace(ctx, a.progress_rate, dur, |_| {
        let s = stats.stream(StreamKind::Progress);
        let i = pick(&students);
        let Who::Student { courses } = who(i, a) else {
            return None;
        };
        let c = courses[fastrand::usize(..courses.len())];
        let t = i % p.tenants;
        let seq = s.ledger.next_seq()?;
        s.sent.fetch_add(1, Relaxed);
        let payload = json!({ "courseId": course_id(c), "contentId": marker(StreamKind::Progress, seq, stats.now_us()), "progress": 0.5 });
        let queued = senders[i].as_ref().is_some_and(|tx| {
            tx.try_send(Outgoing {
                kind: AckKind::Progress,
                payload,
            })
            .is_ok()
        });
        if queued {
            s.accepted.fetch_add(1, Relaxed);
            s.ledger.expect(seq, u32::from(instructor_up(t, c)));
        } else {
            s.errors.add("client queue full");
        }
        Some(std::future::ready(()))
    });
    let joins = run::pace(ctx, a.join_rate, dur, |_| {
        let i = pick(&students);
        let Who::Student { courses } = who(i, a) else {
            return None;
        };
        let payload = json!({ "courseId": course_id(courses[fastrand::usize(..courses.len())]) });
        if let Some(tx) = senders[i].as_ref() {
            let _ = tx.try_send(Outgoing {
                kind: AckKind::CourseJoin,
                payload,
            });
        }
        Some(std::future::ready(()))
    });
    let counts = run::pace(ctx, a.count_rate, dur, |_| {
        if let Some(tx) = senders[pick(&students)].as_ref() {
            let _ = tx.try_send(Outgoing {
                kind: AckKind::Count,
                payload: json!({}),
            });
        }
        Some(std::future::ready(()))
    });
    let notifies = run::pace(ctx, a.notify_rate, dur, |_| {
        let s = stats.stream(StreamKind::Notify);
        let i = pick(&students);
        let (t, user) = super::identity(i, p.tenants);
        let seq = s.ledger.next_seq()?;
        s.sent.fetch_add(1, Relaxed);
        let (id, text) = (
            format!("{}-n{seq}", ctx.run_id),
            marker(StreamKind::Notify, seq, stats.now_us()),
        );
        let (stats, api, tenant) = (stats.clone(), ctx.api.clone(), ctx.tenant(t));
        let node = ctx.targets[fastrand::usize(..nodes)].clone();
        Some(async move {
            let s = stats.stream(StreamKind::Notify);
            s.record_publish(seq, 1, api.notify(&node, &tenant, &user, &id, &text).await);
        })
    });
    let broadcasts = run::pace(ctx, a.broadcast_rate, dur, |k| {
        let s = stats.stream(StreamKind::Broadcast);
        let t = k as usize % p.tenants;
        let seq = s.ledger.next_seq()?;
        s.sent.fetch_add(1, Relaxed);
        let text = marker(StreamKind::Broadcast, seq, stats.now_us());
        let (stats, api, tenant, members) = (
            stats.clone(),
            ctx.api.clone(),
            ctx.tenant(t),
            tenant_members.clone(),
        );
        let node = ctx.targets[fastrand::usize(..nodes)].clone();
        Some(async move {
            let s = stats.stream(StreamKind::Broadcast);
            s.record_publish(seq, members[t], api.broadcast(&node, &tenant, &text).await);
        })
    });
    let ((progress_n, wall), (join_n, _), (count_n, _), (notify_n, _), (broadcast_n, _)) =
        tokio::join!(progress, joins, counts, notifies, broadcasts);
    ctx.set_phase("drain");
    let drained = run::drain(Duration::from_secs(ctx.common.drain), || {
        StreamKind::ALL
            .iter()
            .all(|k| ctx.stats.stream(*k).ledger.complete())
            && AckKind::ALL.iter().all(|k| {
                let a = ctx.stats.ack(*k);
                a.ok.load(Relaxed) + a.refused.total() >= a.sent.load(Relaxed)
            })
    })
    .await;
    let cost = meter.finish();
    run::shutdown(ctx, ramp.handles).await;

    let n_connected = connected.iter().filter(|c| **c).count() as f64;
    let events = (progress_n + join_n + count_n + notify_n + broadcast_n) as f64;
    Ok(json!({
        "connected": n_connected,
        "students": students.len(),
        "courses_per_tenant": a.courses,
        "started": { "progress": progress_n, "course_join": join_n, "count": count_n, "notify": notify_n, "broadcast": broadcast_n },
        "traffic_s": wall.as_secs_f64(),
        "drain_s": drained.as_secs_f64(),
        "ramp_cost": report::cost_json(&ramp_cost, &[
            ("cpu_ms_per_connect", ramp_cost.cpu_s * 1000.0, n_connected),
            ("rss_bytes_per_connection", ramp_cost.rss_after_bytes as f64 - ramp_cost.rss_before_bytes as f64, n_connected),
        ]),
        "cost": report::cost_json(&cost, &[("cpu_ms_per_operation", cost.cpu_s * 1000.0, events)]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn each_tenant_gets_an_admin_then_one_instructor_per_course_then_students() {
        let cli = crate::cli::Cli::parse_from([
            "lms-loadgen",
            "mixed",
            "--jwt-secret",
            "s",
            "-n",
            "40",
            "-t",
            "4",
            "--courses",
            "3",
        ]);
        let crate::cli::Scenario::Mixed(a) = cli.scenario else {
            panic!("mixed")
        };
        assert_eq!(who(0, &a), Who::Admin);
        assert_eq!(who(3, &a), Who::Admin);
        assert_eq!(who(4, &a), Who::Instructor { course: 0 });
        assert_eq!(who(13, &a), Who::Instructor { course: 2 });
        assert_eq!(
            who(16, &a),
            Who::Student {
                courses: vec![1, 2]
            }
        );
    }
}
