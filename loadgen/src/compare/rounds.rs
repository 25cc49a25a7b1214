//! Rounds until resolved: every scenario gets `--repeat` rounds (each round runs
//! every server once, interleaved), then only the scenarios whose answer is
//! still *undecided* get more, until they resolve, reach `--max-rounds`, or the
//! next round would overrun `--budget`. The summary says per scenario how many
//! rounds it got and why it stopped.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `--budget` by default: the full matrix on a 2-CPU machine in about 20 min.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(20 * 60);
/// `--repeat` by default: the fewest rounds an exact 95 % interval needs.
pub const DEFAULT_MIN_ROUNDS: u32 = super::paired::MIN_ROUNDS_FOR_INTERVAL as u32;
/// `--max-rounds` by default.
pub const DEFAULT_MAX_ROUNDS: u32 = 30;

/// Why a scenario got no more rounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Every row of its answer is decided (better or equivalent).
    Resolved,
    /// Its next round would have overrun `--budget`.
    Budget,
    /// It reached `--max-rounds`.
    MaxRounds,
    /// It has no answer row to resolve (it describes, e.g. `scaling`), so it
    /// gets the minimum rounds only.
    NoAnswer,
}

impl Stop {
    pub fn describe(self) -> &'static str {
        match self {
            Stop::Resolved => "resolved",
            Stop::Budget => "budget spent (its next round would not fit in --budget)",
            Stop::MaxRounds => "--max-rounds reached",
            Stop::NoAnswer => "no answer row to resolve: the minimum rounds",
        }
    }
}

/// One scenario's rounds in `raw.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRounds {
    pub scenario: String,
    pub rounds: u32,
    pub stop: Stop,
    /// Seconds its rounds took, all together.
    pub seconds: f64,
}

/// The loop's view of one scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub scenario: String,
    pub rounds: u32,
    /// Whether its answer is decided after the rounds so far.
    pub resolved: bool,
    /// It has no answer rows at all (descriptive scenarios).
    pub no_answer: bool,
    /// Seconds its rounds took so far.
    pub seconds: f64,
    /// Seconds a round is expected to take before one has been measured.
    pub estimate: f64,
    pub stop: Option<Stop>,
}

impl State {
    pub fn new(scenario: &str, estimate: f64) -> State {
        State {
            scenario: scenario.to_string(),
            rounds: 0,
            resolved: false,
            no_answer: false,
            seconds: 0.0,
            estimate,
            stop: None,
        }
    }

    /// Expected seconds of its next round: the mean of those measured, else the estimate.
    pub fn next_round_s(&self) -> f64 {
        if self.rounds == 0 {
            self.estimate
        } else {
            self.seconds / f64::from(self.rounds)
        }
    }
}

/// The limits of the loop.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub min_rounds: u32,
    pub max_rounds: u32,
    pub budget: Duration,
}

/// Which scenarios (indices into `states`) run in the next round, given the
/// seconds already `spent`; marks the ones that stop now. Empty when all have
/// stopped.
pub fn plan_round(states: &mut [State], spent: f64, l: Limits) -> Vec<usize> {
    let mut next = Vec::new();
    let mut at = spent;
    for (i, s) in states.iter_mut().enumerate() {
        if s.stop.is_some() {
            continue;
        }
        if s.rounds >= l.min_rounds && (s.resolved || s.no_answer) {
            s.stop = Some(if s.no_answer {
                Stop::NoAnswer
            } else {
                Stop::Resolved
            });
            continue;
        }
        if s.rounds >= l.max_rounds {
            s.stop = Some(Stop::MaxRounds);
            continue;
        }
        let need = s.next_round_s();
        if at + need > l.budget.as_secs_f64() {
            s.stop = Some(Stop::Budget);
            continue;
        }
        at += need;
        next.push(i);
    }
    next
}

/// Seconds that would give every scenario `min_rounds` rounds, from the
/// rounds' measured times (a scenario with none measured counts as unknown:
/// `None`).
pub fn budget_for_minimum(rounds: &[ScenarioRounds], min_rounds: u32) -> Option<f64> {
    rounds
        .iter()
        .map(|r| (r.rounds > 0).then(|| r.seconds / f64::from(r.rounds) * f64::from(min_rounds)))
        .sum()
}

/// The record of the loop for `raw.json`.
pub fn record(states: &[State]) -> Vec<ScenarioRounds> {
    states
        .iter()
        .map(|s| ScenarioRounds {
            scenario: s.scenario.clone(),
            rounds: s.rounds,
            stop: s.stop.unwrap_or(Stop::MaxRounds),
            seconds: s.seconds,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the planner with `resolve(scenario, rounds)` standing in for the
    /// answer and `cost` seconds per round of each scenario.
    fn simulate(
        names: &[(&str, f64)],
        l: Limits,
        resolve: impl Fn(&str, u32) -> bool,
    ) -> Vec<State> {
        let mut states: Vec<State> = names.iter().map(|(n, c)| State::new(n, *c)).collect();
        let mut spent = 0.0;
        loop {
            let next = plan_round(&mut states, spent, l);
            if next.is_empty() {
                return states;
            }
            for i in next {
                let s = &mut states[i];
                let cost = names[i].1;
                s.rounds += 1;
                s.seconds += cost;
                spent += cost;
                s.resolved = resolve(&s.scenario, s.rounds);
            }
        }
    }

    const LIMITS: Limits = Limits {
        min_rounds: 6,
        max_rounds: 30,
        budget: Duration::from_secs(20 * 60),
    };

    #[test]
    fn the_budget_stops_a_run_that_cannot_resolve() {
        // Nothing ever resolves; 60 s rounds of two scenarios fit 10 rounds in 20 min.
        let s = simulate(&[("a", 60.0), ("b", 60.0)], LIMITS, |_, _| false);
        assert_eq!(s[0].rounds, 10);
        assert_eq!(s[1].rounds, 10);
        assert!(s.iter().all(|s| s.stop == Some(Stop::Budget)), "{s:?}");
        assert!(s.iter().map(|s| s.seconds).sum::<f64>() <= 1200.0);
    }

    #[test]
    fn resolved_scenarios_stop_after_the_minimum_and_free_the_budget() {
        // a resolves at once but still gets the minimum 6 rounds; b never
        // resolves and gets the rest of the budget: (1200 - 6·50) / 50 = 18 more.
        let s = simulate(&[("a", 50.0), ("b", 50.0)], LIMITS, |n, _| n == "a");
        assert_eq!((s[0].rounds, s[0].stop), (6, Some(Stop::Resolved)));
        assert_eq!((s[1].rounds, s[1].stop), (18, Some(Stop::Budget)));
        // b resolving after 8 rounds stops there.
        let s = simulate(&[("a", 50.0), ("b", 50.0)], LIMITS, |n, r| {
            n == "a" || r >= 8
        });
        assert_eq!((s[1].rounds, s[1].stop), (8, Some(Stop::Resolved)));
    }

    #[test]
    fn max_rounds_caps_a_cheap_scenario() {
        let s = simulate(&[("a", 1.0)], LIMITS, |_, _| false);
        assert_eq!((s[0].rounds, s[0].stop), (30, Some(Stop::MaxRounds)));
        // --quick: one round, whatever the answer.
        let quick = Limits {
            min_rounds: 1,
            max_rounds: 1,
            ..LIMITS
        };
        let s = simulate(&[("a", 1.0)], quick, |_, _| false);
        assert_eq!((s[0].rounds, s[0].stop), (1, Some(Stop::MaxRounds)));
    }

    #[test]
    fn a_scenario_without_answer_rows_gets_the_minimum_only() {
        let mut states = vec![State::new("scaling", 1.0)];
        states[0].no_answer = true;
        let mut spent = 0.0;
        while !plan_round(&mut states, spent, LIMITS).is_empty() {
            states[0].rounds += 1;
            spent += 1.0;
        }
        assert_eq!(
            (states[0].rounds, states[0].stop),
            (6, Some(Stop::NoAnswer))
        );
    }

    #[test]
    fn the_budget_the_minimum_would_need() {
        let r = |rounds: u32, seconds: f64| ScenarioRounds {
            scenario: "x".into(),
            rounds,
            stop: Stop::Budget,
            seconds,
        };
        // 3 rounds in 60 s and 2 in 50 s: six of each is 120 + 150 = 270 s.
        assert_eq!(
            budget_for_minimum(&[r(3, 60.0), r(2, 50.0)], 6),
            Some(270.0)
        );
        assert_eq!(budget_for_minimum(&[r(3, 60.0), r(0, 0.0)], 6), None);
    }

    #[test]
    fn a_round_that_does_not_fit_is_not_started() {
        // One 30-minute round can never fit in 20 minutes: zero rounds, budget.
        let s = simulate(&[("a", 1800.0), ("b", 10.0)], LIMITS, |_, _| true);
        assert_eq!((s[0].rounds, s[0].stop), (0, Some(Stop::Budget)));
        assert_eq!((s[1].rounds, s[1].stop), (6, Some(Stop::Resolved)));
        assert_eq!(record(&s)[0].stop, Stop::Budget);
    }
}
