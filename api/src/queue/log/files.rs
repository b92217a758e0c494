//! The files of a [`LogSource`](super::LogSource): reading the log,
//! handing messages out, the cursor and the dead-letter file. Everything
//! here blocks on the disk and runs on the blocking pool (see the parent
//! module's doc).

use super::*;

/// What a [`LogSource`] reads and writes, and how.
pub(super) struct Files {
    pub(super) queue: Queue,
    pub(super) options: LogOptions,
    pub(super) log: PathBuf,
    pub(super) cursor_file: PathBuf,
    pub(super) dead_letter_file: PathBuf,
    /// What this process appended to the log, read instead of the file
    /// where it can be.
    pub(super) tail: Arc<Tail>,
}

impl Files {
    /// Reads complete lines past `read_to` into `entries` (this queue's
    /// only), up to [`WINDOW`] entries: from the log's [`Tail`] where it
    /// knows them, else from the file.
    pub(super) fn refill(&self, state: &mut State) -> Result<(), SourceError> {
        if state.entries.len() >= WINDOW {
            return Ok(());
        }
        if let Some(lines) = self.tail.from(state.read_to, WINDOW - state.entries.len()) {
            for line in lines {
                state.read_to = line.end;
                let Some(appended) = line.appended else {
                    continue;
                };
                if !Queue::routes(&appended.event.event_type).contains(&self.queue) {
                    continue;
                }
                state.entries.push_back(Entry {
                    start: line.start,
                    end: line.end,
                    event: appended.event,
                    json: appended.json,
                    receives: 0,
                    invisible_until: None,
                    deleted: false,
                });
            }
            return Ok(());
        }
        let mut file = match std::fs::File::open(&self.log) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(self.error(format!("{}: {e}", self.log.display()))),
        };
        let io = |e: std::io::Error| self.error(format!("{}: {e}", self.log.display()));
        loop {
            file.seek(SeekFrom::Start(state.read_to)).map_err(io)?;
            let mut chunk = Vec::new();
            let limit = READ_CHUNK.max(LINE_BOUNDS.max_bytes as u64 + 1);
            (&mut file)
                .take(limit)
                .read_to_end(&mut chunk)
                .map_err(io)?;
            let Some(last_newline) = chunk.iter().rposition(|&b| b == b'\n') else {
                if chunk.len() as u64 == limit {
                    // A line longer than any event: skip to its end.
                    state.read_to += chunk.len() as u64;
                    continue;
                }
                return Ok(());
            };
            let mut offset = state.read_to;
            for line in chunk[..=last_newline].split_inclusive(|&b| b == b'\n') {
                let start = offset;
                offset += line.len() as u64;
                let Some(event) = parse_for(self.queue, line) else {
                    continue;
                };
                let Ok(json) = std::str::from_utf8(&line[..line.len() - 1]) else {
                    continue;
                };
                state.entries.push_back(Entry {
                    start,
                    end: offset,
                    event: Arc::new(event),
                    json: Arc::from(json),
                    receives: 0,
                    invisible_until: None,
                    deleted: false,
                });
            }
            state.read_to = offset;
            if state.entries.len() >= WINDOW || (chunk.len() as u64) < limit {
                return Ok(());
            }
        }
    }

    /// Drops deleted entries from the front and persists the cursor when
    /// it moved.
    pub(super) fn advance(&self, state: &mut State) -> Result<(), SourceError> {
        while state.entries.front().is_some_and(|e| e.deleted) {
            state.entries.pop_front();
        }
        let cursor = state.entries.front().map_or(state.read_to, |e| e.start);
        if cursor == state.cursor {
            return Ok(());
        }
        let tmp = self.cursor_file.with_extension("cursor.tmp");
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(cursor.to_string().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.cursor_file)?;
            if let Some(dir) = self.cursor_file.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| self.error(format!("{}: {e}", self.cursor_file.display())))?;
        state.cursor = cursor;
        Ok(())
    }

    /// Appends `event` to the dead-letter file (`fsync`ed).
    pub(super) fn dead_letter(&self, event: &Event) -> Result<(), SourceError> {
        let mut line = serde_json::to_vec(event).map_err(|e| self.error(e.to_string()))?;
        line.push(b'\n');
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        crate::owner_only::open(&self.dead_letter_file, &mut options)
            .and_then(|mut f| {
                f.write_all(&line)?;
                f.sync_data()
            })
            .map_err(|e| self.error(format!("{}: {e}", self.dead_letter_file.display())))
    }

    pub(super) fn error(&self, cause: String) -> SourceError {
        SourceError {
            queue: self.queue.name().to_owned(),
            cause,
        }
    }

    /// Takes up to `max` visible messages (see the module doc).
    pub(super) fn take(&self, state: &mut State, max: usize) -> Result<Vec<Delivery>, SourceError> {
        let now = Instant::now();
        let fifo = self.queue.is_fifo();
        let mut blocked: HashSet<String> = HashSet::new();
        let mut heads: HashSet<String> = HashSet::new();
        let mut taken: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        for (i, entry) in state.entries.iter_mut().enumerate() {
            if out.len() == max {
                break;
            }
            if entry.deleted {
                continue;
            }
            if entry.in_flight(now) {
                if fifo {
                    blocked.insert(entry.group().to_owned());
                }
                continue;
            }
            if fifo && blocked.contains(entry.group()) {
                continue;
            }
            if entry.receives >= self.queue.max_receive_count() {
                dead.push(i);
                continue;
            }
            // Later messages of its group may come in this same receive,
            // in order (as SQS FIFO hands them out); the group is held
            // only while messages of an earlier receive are in flight. A
            // receive counts against the group's first message only: the
            // ones riding behind it come back with it when it fails (the
            // loop never deletes past a failure in a group), and must not
            // reach the dead-letter file for its sake.
            let rides_behind = fifo && !heads.insert(entry.group().to_owned());
            if !rides_behind {
                entry.receives += 1;
            }
            if fifo {
                let n = taken.entry(entry.group().to_owned()).or_default();
                *n += 1;
                if *n == GROUP_MAX {
                    blocked.insert(entry.group().to_owned());
                }
            }
            entry.invisible_until = Some(now + self.options.visibility);
            out.push(Delivery {
                event: entry.event.clone(),
                json: Some(entry.json.clone()),
                handle: entry.end.to_string(),
                receives: entry.receives.max(1),
                enqueued_at: entry.event.time,
                traceparent: entry.event.traceparent.clone(),
            });
        }
        for i in dead {
            let event = state.entries[i].event.clone();
            self.dead_letter(&event)?;
            state.entries[i].deleted = true;
            state.dead_letters += 1;
            metrics::counter!("nax_worker_dead_lettered_total", "queue" => self.queue.name())
                .increment(1);
            tracing::warn!(queue = self.queue.name(), event_id = %event.id,
                "moved to the dead-letter file after the maximum receives");
        }
        if !out.is_empty() || state.entries.front().is_some_and(|e| e.deleted) {
            self.advance(state)?;
        }
        Ok(out)
    }

    pub(super) fn each<'a>(
        state: &'a mut State,
        handles: &[String],
    ) -> impl Iterator<Item = &'a mut Entry> + 'a {
        let wanted: HashSet<u64> = handles.iter().filter_map(|h| h.parse().ok()).collect();
        state
            .entries
            .iter_mut()
            .filter(move |e| wanted.contains(&e.end))
    }
}
