//! [`LogSource`]: a queue over the embedded event log (`events.ndjson`),
//! so the consumers run in process with no AWS (docs/ARCHITECTURE.md,
//! "After the queues"). Not built yet: the next commit.
