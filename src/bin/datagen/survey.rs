//! Needs-survey answers for the SaaS example (`--survey-out`): a share of customers answer a
//! short survey about their jobs to be done, how much the main one hurts, how they measure
//! success, what they would pay, and how likely they are to recommend the product (NPS).
//!
//! Every customer's answers come from a generator of their own, seeded from the customer id, so
//! asking for the survey leaves the other files byte-identical.

use std::sync::Arc;

use chrono::{Days, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Float64Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Archetype, batch, days_since_epoch};

/// The jobs customers hire the product for (multi-select), each with the success metrics
/// respondents name when it is their main job.
const JOBS: &[(&str, &[&str])] = &[
    (
        "track_kpis",
        &["weekly KPI review on time", "one dashboard for the board"],
    ),
    (
        "find_churn_risk",
        &[
            "accounts saved from churn",
            "churn risk flagged a month early",
        ],
    ),
    (
        "automate_reporting",
        &[
            "hours saved on reporting",
            "reports sent without manual work",
        ],
    ),
    (
        "share_insights",
        &[
            "teams reading the weekly digest",
            "decisions citing our data",
        ],
    ),
    (
        "prove_roi",
        &["ROI shown to finance", "renewal approved without a fight"],
    ),
];

/// Days before the as-of date the survey ran over.
const FIELD_DAYS: u64 = 120;

/// The rows of both survey files for a chunk of customers.
pub struct Survey {
    ids: Int64Builder,
    answered_on: Date32Builder,
    primary_job: StringBuilder,
    pain: Int32Builder,
    metric: StringBuilder,
    pay: Float64Builder,
    nps: Int32Builder,
    job_ids: Int64Builder,
    job_answered_on: Date32Builder,
    jobs: StringBuilder,
}

/// Who a customer is, as far as their answers depend on it.
pub struct Respondent {
    pub id: i64,
    pub archetype: Archetype,
    pub plan: &'static str,
    pub signup: NaiveDate,
}

impl Survey {
    pub fn new() -> Self {
        Survey {
            ids: Int64Builder::new(),
            answered_on: Date32Builder::new(),
            primary_job: StringBuilder::new(),
            pain: Int32Builder::new(),
            metric: StringBuilder::new(),
            pay: Float64Builder::new(),
            nps: Int32Builder::new(),
            job_ids: Int64Builder::new(),
            job_answered_on: Date32Builder::new(),
            jobs: StringBuilder::new(),
        }
    }

    /// Add `who`'s answers, if they answered: engaged and struggling customers answer more
    /// often than dormant ones, and about 3% answer after the as-of date (pipelines ignore them).
    pub fn answer(&mut self, seed: u64, as_of: NaiveDate, who: &Respondent) {
        let mut rng =
            ChaCha8Rng::seed_from_u64(seed.wrapping_mul(104_729) ^ (who.id as u64).rotate_left(29));
        let answers = match who.archetype {
            Archetype::Power => 0.6,
            Archetype::Regular => 0.45,
            Archetype::Occasional => 0.25,
            Archetype::Struggling => 0.4,
            Archetype::Dormant => 0.1,
        };
        if !rng.random_bool(answers) {
            return;
        }
        let tenure = (as_of - who.signup).num_days().max(1) as u64;
        let answered_on = if rng.random_bool(0.03) {
            as_of.checked_add_days(Days::new(rng.random_range(0..14)))
        } else {
            as_of.checked_sub_days(Days::new(rng.random_range(1..=FIELD_DAYS.min(tenure))))
        }
        .unwrap_or(as_of);
        let primary = primary_job(&mut rng, who.archetype);
        let (job, metrics) = JOBS[primary];
        // The main job plus up to two others, each one row of survey_jobs.csv.
        let mut chosen = vec![primary];
        for _ in 0..rng.random_range(0..=2) {
            let other = rng.random_range(0..JOBS.len());
            if !chosen.contains(&other) {
                chosen.push(other);
            }
        }
        let date = days_since_epoch(answered_on);
        self.ids.append_value(who.id);
        self.answered_on.append_value(date);
        self.primary_job.append_value(job);
        self.pain
            .append_value(pain_intensity(&mut rng, who.archetype, job));
        self.metric
            .append_value(metrics[rng.random_range(0..metrics.len())]);
        // About one in ten skips the price question.
        let pay = rng
            .random_bool(0.9)
            .then(|| willingness_to_pay(&mut rng, who.plan));
        self.pay.append_option(pay);
        let nps = rng
            .random_bool(0.95)
            .then(|| recommend(&mut rng, who.archetype));
        self.nps.append_option(nps);
        for j in chosen {
            self.job_ids.append_value(who.id);
            self.job_answered_on.append_value(date);
            self.jobs.append_value(JOBS[j].0);
        }
    }

    /// The answers (survey.csv) and the jobs, one row per job chosen (survey_jobs.csv).
    pub fn finish(mut self) -> (RecordBatch, RecordBatch) {
        let answers: Vec<ArrayRef> = vec![
            Arc::new(self.ids.finish()),
            Arc::new(self.answered_on.finish()),
            Arc::new(self.primary_job.finish()),
            Arc::new(self.pain.finish()),
            Arc::new(self.metric.finish()),
            Arc::new(self.pay.finish()),
            Arc::new(self.nps.finish()),
        ];
        let jobs: Vec<ArrayRef> = vec![
            Arc::new(self.job_ids.finish()),
            Arc::new(self.job_answered_on.finish()),
            Arc::new(self.jobs.finish()),
        ];
        (batch(answers_schema(), answers), batch(jobs_schema(), jobs))
    }
}

/// Customer-success teams (regular users) hunt churn risk, power users automate, struggling
/// and dormant customers mostly need to prove the product pays off.
fn primary_job(rng: &mut ChaCha8Rng, archetype: Archetype) -> usize {
    let weights: [u32; 5] = match archetype {
        Archetype::Power => [10, 20, 45, 10, 15],
        Archetype::Regular => [20, 35, 15, 15, 15],
        Archetype::Occasional => [35, 10, 10, 25, 20],
        Archetype::Struggling => [25, 10, 10, 15, 40],
        Archetype::Dormant => [30, 10, 10, 20, 30],
    };
    let mut draw = rng.random_range(0..weights.iter().sum::<u32>());
    for (i, weight) in weights.iter().enumerate() {
        if draw < *weight {
            return i;
        }
        draw -= weight;
    }
    0
}

/// Pain of the main job on a 1-5 Likert scale: churn hurts, dormant customers feel little.
fn pain_intensity(rng: &mut ChaCha8Rng, archetype: Archetype, job: &str) -> i32 {
    let base: i32 = match archetype {
        Archetype::Struggling => rng.random_range(3..=5),
        Archetype::Power => rng.random_range(2..=5),
        Archetype::Dormant => rng.random_range(1..=3),
        _ => rng.random_range(1..=5),
    };
    let churn = i32::from(job == "find_churn_risk" && rng.random_bool(0.5));
    (base + churn).min(5)
}

/// A monthly price in USD, rounded to 5, in line with the plan paid today.
fn willingness_to_pay(rng: &mut ChaCha8Rng, plan: &str) -> f64 {
    let (low, high) = match plan {
        "free" => (0.0, 40.0),
        "starter" => (25.0, 120.0),
        "pro" => (100.0, 450.0),
        _ => (400.0, 2000.0),
    };
    (rng.random_range(low..high) / 5.0_f64).round() * 5.0
}

/// "How likely are you to recommend us?" from 0 to 10.
fn recommend(rng: &mut ChaCha8Rng, archetype: Archetype) -> i32 {
    let (low, high) = match archetype {
        Archetype::Power => (7, 10),
        Archetype::Regular => (5, 10),
        Archetype::Occasional => (3, 9),
        Archetype::Struggling => (0, 7),
        Archetype::Dormant => (0, 8),
    };
    rng.random_range(low..=high)
}

fn answers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("answered_on", DataType::Date32, false),
        Field::new("primary_job", DataType::Utf8, false),
        Field::new("pain_intensity", DataType::Int32, false),
        Field::new("success_metric", DataType::Utf8, false),
        Field::new("willingness_to_pay", DataType::Float64, true),
        Field::new("nps", DataType::Int32, true),
    ]))
}

fn jobs_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("answered_on", DataType::Date32, false),
        Field::new("job", DataType::Utf8, false),
    ]))
}

/// The schemas of survey.csv and survey_jobs.csv.
pub fn schemas() -> (SchemaRef, SchemaRef) {
    (answers_schema(), jobs_schema())
}
