//! `ocpoll ceql translate --resource NAME [--json] 'WHERE'`: what a CEQL `where` becomes as a Sage v3.1 request.

/// `ocpoll ceql ...`.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum CeqlCmd {
    /// Translate a CEQL where clause for a hub resource into the Sage v3.1 path and query.
    Translate {
        /// The hub resource (customers, vendors, invoices, ... or Sage's snake_case name).
        #[arg(long)]
        resource: String,
        /// Print exactly one JSON object: {"path", "query", "local", "warnings"}.
        #[arg(long)]
        json: bool,
        /// The where clause, e.g. "lastModifiedDate>='2019-03-25T15:31:02Z' and attributes='created_at,updated_at'".
        #[arg(name = "WHERE")]
        where_clause: String,
    },
}

/// Runs a CEQL command: the text to print, or the error to show.
pub(crate) fn run(cmd: &CeqlCmd) -> Result<String, String> {
    match cmd {
        CeqlCmd::Translate { resource, json, where_clause } => {
            let t = oc_sageone::translate(resource, where_clause).map_err(|e| e.to_string())?;
            if *json {
                serde_json::to_string(&t).map_err(|e| e.to_string())
            } else {
                Ok(t.to_string().trim_end().to_string())
            }
        }
    }
}
