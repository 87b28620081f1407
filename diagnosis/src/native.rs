//! The native analyzers as squad's own diagnoser: the facts gathered once through the `Cluster`
//! port, the shared readings, then the families' detectors in the registry's order.

use std::sync::Arc;

use async_trait::async_trait;
use squad_protocols::{Diagnosis, DiagnosisSource, Evidence};
use squad_runtime::Clock;
use squad_runtime::ports::{Cluster, Diagnoser, DiagnosisRequest, PortResult};

use crate::{Facts, Readings, families, gather};

pub struct NativeDiagnoser {
    cluster: Arc<dyn Cluster>,
    clock: Clock,
}

impl NativeDiagnoser {
    pub fn new(cluster: Arc<dyn Cluster>, clock: Clock) -> Self {
        Self { cluster, clock }
    }
}

/// The diagnosis the facts support. Pure.
pub fn diagnose(facts: &Facts) -> Diagnosis {
    let readings = Readings::of(facts);
    let (family, detection) = families::detect(facts, &readings);
    let mut d = Diagnosis::new(
        DiagnosisSource::Native,
        family.root_cause(),
        detection.summary,
    );
    d.reason = family.reason().map(str::to_owned);
    let mut evidence = readings.evidence;
    evidence.extend(detection.evidence);
    evidence.extend(facts.notes.iter().map(|n| Evidence {
        source: "note".into(),
        observation: n.clone(),
    }));
    d.evidence = evidence;
    d.recommendations = detection.recommendations;
    d.confidence = detection.confidence;
    d.signals = readings.signals;
    if let Some(own) = detection.signals {
        d.signals
            .family
            .insert(family.root_cause().as_str().to_owned(), own);
    }
    d
}

#[async_trait]
impl Diagnoser for NativeDiagnoser {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn diagnose(&self, req: &DiagnosisRequest) -> PortResult<Diagnosis> {
        let facts = gather(
            self.cluster.as_ref(),
            &req.alert,
            &req.workload,
            self.clock.now(),
            &families::lookups,
        )
        .await?;
        Ok(diagnose(&facts))
    }
}
