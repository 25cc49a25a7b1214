//! The scheduling knobs (`--tokio-runtime`, `--green-sched`, `--green-reactor`,
//! `--work-slice`) and the suite's rows that name them ([`Variant`]).

use std::fmt;

use super::Model;

/// `--tokio-runtime`: how the tokio model schedules its connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum TokioRuntime {
    /// One `current_thread` runtime per worker, each with its own listener.
    #[default]
    PerWorker,
    /// One work-stealing multi-thread runtime with `--workers` threads.
    MultiThread,
}

/// `--green-sched`: where a runnable green thread may run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum GreenSched {
    /// A green thread runs on the worker that accepted it, until it ends.
    #[default]
    Local,
    /// A worker with nothing runnable steals runnable green threads from others.
    Steal,
}

/// `--green-reactor`: who owns the io_uring under the green threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum GreenReactor {
    /// One ring per worker, entered by the worker between green threads.
    #[default]
    PerWorker,
    /// One reactor thread owns the only ring; workers run green threads only.
    Dedicated,
}

/// How a model schedules work: the knobs the scheduling variants turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scheduling {
    pub tokio_runtime: TokioRuntime,
    pub green_sched: GreenSched,
    pub green_reactor: GreenReactor,
    /// `--work-slice`: the longest a CPU-bound handler (`/work`) runs before it
    /// gives the worker back; zero = never.
    pub work_slice: std::time::Duration,
}

/// Default `--work-slice`.
pub const DEFAULT_WORK_SLICE: std::time::Duration = std::time::Duration::from_micros(500);

impl Default for Scheduling {
    fn default() -> Self {
        Scheduling {
            tokio_runtime: TokioRuntime::default(),
            green_sched: GreenSched::default(),
            green_reactor: GreenReactor::default(),
            work_slice: DEFAULT_WORK_SLICE,
        }
    }
}

/// A model with its scheduling settings: one row of the per-model test suite and
/// of `bench compare`. `--model` accepts every name (`green+steal` is
/// `--model green --green-sched steal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    Callback,
    Tokio,
    /// tokio, `--tokio-runtime multi-thread`.
    TokioMulti,
    Green,
    /// green, `--green-sched steal`.
    GreenSteal,
    /// green, `--green-reactor dedicated`.
    GreenDedicated,
}

impl Variant {
    pub const ALL: [Variant; 6] = [
        Variant::Callback,
        Variant::Tokio,
        Variant::TokioMulti,
        Variant::Green,
        Variant::GreenSteal,
        Variant::GreenDedicated,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Variant::Callback => "callback",
            Variant::Tokio => "tokio",
            Variant::TokioMulti => "tokio+multi",
            Variant::Green => "green",
            Variant::GreenSteal => "green+steal",
            Variant::GreenDedicated => "green+dedicated",
        }
    }

    pub fn model(self) -> Model {
        match self {
            Variant::Callback => Model::Callback,
            Variant::Tokio | Variant::TokioMulti => Model::Tokio,
            Variant::Green | Variant::GreenSteal | Variant::GreenDedicated => Model::Green,
        }
    }

    pub fn uses_io_uring(self) -> bool {
        self.model().uses_io_uring()
    }

    /// The scheduling this variant stands for, from the defaults.
    pub fn scheduling(self) -> Scheduling {
        let mut s = Scheduling::default();
        match self {
            Variant::Callback | Variant::Tokio | Variant::Green => {}
            Variant::TokioMulti => s.tokio_runtime = TokioRuntime::MultiThread,
            Variant::GreenSteal => s.green_sched = GreenSched::Steal,
            Variant::GreenDedicated => s.green_reactor = GreenReactor::Dedicated,
        }
        s
    }

    /// The explicit flags equal to this variant's suffix (`--model green+steal` =
    /// `--model green` plus these).
    pub fn flags(self) -> &'static [&'static str] {
        match self {
            Variant::Callback | Variant::Tokio | Variant::Green => &[],
            Variant::TokioMulti => &["--tokio-runtime", "multi-thread"],
            Variant::GreenSteal => &["--green-sched", "steal"],
            Variant::GreenDedicated => &["--green-reactor", "dedicated"],
        }
    }
}

impl From<Model> for Variant {
    fn from(m: Model) -> Variant {
        match m {
            Model::Callback => Variant::Callback,
            Model::Tokio => Variant::Tokio,
            Model::Green => Variant::Green,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Variant::ALL.iter().map(|v| v.name()).collect();
                format!("unknown model '{s}' (expected {})", names.join(", "))
            })
    }
}
