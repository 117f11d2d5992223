//! The poller configuration of one resource, interpreted once: [`PollPlan::compile`] turns the typed
//! `PollerConfig` into what a poll needs — the parsed URL template, the record reader (id path, date paths
//! with their compiled masks and zones, the provider's deletion date field), the fields the provider must
//! return, the lookback and tolerance — or every problem, each naming the field it is about.
//!
//! The API validates an instance with the same plan the engine polls with ([`PollPlan::check_query`] compiles
//! the URL as a poll would render it now), so the two never read the configuration their own way.

use chrono::{DateTime, Utc};
use oc_model::PollerConfig;
use oc_model::ports::{CompiledQuery, FieldNeeds, Provider, QueryError};

use crate::classify::RecordReader;
use crate::fields::{DateFormat, FieldPath};
use crate::window::UrlPlan;

/// The most resources one instance may poll (`event.poller.configuration` entries). Every resource is a job
/// polled on the instance's interval, spending its business's request budget: an instance of more would only
/// queue behind its own budget (issue 18). The API refuses more at create and update with a 400.
pub const MAX_RESOURCES_PER_INSTANCE: usize = 100;

/// The field of a resource's poller configuration a [`PlanProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanField {
    /// `url`: its placeholders, or the hub query it renders to.
    Url,
    /// `datesConfiguration.updatedDateFormat`.
    UpdatedDateFormat,
    /// `datesConfiguration.updatedDateTimezone`.
    UpdatedDateTimezone,
    /// `datesConfiguration.createdDateFormat`.
    CreatedDateFormat,
    /// `datesConfiguration.createdDateTimezone`.
    CreatedDateTimezone,
}

impl PlanField {
    /// The field's path inside the resource's configuration (`datesConfiguration.updatedDateFormat`).
    pub fn path(self) -> &'static str {
        match self {
            PlanField::Url => "url",
            PlanField::UpdatedDateFormat => "datesConfiguration.updatedDateFormat",
            PlanField::UpdatedDateTimezone => "datesConfiguration.updatedDateTimezone",
            PlanField::CreatedDateFormat => "datesConfiguration.createdDateFormat",
            PlanField::CreatedDateTimezone => "datesConfiguration.createdDateTimezone",
        }
    }
}

/// What is wrong with one field of a resource's poller configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// The field.
    pub field: PlanField,
    /// What is wrong, as the parser of that field says it.
    pub message: String,
}

impl std::fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field.path(), self.message)
    }
}

/// Engine-wide settings a plan depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanSettings {
    /// The smallest lookback window `L` (pitfall 3): `L = max(pollDelay, default_lookback)`.
    pub default_lookback: std::time::Duration,
}

impl Default for PlanSettings {
    /// The engine's defaults ([`EngineConfig::default`](crate::EngineConfig)): a lookback of 60 s.
    fn default() -> Self {
        PlanSettings { default_lookback: std::time::Duration::from_secs(60) }
    }
}

/// One resource's poller configuration, compiled.
#[derive(Debug, Clone)]
pub struct PollPlan {
    /// The configuration it was compiled from.
    pub config: PollerConfig,
    /// The URL template.
    pub url: UrlPlan,
    /// How ids and dates are read from records.
    pub reader: RecordReader,
    /// The fields the provider must return in every record (id and date fields).
    pub needs: FieldNeeds,
    /// The lookback window `L`.
    pub lookback: chrono::Duration,
    /// `createdCheckTolerance`.
    pub tolerance: chrono::Duration,
}

fn secs(s: f64) -> chrono::Duration {
    chrono::Duration::milliseconds((s.clamp(0.0, 1e10) * 1000.0).round() as i64)
}

impl PollPlan {
    /// Compiles `config`, the deletion date of the provider's deleted feed being in `deleted_date_field`.
    /// Two-digit years of the masks read into the century before `now` (the engine's clock), as Java does.
    pub fn compile(
        config: &PollerConfig,
        deleted_date_field: &str,
        settings: PlanSettings,
        now: DateTime<Utc>,
    ) -> Result<PollPlan, Vec<PlanProblem>> {
        let mut problems = Vec::new();
        let url = UrlPlan::new(&config.url)
            .map_err(|message| problems.push(PlanProblem { field: PlanField::Url, message }))
            .ok();
        let dates = config.dates_configuration.clone().unwrap_or_default();
        let mut date = |field: &Option<String>,
                        mask: &Option<String>,
                        zone: &Option<String>,
                        fields: (PlanField, PlanField)|
         -> Option<(FieldPath, DateFormat)> {
            // masks and zones are checked even where their date field is missing (a problem of its own)
            let compiled = mask.as_ref().and_then(|mask| {
                oc_template::Mask::compile(mask)
                    .map(|m| m.with_two_digit_year_start(oc_template::two_digit_year_start(now)))
                    .map_err(|e| problems.push(PlanProblem { field: fields.0, message: e.to_string() }))
                    .ok()
            });
            let zone_name = zone.as_deref().unwrap_or("GMT");
            let parsed = oc_template::Zone::parse(zone_name)
                .map_err(|e| problems.push(PlanProblem { field: fields.1, message: e.to_string() }))
                .ok();
            let path = FieldPath::new(field.as_deref()?);
            let format = match (mask, compiled, parsed) {
                (None, _, _) => DateFormat::Iso,
                (Some(source), Some(mask), Some(zone)) => DateFormat::with_mask(mask, zone, source, zone_name),
                _ => return None,
            };
            Some((path, format))
        };
        let updated = date(
            &dates.updated_date_field,
            &dates.updated_date_format,
            &dates.updated_date_timezone,
            (PlanField::UpdatedDateFormat, PlanField::UpdatedDateTimezone),
        );
        let created = date(
            &dates.created_date_field,
            &dates.created_date_format,
            &dates.created_date_timezone,
            (PlanField::CreatedDateFormat, PlanField::CreatedDateTimezone),
        );
        let (Some(url), true) = (url, problems.is_empty()) else { return Err(problems) };
        let default = chrono::Duration::from_std(settings.default_lookback).unwrap_or(chrono::Duration::MAX);
        Ok(PollPlan {
            needs: FieldNeeds {
                fields: std::iter::once(config.id_field.clone())
                    .chain(config.updated_field().map(str::to_owned))
                    .chain(config.created_field().map(str::to_owned))
                    .collect(),
            },
            reader: RecordReader {
                id: FieldPath::new(&config.id_field),
                updated,
                created,
                deleted: FieldPath::new(deleted_date_field),
            },
            url,
            lookback: secs(config.poll_delay).max(default),
            tolerance: secs(config.created_check_tolerance),
            config: config.clone(),
        })
    }

    /// The query of a poll whose window starts at `bound`: the URL rendered once, compiled by the provider.
    /// Also the earliest instant the rendered placeholders denote under any reading (`None` without
    /// placeholders). `guard`: render earlier where some reading of the text would be after `bound` (pitfall 7).
    pub fn query(
        &self,
        provider: &dyn Provider,
        bound: DateTime<Utc>,
        guard: bool,
    ) -> (Result<CompiledQuery, QueryError>, Option<DateTime<Utc>>) {
        let (url, sent) = self.url.render(bound, guard);
        (provider.compile(&url, &self.needs), sent)
    }

    /// The query of a complete scan of every id (no lower bound: the placeholders rendered at the Unix epoch; only
    /// the id field asked for), for reconciling deletions.
    pub fn reconcile_query(&self, provider: &dyn Provider) -> Result<CompiledQuery, QueryError> {
        let (url, _) = self.url.render(DateTime::<Utc>::UNIX_EPOCH, false);
        provider.compile(&url, &FieldNeeds { fields: vec![self.config.id_field.clone()] })
    }

    /// The query a poll would send now, compiled to check it: the provider's warnings (a repaired quote, say), or
    /// why it does not compile.
    pub fn check_query(&self, provider: &dyn Provider, now: DateTime<Utc>) -> Result<Vec<String>, QueryError> {
        self.query(provider, now, true).0.map(|q| q.warnings)
    }

    /// The page size of this resource's polls: its `pageSize`, else the URL's, else the provider's largest.
    pub fn page_size(&self, query: &CompiledQuery, max_page_size: u32) -> u32 {
        let max = max_page_size.max(1);
        self.config.page_size.or(query.page_size).unwrap_or(max).clamp(1, max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oc_model::poller::DatesConfiguration;

    fn settings() -> PlanSettings {
        PlanSettings { default_lookback: std::time::Duration::from_secs(60) }
    }

    fn check(config: PollerConfig, expected: &[&str]) {
        let got = match PollPlan::compile(&config, "deleted_at", settings(), Utc::now()) {
            Ok(_) => Vec::new(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        };
        assert_eq!(got, expected, "{config:?}");
    }

    fn dated(updated_format: &str, zone: &str) -> PollerConfig {
        let mut c = PollerConfig::new("/hubs/finance/x?since=${date}", "id");
        c.dates_configuration = Some(DatesConfiguration {
            updated_date_field: Some("updated_at".into()),
            updated_date_format: Some(updated_format.into()),
            updated_date_timezone: Some(zone.into()),
            ..DatesConfiguration::default()
        });
        c
    }

    #[test]
    fn every_problem_names_its_field() {
        check(dated("yyyy-MM-dd'T'HH:mm:ss'Z'", "GMT"), &[]);
        check(
            PollerConfig::new("/x?since=${date:qqq}", "id"),
            &[
                "url: invalid date mask: illegal pattern character `q`: expected one of G y Y M L w W D d F E u a H k K \
               h m s S z Z X, or quote it at byte 16\n/x?since=${date:qqq}\n                ^",
            ],
        );
        let problems = match PollPlan::compile(&dated("yyyy-qq", "Mars/Olympus"), "deleted_at", settings(), Utc::now())
        {
            Err(p) => p,
            Ok(_) => panic!("a bad mask and a bad zone compile"),
        };
        let fields: Vec<PlanField> = problems.iter().map(|p| p.field).collect();
        assert_eq!(fields, [PlanField::UpdatedDateFormat, PlanField::UpdatedDateTimezone]);
    }

    #[test]
    fn the_plan_holds_what_a_poll_needs() {
        let mut config = dated("yyyy-MM-dd'T'HH:mm:ss'Z'", "GMT");
        config.poll_delay = 120.0;
        config.created_check_tolerance = 1.5;
        let plan = PollPlan::compile(&config, "removed_on", settings(), Utc::now()).unwrap();
        assert_eq!(plan.needs.fields, ["id", "updated_at"]);
        assert_eq!(plan.lookback, chrono::Duration::seconds(120), "pollDelay beyond the default lookback");
        assert_eq!(plan.tolerance, chrono::Duration::milliseconds(1500));
        assert_eq!(plan.reader.deleted.as_string(), "removed_on", "the provider's deletion date field");
        let short = PollPlan::compile(&PollerConfig::new("/x", "id"), "d", settings(), Utc::now()).unwrap();
        assert_eq!(short.lookback, chrono::Duration::seconds(60), "never below the default lookback");
    }
}
