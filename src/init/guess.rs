//! The guesses `segflow init` makes from what it read: the key linking the files, the customers'
//! table, each file's role and time column, the as-of date, and starter features. Each guess
//! carries its evidence, which the rendered pipeline shows as a comment beside it.

use std::collections::BTreeMap;

use chrono::{Days, NaiveDate};

use super::inspect::{Inspection, Skipped, Table, is_key_like};
use crate::pipeline::model::{ColumnType, FeatureKind};

/// What a source is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// One row per customer.
    Entity,
    /// Rows with a date and an amount: purchases, invoices, payments.
    Transactions {
        /// The amount column.
        amount: String,
    },
    /// Rows with a date and no amount: product events, tickets, visits.
    Events,
    /// Rows per customer without a date: no starter feature.
    Attributes,
}

/// A source of the pipeline to write.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    /// The file and its measurements.
    pub table: Table,
    /// Its role.
    pub role: Role,
    /// Why that role.
    pub role_evidence: String,
    /// The time column of an events or transactions table.
    pub time_column: Option<String>,
    /// The column joining it to the entity key, when its name differs.
    pub key: Option<String>,
}

/// Where the customers come from.
#[derive(Debug, Clone)]
pub enum Customers {
    /// A table with one row per customer, and its join-date column.
    Table {
        /// The source.
        source: String,
        /// Column holding when each customer joined.
        since: Option<String>,
    },
    /// The distinct keys of these sources (no table lists every customer once).
    Keys(Vec<String>),
}

/// The entity guess.
#[derive(Debug, Clone)]
pub struct EntityPlan {
    /// Where the customers come from.
    pub customers: Customers,
    /// The key column.
    pub key: String,
    /// Why: one line each.
    pub evidence: Vec<String>,
}

/// How a feature is computed.
#[derive(Debug, Clone)]
pub enum Computation {
    /// SQL over the entity's columns and other features.
    Expr(String),
    /// An aggregate over a source.
    Aggregate {
        /// The source.
        source: String,
        /// The SQL aggregate.
        expr: String,
        /// The window, in days before the as-of date.
        window_days: Option<u32>,
        /// The value for customers without rows, as YAML.
        default: Option<&'static str>,
    },
}

/// A starter feature.
#[derive(Debug, Clone)]
pub struct Feature {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: FeatureKind,
    /// What it measures.
    pub description: String,
    /// Its unit.
    pub unit: Option<&'static str>,
    /// How it is computed.
    pub computation: Computation,
    /// Why it was made (a comment), if not obvious from the description.
    pub note: Option<String>,
    /// Whether it is a number that tells segments apart (listed under `differentiable`).
    pub differentiates: bool,
}

/// What the starter segmentation tiers customers by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Activity of an events table: high, middle, low engagement and dormant.
    Engagement,
    /// Spend of a transactions table: high, middle, low value and no purchase.
    Value,
}

/// The tiering to compute once the features are known.
#[derive(Debug, Clone)]
pub struct Tiering {
    /// The feature tiered by.
    pub feature: String,
    /// Engagement or value.
    pub basis: Basis,
    /// Why this feature (a comment).
    pub evidence: String,
}

/// Everything guessed, before the segments are measured.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The pipeline's name.
    pub name: String,
    /// The as-of date and why.
    pub as_of: Option<(NaiveDate, String)>,
    /// The sources.
    pub sources: Vec<SourcePlan>,
    /// Files left out, and why.
    pub left_out: Vec<Skipped>,
    /// The customers, when a key was found.
    pub entity: Option<EntityPlan>,
    /// Starter features.
    pub features: Vec<Feature>,
    /// What the segmentation tiers by.
    pub tiering: Option<Tiering>,
    /// The feature saying who can be reached, for `accessible`.
    pub reachable: Option<String>,
    /// The value and engagement features of the 2x2 matrix.
    pub matrix: Option<(String, String)>,
    /// What init needed and did not find; not empty means a skeleton.
    pub needs: Vec<String>,
}

const CUSTOMER_WORDS: [&str; 7] = [
    "customer",
    "user",
    "account",
    "client",
    "member",
    "compan",
    "subscriber",
];
const AMOUNT_WORDS: [&str; 14] = [
    "amount", "revenue", "price", "total", "spend", "sales", "value", "mrr", "paid", "payment",
    "cost", "net", "gross", "charge",
];
const JOIN_WORDS: [&str; 7] = [
    "signup",
    "sign_up",
    "created",
    "joined",
    "registered",
    "since",
    "first_seen",
];
const TIME_NAMES: [&str; 8] = [
    "ts",
    "timestamp",
    "event_time",
    "occurred_at",
    "created_at",
    "date",
    "time",
    "datetime",
];

/// Whether `name`, in lower case with other characters than letters and digits as `_`
/// (`Email Opt-In` → `email_opt_in`), contains one of `words`.
fn contains_any(name: &str, words: &[&str]) -> bool {
    let normal: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    words.iter().any(|w| normal.contains(w))
}

/// `n` with thousands separators: `3,000`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Make every guess from `inspection`; `name` is the pipeline's name.
pub fn guess(inspection: &Inspection, name: String) -> Plan {
    let mut plan = Plan {
        name,
        as_of: None,
        sources: Vec::new(),
        left_out: inspection.skipped.clone(),
        entity: None,
        features: Vec::new(),
        tiering: None,
        reachable: None,
        matrix: None,
        needs: Vec::new(),
    };
    let Some(link) = shared_key(&inspection.tables).or_else(|| id_link(&inspection.tables)) else {
        plan.needs.push(
            "a column naming the customer (`customer_id`, `user_id`, ...) in at least two \
             files, or a unique `id` that other files name after its file, to link them"
                .into(),
        );
        plan.sources = inspection
            .tables
            .iter()
            .map(|table| SourcePlan {
                table: table.clone(),
                role: Role::Attributes,
                role_evidence: "unknown: no key shared with another file".into(),
                time_column: time_column(table),
                key: None,
            })
            .collect();
        return plan;
    };
    let key = link.key.clone();
    let column_of = |table: &Table| link.columns.get(&table.name).cloned();
    for table in &inspection.tables {
        if column_of(table).is_none() {
            let columns: Vec<&str> = table.columns.iter().map(|c| c.name.as_str()).collect();
            plan.left_out.push(Skipped {
                file: table.shown.clone(),
                reason: format!(
                    "it has no `{key}` column (its columns: {}), so nothing links it to the customers",
                    columns.join(", ")
                ),
            });
        }
    }
    let tables: Vec<&Table> = inspection
        .tables
        .iter()
        .filter(|t| column_of(t).is_some())
        .collect();
    let unique: Vec<&Table> = tables
        .iter()
        .copied()
        .filter(|t| {
            column_of(t)
                .and_then(|name| t.column(&name))
                .is_some_and(|c| c.non_null == t.rows && c.distinct == Some(t.rows) && t.rows > 0)
        })
        .collect();
    let entity_table = unique
        .iter()
        .copied()
        .max_by_key(|t| {
            (
                contains_any(&t.name, &CUSTOMER_WORDS),
                std::cmp::Reverse(t.rows),
            )
        })
        .map(|t| t.name.clone());
    let mut evidence = vec![link.evidence.clone()];
    for table in &tables {
        let Some(column) = column_of(table).and_then(|name| table.column(&name)) else {
            continue;
        };
        let distinct = column.distinct.unwrap_or(0);
        evidence.push(if Some(&table.name) == entity_table.as_ref() {
            format!(
                "unique and never empty in {} ({} rows): the customers",
                table.shown,
                count(table.rows)
            )
        } else if distinct == table.rows && column.non_null == table.rows {
            format!("also unique in {}", table.shown)
        } else {
            format!(
                "repeats in {} ({} rows, {} keys)",
                table.shown,
                count(table.rows),
                count(distinct)
            )
        });
    }
    for table in tables {
        let mut source = role_of(table, entity_table.as_deref());
        source.key = column_of(table).filter(|column| *column != key);
        plan.sources.push(source);
    }
    let activity: Vec<&SourcePlan> = plan
        .sources
        .iter()
        .filter(|s| matches!(s.role, Role::Events | Role::Transactions { .. }))
        .collect();
    let customers = match &entity_table {
        Some(source) => Customers::Table {
            source: source.clone(),
            since: plan
                .sources
                .iter()
                .find(|s| &s.table.name == source)
                .and_then(|s| join_date(&s.table)),
        },
        None => {
            evidence.push(
                "no file has one row per key: the customers are the keys seen before the as-of date"
                    .into(),
            );
            Customers::Keys(activity.iter().map(|s| s.table.name.clone()).collect())
        }
    };
    plan.as_of = as_of(&activity);
    if activity.is_empty() {
        plan.needs.push(
            "a file of events or transactions: rows per customer with a date or timestamp column"
                .into(),
        );
    }
    if matches!(&customers, Customers::Keys(sources) if sources.is_empty()) {
        plan.needs
            .push("a file listing the customers once each, or files of their activity".into());
    }
    plan.entity = Some(EntityPlan {
        customers,
        key,
        evidence,
    });
    if plan.needs.is_empty() {
        features(&mut plan);
    }
    plan
}

/// The key linking the files: its name, the column holding it in each table that has it, and why.
#[derive(Debug, Clone)]
struct Link {
    key: String,
    columns: BTreeMap<String, String>,
    evidence: String,
}

/// The key-like column name in most files (at least two); ties go to one unique in some file,
/// then to a customer-like name, then alphabetical. A bare `id` is not one: each file's own
/// `id` numbers its own rows (orders 1..1000, customers 1..200), so sharing the name links
/// nothing; [`id_link`] finds the files that name such an `id` after its table.
fn shared_key(tables: &[Table]) -> Option<Link> {
    let mut holders: BTreeMap<&str, Vec<&Table>> = BTreeMap::new();
    for table in tables {
        let linking = |name: &str| is_key_like(name) && !name.eq_ignore_ascii_case("id");
        for column in table.columns.iter().filter(|c| linking(&c.name)) {
            holders.entry(column.name.as_str()).or_default().push(table);
        }
    }
    holders
        .into_iter()
        .filter(|(_, tables)| tables.len() >= 2)
        .max_by_key(|(name, tables)| {
            let unique_somewhere = tables.iter().any(|t| {
                t.column(name)
                    .is_some_and(|c| c.distinct == Some(t.rows) && c.non_null == t.rows)
            });
            (
                tables.len(),
                unique_somewhere,
                contains_any(name, &CUSTOMER_WORDS),
                std::cmp::Reverse(name.to_string()),
            )
        })
        .map(|(name, tables)| Link {
            key: name.to_string(),
            columns: tables
                .iter()
                .map(|t| (t.name.clone(), name.to_string()))
                .collect(),
            evidence: format!(
                "`{name}` is in {} files: {}",
                tables.len(),
                tables
                    .iter()
                    .map(|t| t.shown.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// No column name in two files: a table's unique `id` that other files name after the table
/// (`id` of customers.csv, `customer_id` of orders.csv).
fn id_link(tables: &[Table]) -> Option<Link> {
    tables.iter().find_map(|table| {
        let id = table.columns.iter().find(|c| {
            c.name.eq_ignore_ascii_case("id")
                && c.non_null == table.rows
                && c.distinct == Some(table.rows)
                && table.rows > 0
        })?;
        let singular = table.name.strip_suffix('s').unwrap_or(&table.name);
        let wanted = [format!("{}_id", table.name), format!("{singular}_id")];
        let mut columns = BTreeMap::from([(table.name.clone(), id.name.clone())]);
        let mut linked = Vec::new();
        for other in tables.iter().filter(|t| t.name != table.name) {
            if let Some(column) = other
                .columns
                .iter()
                .find(|c| wanted.iter().any(|w| c.name.eq_ignore_ascii_case(w)))
            {
                columns.insert(other.name.clone(), column.name.clone());
                linked.push(format!("`{}` of {}", column.name, other.shown));
            }
        }
        (!linked.is_empty()).then(|| Link {
            key: id.name.clone(),
            evidence: format!(
                "`{}` of {} is named after it by {}",
                id.name,
                table.shown,
                linked.join(", ")
            ),
            columns,
        })
    })
}

/// The time column of `table`: a date or timestamp column, by a time-like name first.
fn time_column(table: &Table) -> Option<String> {
    let temporal: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| c.is_temporal())
        .map(|c| c.name.as_str())
        .collect();
    let preferred = TIME_NAMES
        .iter()
        .find_map(|want| temporal.iter().find(|name| name.eq_ignore_ascii_case(want)))
        .or_else(|| {
            temporal.iter().find(|name| {
                let lower = name.to_ascii_lowercase();
                lower.ends_with("_date") || lower.ends_with("_at") || lower.ends_with("_time")
            })
        })
        .or(temporal.first());
    preferred.map(|name| name.to_string())
}

/// The column of the customers' table saying when each joined.
fn join_date(table: &Table) -> Option<String> {
    table
        .columns
        .iter()
        .find(|c| c.is_temporal() && contains_any(&c.name, &JOIN_WORDS))
        .map(|c| c.name.clone())
}

fn role_of(table: &Table, entity: Option<&str>) -> SourcePlan {
    let plan = |role, role_evidence: String, time_column| SourcePlan {
        table: table.clone(),
        role,
        role_evidence,
        time_column,
        key: None,
    };
    if Some(table.name.as_str()) == entity {
        return plan(Role::Entity, "customers: one row per customer".into(), None);
    }
    let Some(time) = time_column(table) else {
        return plan(
            Role::Attributes,
            "other: no date or timestamp column, so no starter feature (add aggregates by hand)"
                .into(),
            None,
        );
    };
    let amount = table
        .columns
        .iter()
        .filter(|c| c.is_numeric() && !is_key_like(&c.name) && contains_any(&c.name, &AMOUNT_WORDS))
        .max_by_key(|c| c.declared == Some(ColumnType::Float64))
        .map(|c| c.name.clone());
    match amount {
        Some(amount) => plan(
            Role::Transactions {
                amount: amount.clone(),
            },
            format!("transactions: dated rows (`{time}`) with an amount (`{amount}`)"),
            Some(time),
        ),
        None => plan(
            Role::Events,
            format!("events: dated rows (`{time}`) without an amount column"),
            Some(time),
        ),
    }
}

/// The day after the latest row of the activity tables, so that every row counts.
fn as_of(activity: &[&SourcePlan]) -> Option<(NaiveDate, String)> {
    let (latest, source, column) = activity
        .iter()
        .filter_map(|s| {
            let column = s.time_column.as_ref()?;
            let latest = s.table.column(column)?.latest?;
            Some((latest, s.table.shown.as_str(), column.as_str()))
        })
        .max()?;
    let date = latest.checked_add_days(Days::new(1))?;
    Some((
        date,
        format!(
            "the day after the latest row ({latest}, `{column}` in {source}); move it, or pass \
             --as-of, for each new export"
        ),
    ))
}

/// `column` as SQL: the plain name when it needs no quotes.
pub fn sql_name(column: &str) -> String {
    let plain = column
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && column
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        column.to_string()
    } else {
        crate::pipeline::sql::ident(column)
    }
}

fn as_date(column: &str, column_type: Option<ColumnType>) -> String {
    if column_type == Some(ColumnType::Date) {
        sql_name(column)
    } else {
        format!("CAST({} AS DATE)", sql_name(column))
    }
}

/// The starter features for the sources found, the tiering basis, reachability and the matrix.
fn features(plan: &mut Plan) {
    let mut features = Vec::new();
    let transactions: Vec<&SourcePlan> = plan
        .sources
        .iter()
        .filter(|s| matches!(s.role, Role::Transactions { .. }))
        .collect();
    let mut events: Vec<&SourcePlan> = plan
        .sources
        .iter()
        .filter(|s| s.role == Role::Events)
        .collect();
    events.sort_by_key(|s| std::cmp::Reverse(s.table.rows));
    let mut monetary = None;
    for source in &transactions {
        let (Role::Transactions { amount }, Some(time)) = (&source.role, &source.time_column)
        else {
            continue;
        };
        let name = &source.table.name;
        let prefix = if transactions.len() > 1 {
            format!("{name}_")
        } else {
            String::new()
        };
        let time_type = source.table.column(time).and_then(|c| c.declared);
        let amount_type = source.table.column(amount).and_then(|c| c.declared);
        let last = format!("{prefix}last_purchase");
        features.push(Feature {
            name: last.clone(),
            kind: FeatureKind::Behavioral,
            description: format!("Date of the latest row of {name} before the as-of date."),
            unit: None,
            computation: Computation::Aggregate {
                source: name.clone(),
                expr: format!("max({})", as_date(time, time_type)),
                window_days: None,
                default: None,
            },
            note: Some(format!(
                "RFM from {name}, a transactions table: recency, frequency, monetary"
            )),
            differentiates: false,
        });
        features.push(Feature {
            name: format!("{prefix}recency_days"),
            kind: FeatureKind::Value,
            description: format!(
                "Days since the latest row of {name}; empty for customers without one."
            ),
            unit: Some("days"),
            computation: Computation::Expr(format!("as_of() - {last}")),
            note: None,
            differentiates: true,
        });
        features.push(Feature {
            name: format!("{prefix}frequency"),
            kind: FeatureKind::Value,
            description: format!("Rows of {name} in the last 365 days."),
            unit: None,
            computation: Computation::Aggregate {
                source: name.clone(),
                expr: "count(*)".into(),
                window_days: Some(365),
                default: Some("0"),
            },
            note: None,
            differentiates: true,
        });
        let money = format!("{prefix}monetary");
        features.push(Feature {
            name: money.clone(),
            kind: FeatureKind::Value,
            description: format!("Sum of `{amount}` in {name} over the last 365 days."),
            unit: None,
            computation: Computation::Aggregate {
                source: name.clone(),
                expr: format!("sum({})", sql_name(amount)),
                window_days: Some(365),
                default: Some(if amount_type == Some(ColumnType::Float64) {
                    "0.0"
                } else {
                    "0"
                }),
            },
            note: Some("add `unit:` with the currency code (USD, EUR) to show it as money".into()),
            differentiates: true,
        });
        monetary.get_or_insert((money, name.clone(), amount.clone()));
    }
    let mut engagement = None;
    for source in &events {
        let Some(time) = &source.time_column else {
            continue;
        };
        let name = &source.table.name;
        let time_type = source.table.column(time).and_then(|c| c.declared);
        let days = format!("{name}_active_days_90");
        features.push(Feature {
            name: format!("{name}_90"),
            kind: FeatureKind::Behavioral,
            description: format!("Rows of {name} in the last 90 days."),
            unit: None,
            computation: Computation::Aggregate {
                source: name.clone(),
                expr: "count(*)".into(),
                window_days: Some(90),
                default: Some("0"),
            },
            note: Some(format!("activity from {name}, an events table")),
            differentiates: true,
        });
        features.push(Feature {
            name: days.clone(),
            kind: FeatureKind::Behavioral,
            description: format!("Distinct days with a row of {name} in the last 90 days."),
            unit: Some("days"),
            computation: Computation::Aggregate {
                source: name.clone(),
                expr: format!("count(DISTINCT {})", as_date(time, time_type)),
                window_days: Some(90),
                default: Some("0"),
            },
            note: None,
            differentiates: true,
        });
        engagement.get_or_insert((days, name.clone(), source.table.rows));
    }
    let entity = plan
        .sources
        .iter()
        .find(|s| s.role == Role::Entity)
        .map(|s| &s.table);
    if let (
        Some(table),
        Some(EntityPlan {
            customers: Customers::Table {
                since: Some(since), ..
            },
            ..
        }),
    ) = (entity, &plan.entity)
    {
        let since_type = table.column(since).and_then(|c| c.declared);
        features.push(Feature {
            name: "tenure_days".into(),
            kind: FeatureKind::Behavioral,
            description: format!("Days since the customer joined (`{since}`)."),
            unit: Some("days"),
            computation: Computation::Expr(format!("as_of() - {}", as_date(since, since_type))),
            note: Some(format!("tenure from `{since}`, a join date")),
            differentiates: true,
        });
    }
    if let Some(table) = entity {
        plan.reachable = reachability(table, &mut features);
    }
    plan.tiering = match (&engagement, &monetary) {
        (Some((days, source, rows)), _) => Some(Tiering {
            feature: days.clone(),
            basis: Basis::Engagement,
            evidence: format!(
                "engagement tiers by {days}: {source} is the largest events table ({} rows)",
                count(*rows)
            ),
        }),
        (None, Some((money, source, amount))) => Some(Tiering {
            feature: money.clone(),
            basis: Basis::Value,
            evidence: format!("value tiers by {money}: the sum of `{amount}` in {source}"),
        }),
        (None, None) => None,
    };
    if let (Some((days, ..)), Some((money, ..))) = (&engagement, &monetary) {
        plan.matrix = Some((money.clone(), days.clone()));
    }
    plan.features = features;
}

/// A feature saying who can be reached, from an opt-in flag and an e-mail column of the
/// customers' table.
fn reachability(table: &Table, features: &mut Vec<Feature>) -> Option<String> {
    let opt_in = table
        .columns
        .iter()
        .find(|c| {
            c.declared == Some(ColumnType::Bool)
                && contains_any(
                    &c.name,
                    &[
                        "opt_in",
                        "optin",
                        "consent",
                        "subscribed",
                        "reachable",
                        "contactable",
                        "marketing",
                    ],
                )
        })
        .map(|c| c.name.clone());
    let email = table
        .columns
        .iter()
        .find(|c| {
            c.declared == Some(ColumnType::String) && contains_any(&c.name, &["email", "e_mail"])
        })
        .map(|c| c.name.clone());
    let (expr, evidence) = match (&opt_in, &email) {
        (Some(flag), Some(email)) => (
            format!("{} AND {} IS NOT NULL", sql_name(flag), sql_name(email)),
            format!("`{flag}` (an opt-in flag) and `{email}` (an address)"),
        ),
        (Some(flag), None) => (sql_name(flag), format!("`{flag}`, an opt-in flag")),
        (None, Some(email)) => (
            format!("{} IS NOT NULL", sql_name(email)),
            format!("`{email}`, an address"),
        ),
        (None, None) => return None,
    };
    let name = if email.is_some() {
        "email_reachable"
    } else {
        "reachable"
    };
    features.push(Feature {
        name: name.into(),
        kind: FeatureKind::Demographic,
        description: "Can be reached: opted in and has an address on file, as far as the customers' table says.".into(),
        unit: None,
        computation: Computation::Expr(expr),
        note: Some(format!("reachability for `accessible`, from {evidence}")),
        differentiates: false,
    });
    Some(name.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_have_thousands_separators() {
        assert_eq!(count(3), "3");
        assert_eq!(count(3000), "3,000");
        assert_eq!(count(1234567), "1,234,567");
    }

    #[test]
    fn names_match_words_whatever_their_spelling() {
        assert!(contains_any("Email Opt-In", &["opt_in"]));
        assert!(contains_any("E-mail", &["e_mail"]));
        assert!(!contains_any("ts", &["amount"]));
    }

    #[test]
    fn plain_names_stay_plain_in_sql() {
        assert_eq!(sql_name("amount"), "amount");
        assert_eq!(sql_name("Amount"), "\"Amount\"");
        assert_eq!(sql_name("order total"), "\"order total\"");
    }
}
