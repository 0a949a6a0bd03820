//! Your own steps on the k0rdent engine: a two-step pipeline that publishes a page into a
//! directory, with an observer that looks at the directory, state in a [`MemoryStore`].
//!
//! It shows the three things the engine promises an embedder:
//! 1. the first run does the work; a rerun skips what is recorded done *and* observed done;
//! 2. drift is found by observing, not by trusting the record: delete the page by hand and
//!    only the step that wrote it runs again;
//! 3. a step reruns when its inputs change (its fingerprint), and only that step.
//!
//! Run it with `cargo run -p k0rdent-examples --example custom_step`.

#![allow(clippy::print_stdout)] // An example program: it reports to its user on stdout.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use k0rdent_core::fingerprint::{Digest, Fingerprint};
use k0rdent_core::observation::{Facts, ObserveError};
use k0rdent_core::state::{DeploymentState, RunOutcome};
use k0rdent_core::step::StepInputs;
use k0rdent_core::{
    Engine, Evidence, MemoryStore, Observation, Observer, Outputs, Pipeline, Snapshot, Step,
    StepContext, StepError, StepId, StepOutcome, StepRecord, Teardown,
};

/// What the observer saw: one bulk look at the directory per run, shared by every step.
struct Site {
    dir_exists: bool,
    page: Option<String>,
}

struct SiteObserver {
    dir: PathBuf,
}

#[async_trait]
impl Observer for SiteObserver {
    fn name(&self) -> &str {
        "site"
    }

    async fn observe(&self, _state: &DeploymentState) -> Result<Facts, ObserveError> {
        let page = match tokio::fs::read_to_string(self.dir.join("index.html")).await {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            // Anything but a definite "not there" is unknown: the planner blocks rather than
            // redoing work it cannot see.
            Err(e) => return Err(ObserveError::new(format!("{}: {e}", self.dir.display()))),
        };
        Ok(Facts::new(Site {
            dir_exists: self.dir.is_dir(),
            page,
        }))
    }
}

/// Creates the directory.
struct MakeDir {
    id: StepId,
    dir: PathBuf,
}

#[async_trait]
impl Step for MakeDir {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn observe(&self, snapshot: &Snapshot, _record: Option<&StepRecord>) -> Observation {
        match snapshot.get::<Site>() {
            Some(site) if site.dir_exists => {
                Observation::done(Evidence::new().with("dir", self.dir.display()))
            }
            Some(_) => Observation::absent(format!("{} does not exist", self.dir.display())),
            None => Observation::unknown("the site observer did not answer"),
        }
    }

    async fn apply(&self, _ctx: &StepContext) -> Result<StepOutcome, StepError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| StepError::permanent(format!("{}: {e}", self.dir.display())))?;
        Ok(StepOutcome::done(
            Outputs::new().with("dir", self.dir.display().to_string()),
            Evidence::new().with("dir", self.dir.display()),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        remove(&self.dir, tokio::fs::remove_dir_all(&self.dir).await)
    }
}

/// Writes the page; its only input is the text, so changing the text reruns only this step.
struct WritePage {
    id: StepId,
    after: StepId,
    dir: PathBuf,
    text: String,
}

#[async_trait]
impl Step for WritePage {
    fn id(&self) -> &StepId {
        &self.id
    }

    fn dependencies(&self) -> Vec<StepId> {
        vec![self.after.clone()]
    }

    fn fingerprint(&self, _inputs: &StepInputs<'_>) -> Fingerprint {
        Fingerprint::builder().input("text", &self.text).finish()
    }

    /// Compares the page with what this step last wrote (its recorded digest), not with the
    /// text it is given now: a new text is an input change, an edit by hand is drift.
    fn observe(&self, snapshot: &Snapshot, record: Option<&StepRecord>) -> Observation {
        let written = record.and_then(|r| r.outputs.get_str("digest"));
        match snapshot.get::<Site>().map(|s| s.page.as_deref()) {
            Some(Some(page)) if written.is_none_or(|d| d == digest(page)) => {
                Observation::done(Evidence::new().with("bytes", page.len()))
            }
            Some(Some(page)) => Observation::partial(
                "the page was edited by hand",
                Evidence::new().with("bytes", page.len()),
            ),
            Some(None) => Observation::absent("index.html is missing"),
            None => Observation::unknown("the site observer did not answer"),
        }
    }

    async fn apply(&self, ctx: &StepContext) -> Result<StepOutcome, StepError> {
        // Say what is about to happen before doing it: an interrupted run finds this entry in
        // the step's journal and knows the write may have happened.
        ctx.write_journal("writing", &self.text.len()).await?;
        let path = self.dir.join("index.html");
        tokio::fs::write(&path, &self.text)
            .await
            .map_err(|e| StepError::transient(format!("{}: {e}", path.display())))?;
        Ok(StepOutcome::done(
            Outputs::new()
                .with("page", path.display().to_string())
                .with("digest", digest(&self.text)),
            Evidence::new().with("bytes", self.text.len()),
        ))
    }

    async fn teardown(&self, _ctx: &StepContext) -> Result<Teardown, StepError> {
        let path = self.dir.join("index.html");
        remove(&path, tokio::fs::remove_file(&path).await)
    }
}

fn digest(text: &str) -> String {
    Digest::of_bytes(text.as_bytes()).as_str().to_owned()
}

fn remove(path: &Path, result: std::io::Result<()>) -> Result<Teardown, StepError> {
    match result {
        Ok(()) => Ok(Teardown::Done),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Teardown::nothing("it was already gone"))
        }
        Err(e) => Err(StepError::permanent(format!("{}: {e}", path.display()))),
    }
}

fn pipeline(dir: &Path, text: &str) -> anyhow::Result<Pipeline> {
    let make_dir = StepId::parse("make_dir")?;
    Ok(Pipeline::builder()
        .observer(SiteObserver { dir: dir.into() })
        .step(MakeDir {
            id: make_dir.clone(),
            dir: dir.into(),
        })
        .step(WritePage {
            id: StepId::parse("write_page")?,
            after: make_dir,
            dir: dir.into(),
            text: text.into(),
        })
        .build()?)
}

/// Runs `deploy` once and prints what ran; returns the ids of the steps that ran.
async fn deploy(store: &MemoryStore, dir: &Path, text: &str) -> anyhow::Result<Vec<String>> {
    let engine = Engine::builder(pipeline(dir, text)?, Arc::new(store.clone())).build()?;
    println!("plan:\n{}", engine.plan().await?.plan);
    let report = engine.deploy().await?;
    anyhow::ensure!(
        report.outcome == RunOutcome::Succeeded,
        "the run ended {:?}:\n{}",
        report.outcome,
        report.final_plan
    );
    let ran: Vec<String> = report.steps.iter().map(|s| s.step.to_string()).collect();
    println!("ran: {ran:?}\n");
    Ok(ran)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let root = tempfile::tempdir()?;
    let dir = root.path().join("site");
    // The state (and the event log and keys) live in memory here; `FileStore::new(dir)` keeps
    // them on disk, so a rerun after a crash continues where it stopped.
    let store = MemoryStore::new();

    println!("== first run: everything runs");
    let ran = deploy(&store, &dir, "<h1>hello</h1>").await?;
    anyhow::ensure!(ran == ["make_dir", "write_page"], "first run ran {ran:?}");

    println!("== rerun: recorded done and observed done, so nothing runs");
    let ran = deploy(&store, &dir, "<h1>hello</h1>").await?;
    anyhow::ensure!(ran.is_empty(), "the rerun ran {ran:?}");

    println!("== drift: the page was deleted by hand; only its step runs");
    std::fs::remove_file(dir.join("index.html"))?;
    let ran = deploy(&store, &dir, "<h1>hello</h1>").await?;
    anyhow::ensure!(ran == ["write_page"], "after drift it ran {ran:?}");

    println!("== new input: the text changed; only the step that uses it reruns");
    let ran = deploy(&store, &dir, "<h1>hello again</h1>").await?;
    anyhow::ensure!(ran == ["write_page"], "after a change it ran {ran:?}");
    anyhow::ensure!(std::fs::read_to_string(dir.join("index.html"))? == "<h1>hello again</h1>");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// `cargo test` runs the example exactly as `cargo run --example` does.
    #[test]
    fn runs() {
        if let Err(e) = super::main() {
            panic!("the example failed: {e:#}");
        }
    }
}
