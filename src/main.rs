//! The `squad` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use squad::simulation::{self, SimulationOptions};
use squad_config::{Scenario, Settings};
use squad_runtime::Faults;

#[derive(Parser)]
#[command(
    name = "squad",
    version,
    about = "A crew of AI agents that handles Kubernetes incidents end to end"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The scenarios `squad simulate` ships with.
    Scenarios {
        #[command(subcommand)]
        command: ScenariosCommand,
    },
    /// Runs an incident end to end with no cluster, no GitHub and no API key.
    Simulate {
        /// A shipped scenario name (see `squad scenarios list`) or a scenario directory.
        scenario: String,
        /// Where the GitOps repo, the simulated GitHub and the incident store go; a second run on
        /// the same directory resumes the incident there.
        #[arg(long, default_value = "sim-out")]
        out: PathBuf,
        /// Act as the human reviewer: merge the remediation PR, then let Ralph verify the fix.
        #[arg(long)]
        approve: bool,
        /// Print what each crew member would do; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Print the machine-readable summary on stdout.
        #[arg(long)]
        json: bool,
        /// Start over: delete an earlier simulation in --out first.
        #[arg(long)]
        fresh: bool,
        /// A squad.toml with settings (sizing rule, supervision, verification window).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScenariosCommand {
    /// Lists the shipped scenarios.
    List,
}

fn load_settings(path: Option<&PathBuf>) -> anyhow::Result<Settings> {
    match path {
        None => Ok(Settings::default()),
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?;
            Ok(Settings::from_toml(&p.display().to_string(), &text)?)
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SQUAD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Scenarios {
            command: ScenariosCommand::List,
        } => {
            for name in Scenario::embedded_names() {
                let s = Scenario::embedded(&name)?;
                println!("{name:<12} {}", s.description);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate {
            scenario,
            out,
            approve,
            dry_run,
            json,
            fresh,
            config,
        } => {
            let scenario = Scenario::load(&scenario)?;
            let settings = load_settings(config.as_ref())?;
            let abort_after_events = match std::env::var("SQUAD_FAULT_ABORT_AFTER_EVENTS") {
                Ok(v) => Some(v.parse().map_err(|_| {
                    anyhow::anyhow!(
                        "SQUAD_FAULT_ABORT_AFTER_EVENTS: expected a number of events, got {v:?}"
                    )
                })?),
                Err(_) => None,
            };
            // Virtual time: the runtime starts paused, so the 24 h history and the observation
            // window take milliseconds.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .start_paused(true)
                .build()?;
            let outcome = rt.block_on(simulation::run(SimulationOptions {
                scenario,
                out,
                approve,
                dry_run,
                fresh,
                settings,
                faults: Faults::none(),
                abort_after_events,
            }))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&outcome.summary)?);
            } else if dry_run {
                println!(
                    "Dry run of {}: nothing was written. The crew would:\n",
                    outcome.summary.scenario
                );
                for t in &outcome.summary.timeline {
                    if t.event.starts_with("starting: ")
                        || t.event.starts_with("diagnosis")
                        || t.event.starts_with("assigned")
                    {
                        println!(
                            "  {:<8} {}",
                            t.actor,
                            t.event.trim_start_matches("starting: ")
                        );
                    }
                }
                println!("\nWrites that were not made:");
                for i in &outcome.intents {
                    println!("  - {}", i.what);
                }
            } else {
                print!("{}", outcome.summary.render());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
