//! The matrix's rows: which port, which fault, which kills.

use std::time::Duration;

use crate::proxy::{Fault, Rule};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Port {
    None,
    GitHub,
    Kubernetes,
    Prometheus,
    Model,
    Holmes,
}

impl Port {
    pub fn name(self) -> &'static str {
        match self {
            Port::None => "-",
            Port::GitHub => "GitHub",
            Port::Kubernetes => "Kubernetes",
            Port::Prometheus => "Prometheus",
            Port::Model => "model",
            Port::Holmes => "HolmesGPT",
        }
    }
}

/// Where the daemon is `kill -9`ed: right after the alerts' 202, and when the total number of
/// timeline entries over all incidents crosses each share of the fault-free run's total.
#[derive(Debug, Clone, Default)]
pub struct Kills {
    pub after_202: bool,
    pub at_shares: Vec<f64>,
}

impl Kills {
    fn none() -> Kills {
        Kills::default()
    }
    fn at(after_202: bool, at_shares: &[f64]) -> Kills {
        Kills {
            after_202,
            at_shares: at_shares.to_vec(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Row {
    pub port: Port,
    pub fault: String,
    pub rules: Vec<Rule>,
    pub kills: Kills,
    /// HolmesGPT is the diagnoser.
    pub holmes: bool,
    /// The fault is lifted after this long (a port that comes back).
    pub heal_after: Option<Duration>,
    pub seed: u64,
}

fn row(port: Port, fault: &str, rules: Vec<Rule>, kills: Kills) -> Row {
    Row {
        port,
        fault: fault.into(),
        rules,
        kills,
        holmes: port == Port::Holmes,
        heal_after: None,
        seed: 0x5eed,
    }
}

pub fn baseline() -> Row {
    row(Port::None, "none (baseline)", Vec::new(), Kills::none())
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Every port × fault, without kills.
fn faults() -> Vec<Row> {
    use Fault::*;
    use Port::*;
    let any = Rule::any;
    let mut rows = vec![
        row(GitHub, "500", vec![any(Status(500), 0.3)], Kills::none()),
        row(GitHub, "502", vec![any(Status(502), 0.3)], Kills::none()),
        row(GitHub, "503", vec![any(Status(503), 0.3)], Kills::none()),
        row(
            GitHub,
            "429 Retry-After 1",
            vec![any(RateLimited { retry_after: 1 }, 0.3)],
            Kills::none(),
        ),
        row(
            GitHub,
            "timeout (held 10 s, then cut)",
            vec![any(Timeout { hold: secs(10) }, 0.1)],
            Kills::none(),
        ),
        row(
            GitHub,
            "lost answer on writes",
            vec![Rule::writes(LostAnswer, 0.3)],
            Kills::none(),
        ),
        row(GitHub, "down 20 s", vec![any(Down, 1.0)], Kills::none()),
        row(
            Kubernetes,
            "403",
            vec![any(Status(403), 0.1)],
            Kills::none(),
        ),
        row(
            Kubernetes,
            "500",
            vec![any(Status(500), 0.2)],
            Kills::none(),
        ),
        row(
            Kubernetes,
            "503",
            vec![any(Status(503), 0.2)],
            Kills::none(),
        ),
        row(
            Kubernetes,
            "timeout (held 10 s > 8 s)",
            vec![any(Timeout { hold: secs(10) }, 0.1)],
            Kills::none(),
        ),
        row(Kubernetes, "down 20 s", vec![any(Down, 1.0)], Kills::none()),
        row(Prometheus, "down", vec![any(Down, 1.0)], Kills::none()),
        row(
            Prometheus,
            "503",
            vec![any(Status(503), 0.5)],
            Kills::none(),
        ),
        row(
            Prometheus,
            "timeout (held 35 s > 30 s)",
            vec![any(Timeout { hold: secs(35) }, 0.3)],
            Kills::none(),
        ),
        row(
            Model,
            "slow (1.5 s)",
            vec![any(
                Slow {
                    delay: Duration::from_millis(1500),
                },
                1.0,
            )],
            Kills::none(),
        ),
        row(
            Model,
            "timeout (held 5 s > 3 s)",
            vec![any(Timeout { hold: secs(5) }, 1.0)],
            Kills::none(),
        ),
        row(Model, "500", vec![any(Status(500), 1.0)], Kills::none()),
        row(Model, "garbage", vec![any(Garbage, 1.0)], Kills::none()),
        row(
            Holmes,
            "crash (500)",
            vec![any(Status(500), 1.0)],
            Kills::none(),
        ),
        row(Holmes, "crash (reset)", vec![any(Down, 1.0)], Kills::none()),
        row(Holmes, "garbage", vec![any(Garbage, 1.0)], Kills::none()),
    ];
    for r in &mut rows {
        if r.fault.starts_with("down 20 s") {
            r.heal_after = Some(secs(20));
        }
    }
    rows
}

/// The full matrix: kills alone, then every fault without kills and again with a kill right
/// after the 202 and at a quarter, half and three quarters of the way.
pub fn full() -> Vec<Row> {
    let kills = Kills::at(true, &[0.25, 0.5, 0.75]);
    let mut rows = vec![row(Port::None, "none", Vec::new(), kills.clone())];
    for r in faults() {
        rows.push(r.clone());
        rows.push(Row {
            kills: kills.clone(),
            seed: r.seed + 1,
            ..r
        });
    }
    rows
}

/// The default run (in the test suite): a few rows, a few kills.
pub fn short() -> Vec<Row> {
    let pick = |port: Port, fault: &str, kills: Kills| {
        let mut r = faults()
            .into_iter()
            .find(|r| r.port == port && r.fault.starts_with(fault))
            .unwrap();
        r.kills = kills;
        r
    };
    vec![
        row(Port::None, "none", Vec::new(), Kills::at(true, &[0.5])),
        pick(Port::GitHub, "lost answer", Kills::at(false, &[0.5])),
        pick(Port::Model, "garbage", Kills::none()),
        pick(Port::Holmes, "crash (500)", Kills::at(true, &[])),
    ]
}
