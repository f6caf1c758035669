use std::collections::BTreeMap;
use std::fmt;

use mlsec_types::Digest;
use rayon::prelude::*;
use serde::Serialize;

use crate::checkpoint::{CheckpointProblem, SignedCheckpoint, TrustedKeys};
use crate::event::{AuditEvent, AuditRecord, chain_hash};

/// How many failures a report keeps; the first one is what matters, the rest show the extent.
const MAX_FAILURES: usize = 100;
/// Records per parallel work unit: big enough to amortise scheduling, small enough to balance.
const PAR_CHUNK: usize = 2048;

/// What went wrong at an index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FailureKind {
    /// The record at this position carries another index: an event was deleted, inserted or moved.
    IndexGap { found: u64 },
    /// The stored hash is not `SHA-256(previous hash || canonical event)`: the event or its
    /// predecessor was changed.
    HashMismatch,
    /// The stored bytes are not a canonically encoded audit event.
    Malformed { message: String },
    /// A checkpoint's signed head differs from the chain at that index.
    CheckpointMismatch,
    /// A checkpoint whose signature does not verify.
    CheckpointBadSignature,
    /// A checkpoint signed by a key that is not trusted.
    CheckpointUntrustedKey { key_id: String },
    /// A checkpoint covers events that are no longer in the log: the log was truncated.
    Truncated { checkpoint_index: u64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub index: u64,
    #[serde(flatten)]
    pub kind: FailureKind,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = self.index;
        match &self.kind {
            FailureKind::IndexGap { found } => {
                write!(f, "index {i}: expected event {i}, found event {found}")
            }
            FailureKind::HashMismatch => {
                write!(f, "index {i}: chain hash does not match the event")
            }
            FailureKind::Malformed { message } => {
                write!(f, "index {i}: malformed event: {message}")
            }
            FailureKind::CheckpointMismatch => {
                write!(
                    f,
                    "index {i}: signed checkpoint head differs from the chain"
                )
            }
            FailureKind::CheckpointBadSignature => {
                write!(f, "index {i}: checkpoint signature is not valid")
            }
            FailureKind::CheckpointUntrustedKey { key_id } => {
                write!(
                    f,
                    "index {i}: checkpoint signed by untrusted key `{key_id}`"
                )
            }
            FailureKind::Truncated { checkpoint_index } => write!(
                f,
                "index {i}: log ends here but a checkpoint covers index {checkpoint_index}"
            ),
        }
    }
}

/// The result of verifying a log.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub events: u64,
    pub checkpoints: u64,
    /// Chain hash of the last event, if any.
    pub head: Option<Digest>,
    /// Index of the last event covered by a valid checkpoint.
    pub last_checkpointed_index: Option<u64>,
    /// Events after the last valid checkpoint: protected by the chain only.
    pub unsigned_tail: u64,
    /// The first failures by index (at most 100).
    pub failures: Vec<Failure>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.failures.is_empty()
    }

    pub fn first_bad_index(&self) -> Option<u64> {
        self.failures.first().map(|f| f.index)
    }
}

/// Verifies a log fed to it in batches, in order.
///
/// Every link is checked against the stored hash of its predecessor, so links are independent and
/// are checked in parallel; a single changed, deleted, inserted or moved event is reported at its
/// own index and does not hide later ones.
pub struct ChainVerifier<'a> {
    trusted: &'a TrustedKeys,
    checkpoints: BTreeMap<u64, Vec<&'a SignedCheckpoint>>,
    heads_at_checkpoints: BTreeMap<u64, Digest>,
    expected_index: u64,
    prev: Digest,
    failures: Vec<Failure>,
    check_events: bool,
}

impl<'a> ChainVerifier<'a> {
    pub fn new(trusted: &'a TrustedKeys, checkpoints: &'a [SignedCheckpoint]) -> Self {
        let mut by_index: BTreeMap<u64, Vec<&SignedCheckpoint>> = BTreeMap::new();
        for cp in checkpoints {
            by_index.entry(cp.checkpoint.index).or_default().push(cp);
        }
        ChainVerifier {
            trusted,
            checkpoints: by_index,
            heads_at_checkpoints: BTreeMap::new(),
            expected_index: 0,
            prev: Digest::ZERO,
            failures: Vec::new(),
            check_events: false,
        }
    }

    /// Also decodes every event and checks it is in canonical form. The hash links already make
    /// any byte change evident; this finds events that were malformed when written (a bug or a
    /// forger holding the key), at about a twentieth of the speed.
    pub fn deep(mut self) -> Self {
        self.check_events = true;
        self
    }

    pub fn push_batch(&mut self, batch: &[AuditRecord]) {
        if batch.is_empty() {
            return;
        }
        let base_index = self.expected_index;
        let base_prev = self.prev;
        let check_events = self.check_events;
        let mut found: Vec<Failure> = batch
            .par_chunks(PAR_CHUNK)
            .enumerate()
            .flat_map_iter(|(chunk_no, chunk)| {
                let start = chunk_no * PAR_CHUNK;
                let mut out = Vec::new();
                for (offset, record) in chunk.iter().enumerate() {
                    let pos = start + offset;
                    let expected = base_index + pos as u64;
                    let (prev_index, prev_hash) = if pos == 0 {
                        (base_index.checked_sub(1), base_prev)
                    } else {
                        (Some(batch[pos - 1].index), batch[pos - 1].hash)
                    };
                    let index_ok = match prev_index {
                        None => record.index == 0,
                        Some(p) => record.index == p.wrapping_add(1),
                    };
                    if !index_ok {
                        out.push(Failure {
                            index: expected,
                            kind: FailureKind::IndexGap {
                                found: record.index,
                            },
                        });
                    }
                    if chain_hash(&prev_hash, &record.canonical) != record.hash {
                        out.push(Failure {
                            index: expected,
                            kind: FailureKind::HashMismatch,
                        });
                    }
                    if check_events && let Err(message) = check_canonical(&record.canonical) {
                        out.push(Failure {
                            index: expected,
                            kind: FailureKind::Malformed { message },
                        });
                    }
                }
                out
            })
            .collect();
        found.sort_by_key(|f| f.index);
        self.add_failures(found);

        let end = base_index + batch.len() as u64;
        for (&cp_index, _) in self.checkpoints.range(base_index..end) {
            let pos = (cp_index - base_index) as usize;
            self.heads_at_checkpoints.insert(cp_index, batch[pos].hash);
        }
        self.expected_index = end;
        self.prev = batch[batch.len() - 1].hash;
    }

    fn add_failures(&mut self, found: Vec<Failure>) {
        for f in found {
            if self.failures.len() >= MAX_FAILURES {
                break;
            }
            self.failures.push(f);
        }
    }

    pub fn finish(mut self) -> VerifyReport {
        let events = self.expected_index;
        let mut checkpoint_failures = Vec::new();
        let mut last_checkpointed_index = None;
        let mut count = 0u64;
        for (&index, cps) in &self.checkpoints {
            for cp in cps {
                count += 1;
                match self.trusted.verify(cp) {
                    Err(CheckpointProblem::UntrustedKey) => {
                        checkpoint_failures.push(Failure {
                            index,
                            kind: FailureKind::CheckpointUntrustedKey {
                                key_id: cp.checkpoint.key_id.to_string(),
                            },
                        });
                        continue;
                    }
                    Err(CheckpointProblem::BadSignature) => {
                        checkpoint_failures.push(Failure {
                            index,
                            kind: FailureKind::CheckpointBadSignature,
                        });
                        continue;
                    }
                    Ok(()) => {}
                }
                match self.heads_at_checkpoints.get(&index) {
                    None => checkpoint_failures.push(Failure {
                        index: events,
                        kind: FailureKind::Truncated {
                            checkpoint_index: index,
                        },
                    }),
                    Some(head) if *head != cp.checkpoint.head => {
                        checkpoint_failures.push(Failure {
                            index,
                            kind: FailureKind::CheckpointMismatch,
                        })
                    }
                    Some(_) => {
                        last_checkpointed_index = last_checkpointed_index.max(Some(index));
                    }
                }
            }
        }
        self.failures.extend(checkpoint_failures);
        self.failures.sort_by_key(|f| f.index);
        self.failures.truncate(MAX_FAILURES);
        let unsigned_tail = match last_checkpointed_index {
            Some(i) => events.saturating_sub(i + 1),
            None => events,
        };
        VerifyReport {
            events,
            checkpoints: count,
            head: (events > 0).then_some(self.prev),
            last_checkpointed_index,
            unsigned_tail,
            failures: self.failures,
        }
    }
}

/// An event must decode and be in canonical form: otherwise two encodings of one event could
/// exist, and a verifier reading the JSON could be shown something other than what was hashed.
fn check_canonical(bytes: &[u8]) -> Result<(), String> {
    let event: AuditEvent = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let again = event.canonical().map_err(|e| e.to_string())?;
    if again != bytes {
        return Err("event is not in RFC 8785 canonical form".into());
    }
    Ok(())
}

/// Verifies a complete in-memory log (links, checkpoints, and with `deep` every event's form).
pub fn verify_records(
    records: &[AuditRecord],
    checkpoints: &[SignedCheckpoint],
    trusted: &TrustedKeys,
    deep: bool,
) -> VerifyReport {
    let mut verifier = ChainVerifier::new(trusted, checkpoints);
    if deep {
        verifier = verifier.deep();
    }
    verifier.push_batch(records);
    verifier.finish()
}
