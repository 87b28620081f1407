//! Benchmarks: the whole simulated incident (alert in -> every crew action done, real git repo
//! and redb store; without a model, and on the LLM path replayed from the recorded cassette), and message routing between crew actors beside a raw
//! tokio channel round trip measured in the same run.

use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use squad::simulation::{self, SimulationOptions};
use squad_config::Settings;
use squad_protocols::{
    Assignment, Diagnosis, DiagnosisSource, IncidentId, IssueRef, Member, Report, RootCause, Task,
    WorkloadRef,
};
use squad_runtime::{CrewDirectory, CrewMsg, Faults};
use squad_sim::Scenario;

fn paused() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable!("tokio runtime: {e}"),
    }
}

fn whole_incident(c: &mut Criterion) {
    let scenario = match Scenario::embedded("oomkilled") {
        Ok(s) => s,
        Err(e) => unreachable!("{e}"),
    };
    let mut g = c.benchmark_group("incident");
    g.sample_size(20);
    for approve in [false, true] {
        let name = if approve {
            "oomkilled_to_resolved"
        } else {
            "oomkilled_to_pr_open"
        };
        g.bench_function(name, |b| {
            b.iter_batched(
                || tempfile::tempdir().ok(),
                |dir| {
                    let Some(dir) = dir else { return };
                    let rt = paused();
                    let run = rt.block_on(simulation::run(SimulationOptions {
                        scenario: scenario.clone(),
                        out: dir.path().join("out"),
                        approve,
                        dry_run: false,
                        fresh: false,
                        settings: Settings::default(),
                        faults: Faults::none(),
                        abort_after_events: None,
                        serve: Default::default(),
                        minds: Default::default(),
                        github: None,
                    }));
                    assert!(run.is_ok());
                },
                BatchSize::PerIteration,
            )
        });
    }
    // The same run to the open PR with every member on the LLM path, answered from the recorded
    // SmolLM2 cassette over loopback HTTP: the cost of the agent loop, the redaction gateway and
    // the HTTP round trips, against `oomkilled_to_pr_open` above (no model time included).
    let servers = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable!("tokio runtime: {e}"),
    };
    let cassette =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cassettes/oomkilled-crew");
    let server = match servers.block_on(squad_sim::llm_cassette::CassetteServer::start(
        cassette,
        squad_sim::llm_cassette::Mode::Replay,
    )) {
        Ok(s) => s,
        Err(e) => unreachable!("cassette server: {e}"),
    };
    let llm = squad_config::LlmSettings {
        default: Some("test".into()),
        profiles: [(
            "test".to_string(),
            squad_config::LlmProfile {
                base_url: Some(server.url()),
                model: "SmolLM2-135M-Instruct".into(),
                tool_mode: squad_config::LlmToolMode::JsonSchema,
                timeout_seconds: 300,
                max_concurrent: 1,
                max_retries: 0,
                prompt_usd_per_million: Some(0.15),
                completion_usd_per_million: Some(0.6),
                ..Default::default()
            },
        )]
        .into(),
        ..Default::default()
    };
    let minds = match squad_adapters::llm::minds_from_settings(&llm, |_| None) {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => unreachable!("models: {e}"),
    };
    g.bench_function("oomkilled_to_pr_open_llm_cassette", |b| {
        b.iter_batched(
            || tempfile::tempdir().ok(),
            |dir| {
                let Some(dir) = dir else { return };
                let rt = paused();
                let run = rt.block_on(simulation::run(SimulationOptions {
                    scenario: scenario.clone(),
                    out: dir.path().join("out"),
                    approve: false,
                    dry_run: false,
                    fresh: false,
                    settings: Settings::default(),
                    faults: Faults::none(),
                    abort_after_events: None,
                    serve: Default::default(),
                    minds: minds.clone(),
                    github: None,
                }));
                assert!(run.is_ok());
            },
            BatchSize::PerIteration,
        )
    });
    let misses = server.misses();
    assert!(
        misses.is_empty(),
        "the cassette missed {} request(s): re-record it\n{}",
        misses.len(),
        misses.first().map_or("", |m| m.message.as_str())
    );
    g.finish();
}

struct Echo;

impl Actor for Echo {
    type Msg = CrewMsg;
    type State = ();
    type Arguments = ();
    async fn pre_start(&self, _: ActorRef<CrewMsg>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
    async fn handle(
        &self,
        _: ActorRef<CrewMsg>,
        msg: CrewMsg,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let CrewMsg::Assign { assignment, reply } = msg;
        let _ = reply.send(Ok(Report::new(assignment.member, "ok")));
        Ok(())
    }
}

fn assignment() -> Assignment {
    Assignment {
        incident: IncidentId("inc-bench".into()),
        member: Member::Worf,
        task: Task::SecurityReview,
        workload: WorkloadRef::deployment("ns", "w"),
        alert_name: "A".into(),
        diagnosis: Diagnosis::new(DiagnosisSource::Native, RootCause::unknown(), "s"),
        issue: IssueRef {
            number: 1,
            url: String::new(),
        },
        reports: Vec::new(),
        memory: Vec::new(),
    }
}

fn routing(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => unreachable!("{e}"),
    };
    let directory = CrewDirectory::default();
    let (actor, _) = match rt.block_on(Actor::spawn(None, Echo, ())) {
        Ok(a) => a,
        Err(e) => unreachable!("{e}"),
    };
    directory.set(Member::Worf, actor.clone());
    let a = assignment();
    let mut g = c.benchmark_group("routing");
    g.bench_function("crew_ask_round_trip", |b| {
        b.to_async(&rt).iter(|| async {
            let r = directory.ask(a.clone(), Duration::from_secs(5)).await;
            assert!(r.is_ok());
        })
    });
    // Baseline: the same payload through a raw tokio channel to a task that answers on a oneshot.
    let (tx, mut rx) =
        tokio::sync::mpsc::unbounded_channel::<(Assignment, tokio::sync::oneshot::Sender<Report>)>(
        );
    rt.spawn(async move {
        while let Some((a, reply)) = rx.recv().await {
            let _ = reply.send(Report::new(a.member, "ok"));
        }
    });
    g.bench_function("raw_tokio_channel_round_trip", |b| {
        b.to_async(&rt).iter(|| async {
            let (otx, orx) = tokio::sync::oneshot::channel();
            let _ = tx.send((a.clone(), otx));
            assert!(orx.await.is_ok());
        })
    });
    g.finish();
    actor.stop(None);
}

criterion_group!(benches, whole_incident, routing);
criterion_main!(benches);
