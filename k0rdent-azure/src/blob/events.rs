//! The event log as append blobs, `PATH/deployment-events/NNNNNN.jsonl`: appends are
//! batched into one block each, and a blob is rolled over before Azure's 50,000-block
//! limit. Reading concatenates the blobs in order and tolerates a torn last line.

use async_trait::async_trait;
use k0rdent_core::event::EventRecord;
use k0rdent_core::store::{EventLog, History, StoreError, parse_history};
use reqwest::Method;

use super::http::Request;
use super::{BlobStore, remote};

/// The largest block Azure takes in one Append Block (4 MiB).
const MAX_BLOCK: usize = 4 * 1024 * 1024;

pub(crate) struct Writer {
    batch: usize,
    blocks_per_blob: u32,
    buffer: Vec<u8>,
    buffered: usize,
    /// The blob appended to and its committed block count, once found.
    current: Option<(u32, u32)>,
}

impl Writer {
    pub(crate) fn new(batch: usize, blocks_per_blob: u32) -> Self {
        Writer {
            batch,
            blocks_per_blob,
            buffer: Vec::new(),
            buffered: 0,
            current: None,
        }
    }
}

fn segment(n: u32) -> String {
    format!("deployment-events/{n:06}.jsonl")
}

impl BlobStore {
    fn segment_blob(&self, n: u32) -> String {
        self.inner.url.blob(&segment(n))
    }

    /// The last existing segment and its block count (`(1, 0)` when there is none).
    async fn find_segment(&self) -> Result<(u32, u32), StoreError> {
        let mut n = 1;
        let mut found = None;
        loop {
            let name = self.segment_blob(n);
            match self
                .inner
                .http
                .send(
                    Request::new(Method::HEAD, Some(&name), "read the event log"),
                    None,
                )
                .await
            {
                Ok(r) => {
                    let blocks = r
                        .header("x-ms-blob-committed-block-count")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    found = Some((n, blocks));
                    n += 1;
                }
                Err(e) if e.status() == Some(404) => break,
                Err(e) => return Err(remote(&self.location(), &e)),
            }
        }
        Ok(found.unwrap_or((1, 0)))
    }

    async fn create_segment(&self, n: u32) -> Result<(), StoreError> {
        let name = self.segment_blob(n);
        match self
            .inner
            .http
            .send(
                Request::new(Method::PUT, Some(&name), "start an event log blob")
                    .header("x-ms-blob-type", "AppendBlob")
                    .header("if-none-match", "*"),
                None,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.status(), Some(409 | 412)) => Ok(()),
            Err(e) => Err(remote(&self.location(), &e)),
        }
    }

    async fn flush_locked(&self, w: &mut Writer) -> Result<(), StoreError> {
        if w.buffer.is_empty() {
            return Ok(());
        }
        self.ensure_container().await?;
        let (mut n, mut blocks) = match w.current {
            Some(c) => c,
            None => {
                let c = self.find_segment().await?;
                self.create_segment(c.0).await?;
                c
            }
        };
        let data = std::mem::take(&mut w.buffer);
        w.buffered = 0;
        // Whole lines per block, each block at most MAX_BLOCK.
        let mut chunks: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        let mut last_nl = 0;
        for (i, b) in data.iter().enumerate() {
            if *b == b'\n' {
                if i + 1 - start > MAX_BLOCK && last_nl > start {
                    chunks.push(&data[start..last_nl]);
                    start = last_nl;
                }
                last_nl = i + 1;
            }
        }
        if start < data.len() {
            chunks.push(&data[start..]);
        }
        for chunk in chunks {
            if blocks >= w.blocks_per_blob {
                n += 1;
                blocks = 0;
                self.create_segment(n).await?;
            }
            let name = self.segment_blob(n);
            let q = [("comp", "appendblock")];
            let reply = self
                .inner
                .http
                .send(
                    Request::new(Method::PUT, Some(&name), "append to the event log")
                        .query(&q)
                        .body(chunk.to_vec()),
                    None,
                )
                .await
                .map_err(|e| {
                    w.current = None;
                    remote(&self.location(), &e)
                })?;
            blocks = reply
                .header("x-ms-blob-committed-block-count")
                .and_then(|c| c.parse().ok())
                .unwrap_or(blocks + 1);
        }
        w.current = Some((n, blocks));
        Ok(())
    }

    pub(crate) async fn archive_events(&self, dir: &str) -> Result<(), StoreError> {
        let mut w = self.inner.events.lock().await;
        self.flush_locked(&mut w).await?;
        let mut n = 1;
        while let Some(r) = self
            .get(&self.segment_blob(n), "read the event log")
            .await?
        {
            let to = self.inner.url.blob(&format!("{dir}/{}", segment(n)));
            self.put_block(&to, r.body, Vec::new(), "archive the event log")
                .await
                .map_err(|e| remote(&self.location(), &e))?;
            let _ = self
                .inner
                .http
                .send(
                    Request::new(
                        Method::DELETE,
                        Some(&self.segment_blob(n)),
                        "remove the event log",
                    ),
                    None,
                )
                .await;
            n += 1;
        }
        w.current = None;
        Ok(())
    }
}

#[async_trait]
impl EventLog for BlobStore {
    async fn append_event(&self, record: &EventRecord) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(record).map_err(|e| StoreError::Remote {
            location: self.location(),
            detail: format!("cannot encode an event: {e}"),
            remedy: None,
        })?;
        line.push(b'\n');
        let mut w = self.inner.events.lock().await;
        w.buffer.extend_from_slice(&line);
        w.buffered += 1;
        if w.buffered >= w.batch {
            self.flush_locked(&mut w).await?;
        }
        Ok(())
    }

    async fn flush_events(&self) -> Result<(), StoreError> {
        let mut w = self.inner.events.lock().await;
        self.flush_locked(&mut w).await
    }

    async fn history(&self) -> Result<History, StoreError> {
        let mut all = Vec::new();
        let mut n = 1;
        while let Some(r) = self
            .get(&self.segment_blob(n), "read the event log")
            .await?
        {
            all.extend_from_slice(&r.body);
            if !all.is_empty() && !all.ends_with(b"\n") {
                all.push(b'\n');
            }
            n += 1;
        }
        Ok(parse_history(&all))
    }
}
