//! `segflow-datagen`: deterministic synthetic customer data for the example pipelines and for
//! benchmarks. The same seed and options always give the same files.
//!
//! Customers follow hidden behaviour archetypes (power, regular, occasional, struggling,
//! dormant) so that the example's segments are meaningful; events are heavy-tailed across
//! customers (about 20 per customer on average), and a few rows fall after the as-of date so that
//! pipelines are seen to ignore them.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Days, NaiveDate, NaiveDateTime};
use clap::{Parser, ValueEnum};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

// The crate root is this file, so its module folder is named explicitly.
#[path = "datagen/survey.rs"]
mod survey;

/// Generate example tables: `saas` (customers, events, invoices, tickets) or `retail`
/// (customers, transactions).
#[derive(Debug, Parser)]
#[command(name = "segflow-datagen", version)]
struct Args {
    /// Which example's tables to make.
    #[arg(long, value_enum, default_value = "saas")]
    dataset: Dataset,
    /// Number of customers.
    #[arg(long, default_value_t = 3000)]
    customers: u64,
    /// Random seed; the same seed gives the same files.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// The as-of date the data is generated around.
    #[arg(long, default_value = "2026-10-01")]
    as_of: NaiveDate,
    /// Signup dates count back from this date (default: the as-of date). Keep it fixed to make
    /// a later quarter of the same customers: `--as-of 2027-01-01 --reference-date 2026-10-01`.
    #[arg(long)]
    reference_date: Option<NaiveDate>,
    /// Share of customers (0 to 1) whose behaviour archetype is drawn again, for a later quarter
    /// in which some customers change behaviour.
    #[arg(long, default_value_t = 0.0)]
    behaviour_change: f64,
    /// Leave out every customer whose id is a multiple of this, as if they had left (for a later
    /// quarter). 0 keeps everyone.
    #[arg(long, default_value_t = 0)]
    drop_every: u64,
    /// Keep history: customers.csv gets `valid_from` and `valid_to` columns and a second row for
    /// customers whose plan changed (a slowly changing dimension, like a dbt snapshot).
    #[arg(long)]
    history: bool,
    /// Write the export as it looked at this date instead: customers who had signed up by then,
    /// with the plan valid then (`valid_to` still empty), and only the events, invoices and tickets
    /// before it. The same seed and as-of date give the same customers as `--history`.
    #[arg(long, value_name = "DATE")]
    export_as_of: Option<NaiveDate>,
    /// Folder to write into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// `example`: customers.csv, events.parquet, invoices.csv, tickets.ndjson (every format
    /// segflow reads); `parquet`: every table as Parquet, for benchmarks.
    #[arg(long, value_enum, default_value = "example")]
    format: Layout,
    /// Also write needs-survey answers of a share of the customers (survey.csv, and
    /// survey_jobs.csv with one row per job chosen) to this folder (`saas` only). The other files
    /// are the same with or without it.
    #[arg(long, value_name = "DIR")]
    survey_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Dataset {
    Saas,
    Retail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Layout {
    Example,
    Parquet,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Archetype {
    Power,
    Regular,
    Occasional,
    Struggling,
    Dormant,
}

const INDUSTRIES: &[&str] = &[
    "software",
    "retail",
    "finance",
    "healthcare",
    "education",
    "manufacturing",
    "media",
    "agency",
];
const COUNTRIES: &[&str] = &["US", "GB", "DE", "FR", "NL", "CA", "AU", "IN", "BR", "JP"];
const FEATURES: &[&str] = &[
    "dashboard",
    "reports",
    "export",
    "import",
    "alerts",
    "api",
    "sso",
    "integrations",
    "segments",
    "funnels",
    "retention",
    "cohorts",
    "notebooks",
    "sharing",
    "comments",
    "templates",
    "billing",
    "audit_log",
    "webhooks",
    "mobile",
];
const SEVERITIES: &[&str] = &["low", "medium", "high"];

/// Customers generated (and written) at a time: the tables of one chunk are built in memory and
/// appended to the files, so that memory stays bounded however many customers are asked for. The
/// random streams run on across chunks, so the files do not depend on the chunk size except for
/// where Parquet pages and row groups end; the shipped examples fit in one chunk.
const CHUNK_CUSTOMERS: u64 = 100_000;

type BoxError = Box<dyn std::error::Error>;

fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed);
    if args.dataset == Dataset::Retail {
        if args.survey_out.is_some() {
            return Err("--survey-out makes survey answers for the saas dataset only".into());
        }
        let extension = if args.format == Layout::Parquet {
            "parquet"
        } else {
            "csv"
        };
        let mut customers = Sink::create(
            &args.out.join(format!("customers.{extension}")),
            retail_customers_schema(),
        )?;
        let mut transactions = Sink::create(
            &args.out.join(format!("transactions.{extension}")),
            transactions_schema(),
        )?;
        for ids in chunks(args.customers) {
            let (c, t) = generate_retail(&args, &mut rng, ids);
            customers.write(&c)?;
            transactions.write(&t)?;
        }
        println!(
            "wrote {} customers, {} transactions to {}",
            customers.finish()?,
            transactions.finish()?,
            args.out.display()
        );
        return Ok(());
    }
    let (customers, events, invoices, tickets) = match args.format {
        Layout::Example => (
            "customers.csv",
            "events.parquet",
            "invoices.csv",
            "tickets.ndjson",
        ),
        Layout::Parquet => (
            "customers.parquet",
            "events.parquet",
            "invoices.parquet",
            "tickets.parquet",
        ),
    };
    let mut customers = Sink::create(
        &args.out.join(customers),
        customers_schema(keeps_history(&args)),
    )?;
    let mut events = Sink::create(&args.out.join(events), events_schema())?;
    let mut invoices = Sink::create(&args.out.join(invoices), invoices_schema())?;
    let mut tickets = Sink::create(&args.out.join(tickets), tickets_schema())?;
    let mut survey = match &args.survey_out {
        Some(folder) => {
            std::fs::create_dir_all(folder)?;
            let (answers, jobs) = survey::schemas();
            Some((
                Sink::create(&folder.join("survey.csv"), answers)?,
                Sink::create(&folder.join("survey_jobs.csv"), jobs)?,
            ))
        }
        None => None,
    };
    for ids in chunks(args.customers) {
        let tables = generate(&args, &mut rng, ids);
        customers.write(&tables.customers)?;
        events.write(&tables.events)?;
        invoices.write(&tables.invoices)?;
        tickets.write(&tables.tickets)?;
        if let (Some((answers, jobs)), Some((a, j))) = (&mut survey, &tables.survey) {
            answers.write(a)?;
            jobs.write(j)?;
        }
    }
    if let Some((answers, jobs)) = survey {
        println!(
            "wrote {} survey answers, {} jobs chosen",
            answers.finish()?,
            jobs.finish()?
        );
    }
    println!(
        "wrote {} customers, {} events, {} invoices, {} tickets to {}",
        customers.finish()?,
        events.finish()?,
        invoices.finish()?,
        tickets.finish()?,
        args.out.display()
    );
    Ok(())
}

/// Customer ids 1..=`customers` in chunks of [`CHUNK_CUSTOMERS`] (at least one chunk, so that
/// every file is written even with no customers).
fn chunks(customers: u64) -> Vec<RangeInclusive<i64>> {
    let last = customers as i64;
    let step = CHUNK_CUSTOMERS as i64;
    let mut out = vec![];
    let mut start = 1;
    loop {
        let end = (start + step - 1).min(last);
        out.push(start..=end);
        if end >= last {
            return out;
        }
        start = end + 1;
    }
}

struct Tables {
    customers: RecordBatch,
    events: RecordBatch,
    invoices: RecordBatch,
    tickets: RecordBatch,
    /// Survey answers and the jobs chosen, with `--survey-out`.
    survey: Option<(RecordBatch, RecordBatch)>,
}

fn days_since_epoch(date: NaiveDate) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    (date - epoch).num_days() as i32
}

fn micros(date: NaiveDate, second_of_day: u32) -> i64 {
    let time = NaiveDateTime::from(date) + chrono::Duration::seconds(i64::from(second_of_day));
    time.and_utc().timestamp_micros()
}

fn pick<'a>(rng: &mut ChaCha8Rng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn draw_archetype(rng: &mut ChaCha8Rng) -> Archetype {
    match rng.random_range(0..100) {
        0..10 => Archetype::Power,
        10..47 => Archetype::Regular,
        47..75 => Archetype::Occasional,
        75..83 => Archetype::Struggling,
        _ => Archetype::Dormant,
    }
}

fn generate(args: &Args, rng: &mut ChaCha8Rng, ids: RangeInclusive<i64>) -> Tables {
    let as_of = args.as_of;
    let reference = args.reference_date.unwrap_or(as_of);
    let day = |offset: i64| {
        if offset >= 0 {
            as_of
                .checked_add_days(Days::new(offset as u64))
                .unwrap_or(as_of)
        } else {
            as_of
                .checked_sub_days(Days::new(offset.unsigned_abs()))
                .unwrap_or(as_of)
        }
    };
    let mut c_id = Int64Builder::new();
    let mut c_size = Int32Builder::new();
    let mut c_industry = StringBuilder::new();
    let mut c_country = StringBuilder::new();
    let mut c_plan = StringBuilder::new();
    let mut c_signup = Date32Builder::new();
    let mut c_opt_in = BooleanBuilder::new();
    let mut c_email = StringBuilder::new();
    let mut c_valid_from = Date32Builder::new();
    let mut c_valid_to = Date32Builder::new();
    let history = keeps_history(args);
    // With --export-as-of, what the export did not know yet is generated (so that the random
    // streams stay the same) but not written.
    let known = |date: NaiveDate| args.export_as_of.is_none_or(|cut| date < cut);
    let mut e_id = Int64Builder::new();
    let mut e_ts = TimestampMicrosecondBuilder::new();
    let mut e_feature = StringBuilder::new();
    let mut e_duration = Float64Builder::new();
    let mut i_id = Int64Builder::new();
    let mut i_date = Date32Builder::new();
    let mut i_amount = Float64Builder::new();
    let mut t_id = Int64Builder::new();
    let mut t_created = TimestampMicrosecondBuilder::new();
    let mut t_severity = StringBuilder::new();
    let mut survey = args.survey_out.as_ref().map(|_| survey::Survey::new());

    for id in ids {
        // Who the customer is comes from a generator of its own, so that the same customer keeps
        // its attributes in every quarter generated with the same seed.
        if args.drop_every > 0 && (id as u64).is_multiple_of(args.drop_every) {
            continue;
        }
        let mut who = ChaCha8Rng::seed_from_u64(args.seed.wrapping_mul(1_000_003) ^ id as u64);
        let mut archetype = draw_archetype(&mut who);
        let tenure_at_reference: i64 = match archetype {
            Archetype::Struggling => who.random_range(10..=120),
            _ => who.random_range(30..=1100),
        };
        // Heavy-tailed company sizes: most small, a few very large.
        let size = (2.0_f64.powf(who.random_range(0.0..12.5))).round() as i32;
        if who.random_bool(args.behaviour_change.clamp(0.0, 1.0)) {
            archetype = draw_archetype(rng);
        }
        let signup = reference
            .checked_sub_days(Days::new(tenure_at_reference as u64))
            .unwrap_or(reference);
        let tenure = (as_of - signup).num_days().max(1);
        let plan = match (archetype, size, who.random_range(0..100)) {
            (_, s, r) if s > 1000 && r < 70 => "enterprise",
            (Archetype::Power, _, r) if r < 60 => "pro",
            (Archetype::Dormant | Archetype::Struggling, _, r) if r < 60 => "free",
            (_, _, r) if r < 35 => "free",
            (_, _, r) if r < 70 => "starter",
            (_, _, r) if r < 92 => "pro",
            _ => "enterprise",
        };
        if let Some(survey) = &mut survey {
            survey.answer(
                args.seed,
                as_of,
                &survey::Respondent {
                    id,
                    archetype,
                    plan,
                    signup,
                },
            );
        }
        let industry = pick(&mut who, INDUSTRIES);
        let country = pick(&mut who, COUNTRIES);
        let opt_in = who.random_bool(0.6);
        let email = who
            .random_bool(0.9)
            .then(|| format!("user{id}@example.com"));
        // Versions of the customer's row: (plan, valid from, valid to). With history, some
        // customers moved to their plan from another one, from a generator of their own.
        let mut versions = vec![(plan, signup, None)];
        let mut changes =
            ChaCha8Rng::seed_from_u64(args.seed.wrapping_mul(7_919) ^ (id as u64).rotate_left(17));
        if history && tenure > 2 && changes.random_bool(0.3) {
            let changed = signup
                .checked_add_days(Days::new(changes.random_range(1..tenure) as u64))
                .unwrap_or(signup);
            let earlier = if plan == "free" { "starter" } else { "free" };
            versions = vec![(earlier, signup, Some(changed)), (plan, changed, None)];
        }
        for (plan, valid_from, valid_to) in versions {
            let valid_to = match args.export_as_of {
                // The export at `cut` holds the row valid then, not yet known to end.
                Some(cut) if valid_from < cut && valid_to.is_none_or(|to| to >= cut) => None,
                Some(_) => continue,
                None => valid_to,
            };
            c_id.append_value(id);
            c_size.append_value(size.max(1));
            c_industry.append_value(industry);
            c_country.append_value(country);
            c_plan.append_value(plan);
            c_signup.append_value(days_since_epoch(signup));
            c_opt_in.append_value(opt_in);
            c_email.append_option(email.as_deref());
            c_valid_from.append_value(days_since_epoch(valid_from));
            c_valid_to.append_option(valid_to.map(days_since_epoch));
        }

        // Activity: active days in the last 90 days, features used, older activity.
        let (active_recent, feature_count, older_active) = match archetype {
            Archetype::Power => (
                rng.random_range(40..=80),
                rng.random_range(10..=20),
                rng.random_range(10..=40),
            ),
            Archetype::Regular => (
                rng.random_range(10..=39),
                rng.random_range(3..=12),
                rng.random_range(3..=10),
            ),
            Archetype::Occasional => (
                rng.random_range(1..=9),
                rng.random_range(1..=5),
                rng.random_range(0..=8),
            ),
            Archetype::Struggling => (rng.random_range(0..=3), rng.random_range(1..=3), 0),
            Archetype::Dormant => (0, rng.random_range(1..=4), rng.random_range(0..=10)),
        };
        let first_feature = rng.random_range(0..FEATURES.len());
        let mut events = Vec::new();
        let window_start = (-90_i64).max(-tenure);
        for _ in 0..active_recent {
            let offset = rng.random_range(window_start..0);
            events.push(offset);
        }
        if tenure > 90 {
            for _ in 0..older_active {
                events.push(rng.random_range(-tenure..-90));
            }
        }
        // A few events after the as-of date, which pipelines must ignore.
        if rng.random_bool(0.1) {
            events.push(rng.random_range(0..20));
        }
        for offset in events {
            let feature = (first_feature + rng.random_range(0..feature_count)) % FEATURES.len();
            let duration = (rng.random_range(1.0..600.0_f64) * 10.0).round() / 10.0;
            let ts = micros(day(offset), rng.random_range(0..86_400));
            if known(day(offset)) {
                e_id.append_value(id);
                e_ts.append_value(ts);
                e_feature.append_value(FEATURES[feature]);
                e_duration.append_value(duration);
            }
        }
        // Power users touch every feature they use in the window.
        if archetype == Archetype::Power {
            for f in 0..feature_count {
                let offset = rng.random_range(window_start..0);
                let ts = micros(day(offset), rng.random_range(0..86_400));
                if known(day(offset)) {
                    e_id.append_value(id);
                    e_ts.append_value(ts);
                    e_feature.append_value(FEATURES[(first_feature + f) % FEATURES.len()]);
                    e_duration.append_value(30.0);
                }
            }
        }

        // Monthly invoices for paid plans over the last 15 months of tenure.
        let monthly = match plan {
            "starter" => 49.0,
            "pro" => 199.0,
            "enterprise" => 499.0 + f64::from(size.min(20_000)) * 0.5,
            _ => 0.0,
        };
        if monthly > 0.0 {
            let mut offset = -tenure.min(450) + rng.random_range(0..30);
            while offset < 0 {
                let amount = (monthly * rng.random_range(0.9..1.1_f64) * 100.0).round() / 100.0;
                if known(day(offset)) {
                    i_id.append_value(id);
                    i_date.append_value(days_since_epoch(day(offset)));
                    i_amount.append_value(amount);
                }
                offset += 30;
            }
        }

        // Support tickets: struggling customers ask for help.
        let tickets = match archetype {
            Archetype::Struggling => rng.random_range(1..=3),
            Archetype::Power => rng.random_range(0..=2),
            _ => u32::from(rng.random_bool(0.15)),
        };
        for _ in 0..tickets {
            let offset = rng.random_range((-89_i64).max(-tenure)..0);
            let created = micros(day(offset), rng.random_range(0..86_400));
            let severity = pick(rng, SEVERITIES);
            if known(day(offset)) {
                t_id.append_value(id);
                t_created.append_value(created);
                t_severity.append_value(severity);
            }
        }
    }

    Tables {
        customers: batch(customers_schema(history), {
            let mut columns: Vec<ArrayRef> = vec![
                Arc::new(c_id.finish()),
                Arc::new(c_size.finish()),
                Arc::new(c_industry.finish()),
                Arc::new(c_country.finish()),
                Arc::new(c_plan.finish()),
                Arc::new(c_signup.finish()),
                Arc::new(c_opt_in.finish()),
                Arc::new(c_email.finish()),
            ];
            if history {
                columns.push(Arc::new(c_valid_from.finish()));
                columns.push(Arc::new(c_valid_to.finish()));
            }
            columns
        }),
        events: batch(
            events_schema(),
            vec![
                Arc::new(e_id.finish()),
                Arc::new(e_ts.finish()),
                Arc::new(e_feature.finish()),
                Arc::new(e_duration.finish()),
            ],
        ),
        invoices: batch(
            invoices_schema(),
            vec![
                Arc::new(i_id.finish()),
                Arc::new(i_date.finish()),
                Arc::new(i_amount.finish()),
            ],
        ),
        tickets: batch(
            tickets_schema(),
            vec![
                Arc::new(t_id.finish()),
                Arc::new(t_created.finish()),
                Arc::new(t_severity.finish()),
            ],
        ),
        survey: survey.map(survey::Survey::finish),
    }
}

fn batch(schema: SchemaRef, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(schema, columns)
        .unwrap_or_else(|e| panic!("generator built inconsistent columns: {e}"))
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

/// Whether the customers table has validity columns.
fn keeps_history(args: &Args) -> bool {
    args.history || args.export_as_of.is_some()
}

fn customers_schema(history: bool) -> SchemaRef {
    let validity = [
        Field::new("valid_from", DataType::Date32, false),
        Field::new("valid_to", DataType::Date32, true),
    ];
    Arc::new(Schema::new(
        [
            Field::new("customer_id", DataType::Int64, false),
            Field::new("company_size", DataType::Int32, false),
            Field::new("industry", DataType::Utf8, false),
            Field::new("country", DataType::Utf8, false),
            Field::new("plan", DataType::Utf8, false),
            Field::new("signup_date", DataType::Date32, false),
            Field::new("email_opt_in", DataType::Boolean, false),
            Field::new("email", DataType::Utf8, true),
        ]
        .into_iter()
        .chain(validity.into_iter().filter(|_| history))
        .collect::<Vec<_>>(),
    ))
}

fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("ts", timestamp(), false),
        Field::new("feature", DataType::Utf8, false),
        Field::new("duration_s", DataType::Float64, false),
    ]))
}

fn invoices_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("invoice_date", DataType::Date32, false),
        Field::new("amount", DataType::Float64, false),
    ]))
}

fn tickets_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("created_at", timestamp(), false),
        Field::new("severity", DataType::Utf8, false),
    ]))
}

fn retail_customers_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("signup_date", DataType::Date32, false),
        Field::new("country", DataType::Utf8, false),
    ]))
}

fn transactions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("date", DataType::Date32, false),
        Field::new("amount", DataType::Float64, false),
    ]))
}

/// Retail customers and their purchases: loyal, regular, lapsed, one-off and never-buying
/// customers, over two years before the as-of date (and a few purchases after it).
fn generate_retail(
    args: &Args,
    rng: &mut ChaCha8Rng,
    ids: RangeInclusive<i64>,
) -> (RecordBatch, RecordBatch) {
    let as_of = args.as_of;
    let mut c_id = Int64Builder::new();
    let mut c_signup = Date32Builder::new();
    let mut c_country = StringBuilder::new();
    let mut t_id = Int64Builder::new();
    let mut t_date = Date32Builder::new();
    let mut t_amount = Float64Builder::new();
    for id in ids {
        let tenure: u64 = rng.random_range(30..=730);
        let signup = as_of.checked_sub_days(Days::new(tenure)).unwrap_or(as_of);
        c_id.append_value(id);
        c_signup.append_value(days_since_epoch(signup));
        c_country.append_value(pick(rng, COUNTRIES));
        // (purchases, most recent purchase at most this many days ago, typical basket)
        let (purchases, recent_within, basket): (u32, u64, f64) = match rng.random_range(0..100) {
            0..20 => (rng.random_range(12..=40), 30, 80.0),
            20..50 => (rng.random_range(4..=12), 120, 50.0),
            50..75 => (rng.random_range(2..=10), 700, 60.0),
            75..90 => (1, 700, 40.0),
            _ => (0, 0, 0.0),
        };
        let recent_within = recent_within.min(tenure);
        for p in 0..purchases {
            // The first purchase sets recency; the others spread over the tenure before it.
            let floor = if recent_within > 0 {
                rng.random_range(1..=recent_within)
            } else {
                1
            };
            let ago = if p == 0 {
                floor
            } else {
                rng.random_range(floor..=tenure.max(floor))
            };
            let ago = if recent_within > 120 && p == 0 {
                ago.max(150)
            } else {
                ago
            };
            t_id.append_value(id);
            t_date.append_value(days_since_epoch(
                as_of.checked_sub_days(Days::new(ago)).unwrap_or(as_of),
            ));
            t_amount
                .append_value((basket * rng.random_range(0.3..3.0_f64) * 100.0).round() / 100.0);
        }
        if purchases > 0 && rng.random_bool(0.05) {
            t_id.append_value(id);
            t_date.append_value(days_since_epoch(
                as_of
                    .checked_add_days(Days::new(rng.random_range(0..30)))
                    .unwrap_or(as_of),
            ));
            t_amount.append_value(99.0);
        }
    }
    let customers = batch(
        retail_customers_schema(),
        vec![
            Arc::new(c_id.finish()),
            Arc::new(c_signup.finish()),
            Arc::new(c_country.finish()),
        ],
    );
    let transactions = batch(
        transactions_schema(),
        vec![
            Arc::new(t_id.finish()),
            Arc::new(t_date.finish()),
            Arc::new(t_amount.finish()),
        ],
    );
    (customers, transactions)
}

/// One output file, written a chunk at a time, in the format its extension names.
struct Sink {
    writer: Writer,
    rows: usize,
}

enum Writer {
    Parquet(ArrowWriter<File>),
    Csv(datafusion::arrow::csv::Writer<BufWriter<File>>),
    Ndjson(datafusion::arrow::json::LineDelimitedWriter<BufWriter<File>>),
}

impl Sink {
    fn create(path: &Path, schema: SchemaRef) -> Result<Self, BoxError> {
        let extension = path.extension().and_then(|e| e.to_str());
        let writer = match extension {
            Some("parquet") => {
                let properties = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .set_max_row_group_row_count(Some(1 << 20))
                    .build();
                Writer::Parquet(ArrowWriter::try_new(
                    File::create(path)?,
                    schema,
                    Some(properties),
                )?)
            }
            Some("csv") => Writer::Csv(datafusion::arrow::csv::Writer::new(BufWriter::new(
                File::create(path)?,
            ))),
            Some("ndjson") => Writer::Ndjson(datafusion::arrow::json::LineDelimitedWriter::new(
                BufWriter::new(File::create(path)?),
            )),
            other => return Err(format!("unsupported extension {other:?}").into()),
        };
        Ok(Self { writer, rows: 0 })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), BoxError> {
        match &mut self.writer {
            Writer::Parquet(writer) => writer.write(batch)?,
            Writer::Csv(writer) => writer.write(batch)?,
            Writer::Ndjson(writer) => writer.write(batch)?,
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Finishes the file; returns the rows written.
    fn finish(self) -> Result<usize, BoxError> {
        match self.writer {
            Writer::Parquet(writer) => {
                writer.close()?;
            }
            Writer::Csv(writer) => writer.into_inner().flush()?,
            Writer::Ndjson(mut writer) => {
                writer.finish()?;
                writer.into_inner().flush()?;
            }
        }
        Ok(self.rows)
    }
}
