//! `k0rdent doctor`: what a deploy needs, checked one by one without changing anything (the
//! state-directory probe file is created and removed). Each check ends `ok`, `warn`, `fail`
//! or `skip` with a one-line detail; a failure carries the remedy, a skip says which earlier
//! check it depends on. The Azure checks resolve credentials exactly as every other command
//! does, through [`crate::deployment::connect_with`].

mod azure;
mod configuration;
mod local;
mod routes;
mod tools;

use std::fmt;

use serde::Serialize;

use crate::request::Request;
use crate::view::{Cell, Paint, Table};

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    /// What a deploy needs is there.
    Ok,
    /// Usable, but worth knowing (a deploy may still work).
    Warn,
    /// A deploy would fail here.
    Fail,
    /// Could not run, because a check it depends on failed.
    Skip,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        })
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Check {
    /// Stable name (`config`, `azure-credentials`, `k0sctl`, ...).
    pub(crate) name: &'static str,
    pub(crate) status: Status,
    /// What was found, one line, never a secret.
    pub(crate) detail: String,
    /// What to do, for `warn` and `fail`.
    pub(crate) remedy: Option<String>,
}

impl Check {
    pub(crate) fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            remedy: None,
        }
    }

    pub(crate) fn warn(
        name: &'static str,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Check {
            name,
            status: Status::Warn,
            detail: detail.into(),
            remedy: Some(remedy.into()),
        }
    }

    pub(crate) fn fail(
        name: &'static str,
        detail: impl Into<String>,
        remedy: Option<String>,
    ) -> Self {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            remedy,
        }
    }

    /// A check that cannot run: `why` names what it needs ("no credentials").
    pub(crate) fn skip(name: &'static str, why: &str) -> Self {
        Check {
            name,
            status: Status::Skip,
            detail: format!("skipped: {why}"),
            remedy: None,
        }
    }
}

/// Every check, in the order they are shown.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) checks: Vec<Check>,
}

impl Report {
    /// Whether a deploy has what it needs: nothing failed. A skip always follows a failure it
    /// depends on, so it never passes a report on its own.
    pub(crate) fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.status, Status::Ok | Status::Warn))
    }

    fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// `13 checks: 11 ok, 1 warn, 1 fail, 0 skipped; ...` with what to do next.
    pub(crate) fn summary(&self) -> String {
        let counts = format!(
            "{} checks: {} ok, {} warn, {} fail, {} skipped",
            self.checks.len(),
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail),
            self.count(Status::Skip),
        );
        if self.passed() {
            format!("{counts}; ready to deploy")
        } else {
            format!("{counts}; fix the failures above, then run `k0rdent doctor` again")
        }
    }

    /// The table: a header row, aligned columns (coloured by result on a terminal), the
    /// remedy under each `warn`/`fail` line. The summary goes under it.
    pub(crate) fn table(&self) -> Table {
        let mut table = Table::new(&["CHECK", "RESULT", "DETAIL"]);
        for c in &self.checks {
            let paint = match c.status {
                Status::Ok => Paint::Green,
                Status::Warn => Paint::Yellow,
                Status::Fail => Paint::Red,
                Status::Skip => Paint::Dim,
            };
            table.row(vec![
                Cell::new(c.name),
                Cell::painted(c.status.to_string(), paint),
                Cell::new(c.detail.clone()),
            ]);
            if let Some(r) = c.remedy.as_deref().filter(|_| c.status != Status::Ok) {
                table.under(format!("hint: {r}"));
            }
        }
        table
    }
}

/// Runs every check. The Azure checks and the local ones run side by side.
pub(crate) async fn run(request: &Request) -> Report {
    let state = local::state_dir(&request.state_dir).await;
    let recorded = state.recorded.as_ref();
    let config = configuration::check(request, recorded);
    let loaded = config.loaded.as_ref();
    let (azure_checks, tool_checks, sudo, routes) = tokio::join!(
        azure::checks(loaded),
        tools::checks(loaded),
        local::sudo(),
        routes::check(loaded, recorded),
    );
    let mut checks = vec![config.check, state.check];
    checks.extend(azure_checks);
    checks.extend(tool_checks);
    checks.push(sudo);
    checks.push(routes);
    Report { checks }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            checks: vec![
                Check::ok("config", "./k0rdent.yaml: 3 controllers, 2 workers"),
                Check::fail(
                    "azure-credentials",
                    "no token",
                    Some("run `az login`".into()),
                ),
                Check::skip("clock", "no Azure credentials"),
                Check::warn("sudo", "needs a password", "run `sudo -v`"),
            ],
        }
    }

    #[test]
    fn the_table_aligns_its_columns_and_puts_the_remedy_under_its_line() {
        let t = format!(
            "{}\n{}\n",
            report().table().render(None, false),
            report().summary()
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CHECK              RESULT  DETAIL");
        assert_eq!(
            lines[1],
            "config             ok      ./k0rdent.yaml: 3 controllers, 2 workers"
        );
        assert_eq!(lines[2], "azure-credentials  fail    no token");
        assert_eq!(lines[3], "                   hint: run `az login`");
        assert_eq!(
            lines[4],
            "clock              skip    skipped: no Azure credentials"
        );
        assert_eq!(lines[6], "                   hint: run `sudo -v`");
        assert_eq!(
            lines[8],
            "4 checks: 1 ok, 1 warn, 1 fail, 1 skipped; fix the failures above, then run \
             `k0rdent doctor` again"
        );
    }

    #[test]
    fn warnings_pass_and_a_failure_or_a_skip_does_not() {
        let mut r = report();
        assert!(!r.passed());
        r.checks
            .retain(|c| matches!(c.status, Status::Ok | Status::Warn));
        assert!(r.passed());
        assert!(r.summary().ends_with("ready to deploy"), "{}", r.summary());
        r.checks.push(Check::skip("clock", "x"));
        assert!(!r.passed());
    }
}
