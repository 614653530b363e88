//! Checks of the `cohorts` and `lifetime_value` sections: the features they name exist and are
//! of the right kind, and their numbers are in range. Types that only the data knows (a date,
//! a number) are checked when the features are planned.

use crate::diagnostic::{PipelineFile, Problem, available_help, codes};
use crate::pipeline::model::{ColumnType, MAX_COHORT_PERIODS, PipelineSpec};

/// Check the cohorts and lifetime-value sections of `spec`, appending problems.
pub fn check_cohorts(spec: &PipelineSpec, file: &PipelineFile, problems: &mut Vec<Problem>) {
    let feature_names = || spec.features.iter().map(|f| f.name.as_str());
    let unknown = |path: &str, name: &str| {
        file.at(
            codes::UNKNOWN_FEATURE,
            path,
            format!("unknown feature `{name}`"),
        )
        .help(available_help(name, "feature", feature_names()))
    };
    if let Some(cohorts) = &spec.cohorts {
        match spec.features.iter().find(|f| f.name == cohorts.by) {
            None => problems.push(unknown("cohorts.by", &cohorts.by)),
            Some(feature) => {
                if let Some(declared) = feature.column_type
                    && !matches!(declared, ColumnType::Date | ColumnType::Timestamp)
                {
                    problems.push(
                        file.at(
                            codes::COHORTS,
                            "cohorts.by",
                            format!(
                                "cohorts group customers by the period of a date, and feature `{}` is declared {}",
                                cohorts.by,
                                declared.name()
                            ),
                        )
                        .help("name a date or timestamp feature, e.g. `signup_date`"),
                    );
                }
            }
        }
        match spec.features.iter().find(|f| f.name == cohorts.active) {
            None => problems.push(unknown("cohorts.active", &cohorts.active)),
            Some(feature) => match &feature.aggregate {
                None => problems.push(
                    file.at(
                        codes::COHORTS,
                        "cohorts.active",
                        format!(
                            "feature `{}` is not an aggregate over an event source, so it cannot be recomputed as of each period's end",
                            cohorts.active
                        ),
                    )
                    .help("name an aggregate feature such as `active_days_90` (`aggregate: { source: events, expr: count(*), window_days: 90 }`)"),
                ),
                Some(aggregate) => {
                    let timed = spec
                        .sources
                        .get(&aggregate.source)
                        .is_some_and(|s| s.time_column.is_some());
                    if !timed {
                        problems.push(
                            file.at(
                                codes::COHORTS,
                                "cohorts.active",
                                format!(
                                    "feature `{}` aggregates source `{}`, which has no `time_column`, so it cannot be computed as of each period's end",
                                    cohorts.active, aggregate.source
                                ),
                            )
                            .help("aggregate an event source with a `time_column`"),
                        );
                    }
                }
            },
        }
        if !(1..=MAX_COHORT_PERIODS).contains(&cohorts.periods) {
            problems.push(
                file.at(
                    codes::COHORTS,
                    "cohorts.periods",
                    format!(
                        "{} periods is out of range: cohorts cover 1 to {MAX_COHORT_PERIODS} periods",
                        cohorts.periods
                    ),
                )
                .help("e.g. `periods: 12` for a year of monthly cohorts"),
            );
        }
    }
    if let Some(ltv) = &spec.lifetime_value {
        if spec.cohorts.is_none() {
            problems.push(
                file.at_key(
                    codes::COHORTS,
                    "lifetime_value",
                    "lifetime value needs `cohorts`: its retention and periods come from the cohort tables",
                )
                .help("declare `cohorts: { by: signup_date, period: month, active: active_days_90 }`"),
            );
        }
        if !feature_names().any(|name| name == ltv.value) {
            problems.push(unknown("lifetime_value.value", &ltv.value));
        }
        if !(ltv.margin.is_finite() && (0.0..=1.0).contains(&ltv.margin)) {
            problems.push(
                file.at(
                    codes::COHORTS,
                    "lifetime_value.margin",
                    format!("margin {} is not a share between 0 and 1", ltv.margin),
                )
                .help("margins are fractions: 80% is 0.8"),
            );
        }
        if ltv.max_periods == 0 {
            problems.push(
                file.at(
                    codes::COHORTS,
                    "lifetime_value.max_periods",
                    "an expected lifetime capped at 0 periods holds no value",
                )
                .help("e.g. `max_periods: 60` for five years of monthly periods"),
            );
        }
    }
}
