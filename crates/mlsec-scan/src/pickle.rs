//! A symbolic pickle machine.
//!
//! It runs every opcode of protocols 0–5 on a stack of *descriptions* of values, never on values:
//! nothing is imported, called or built. What a loader would import (`GLOBAL`, `STACK_GLOBAL`,
//! `INST`, `EXT*`) and call (`REDUCE`, `NEWOBJ`, `NEWOBJ_EX`, `OBJ`, `INST`, `BUILD`) is resolved
//! through the real stack, memo and marks — so a callable name fetched back from the memo, built
//! from strings on the stack or written as a dotted path is seen exactly as the loader sees it.
//! Every pickle in a stream is read (stacked pickles), and whatever was found before a
//! malformation is kept and reported with it.
//!
//! Values are shared (`Rc`), and every container keeps at most a bounded sample of its items, so
//! memo and `DUP` bombs cost no memory; op count, stack depth, memo size and string lengths are
//! bounded by [`Limits`].

use std::collections::HashMap;
use std::rc::Rc;

use crate::finding::{Finding, Severity};
use crate::policy::{GlobalVerdict, Policy};

/// Bounds on the work one pickle stream may cause.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_ops: u64,
    pub max_stack: usize,
    pub max_memo: usize,
    /// Longest string argument decoded for analysis (longer ones are skipped over, not read).
    pub max_text: usize,
    /// Items of a tuple kept for analysis.
    pub max_tuple_items: usize,
    /// Distinct globals reported per stream before the rest are summarised.
    pub max_findings: usize,
    /// Pickles read from one stream (stacked pickles).
    pub max_pickles: usize,
    /// Distinct globals judged per stream; real checkpoints name a few dozen.
    pub max_globals: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 200_000_000,
            max_stack: 100_000,
            max_memo: 1_000_000,
            max_text: 4096,
            max_tuple_items: 16,
            max_findings: 200,
            max_pickles: 64,
            max_globals: 100_000,
        }
    }
}

#[derive(Debug, Clone)]
enum V {
    Mark,
    None,
    Bool,
    Int(i64),
    Float,
    Text(Rc<str>),
    /// A string too long to keep, or bytes.
    Opaque,
    /// Items (a bounded sample) and nesting depth.
    Tuple(Rc<[V]>, u8),
    List,
    /// A bounded sample of the (key, value) pairs.
    Dict(Rc<[(V, V)]>),
    Set,
    Global(Rc<GlobalRef>),
    /// The result of calling something (callable, arguments), and nesting depth.
    Called(Rc<(V, V)>, u8),
    PersistentId,
    Buffer,
}

/// Nesting kept for symbolic values; deeper values collapse to opaque ones.
const MAX_DEPTH: u8 = 32;

impl V {
    fn depth(&self) -> u8 {
        match self {
            V::Tuple(_, d) | V::Called(_, d) => *d,
            V::Dict(pairs) => {
                pairs
                    .iter()
                    .map(|(k, v)| k.depth().max(v.depth()))
                    .max()
                    .unwrap_or(0)
                    + 1
            }
            _ => 0,
        }
    }
}

#[derive(Debug)]
struct GlobalRef {
    module: String,
    name: String,
    dangerous: bool,
}

/// What scanning one stream found.
#[derive(Debug, Clone, Default)]
pub struct PickleReport {
    pub findings: Vec<Finding>,
    /// Globals the stream names, with their verdicts (allowed ones included, for inventories).
    pub globals: Vec<(String, String)>,
    pub pickles: usize,
    pub ops: u64,
    /// Set when the stream is malformed or a limit stopped the scan.
    pub incomplete: Option<String>,
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    stack: Vec<V>,
    marks: Vec<usize>,
    memo: HashMap<u64, V>,
    policy: &'a Policy,
    limits: &'a Limits,
    report: PickleReport,
    /// Globals already judged, with whether they are dangerous.
    seen: HashMap<(String, String), bool>,
    base: u64,
}

#[derive(Debug)]
enum Stop {
    /// `STOP` reached.
    End,
    Malformed(String),
    Limit(String),
}

/// Scans a byte stream holding one or more pickles.
pub fn scan_pickle(data: &[u8], policy: &Policy, limits: &Limits) -> PickleReport {
    let mut m = Machine {
        data,
        pos: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        policy,
        limits,
        report: PickleReport::default(),
        seen: HashMap::new(),
        base: 0,
    };
    loop {
        m.stack.clear();
        m.marks.clear();
        m.memo.clear();
        m.base = 0;
        match m.run() {
            Stop::End => {
                m.report.pickles += 1;
            }
            Stop::Malformed(why) => {
                m.incomplete(why);
                break;
            }
            Stop::Limit(why) => {
                m.limit(why);
                break;
            }
        }
        if m.pos >= data.len() {
            break;
        }
        if m.report.pickles >= limits.max_pickles {
            m.limit(format!(
                "more than {} pickles in one stream",
                limits.max_pickles
            ));
            break;
        }
        if !looks_like_pickle_start(&data[m.pos..]) {
            m.push_finding(
                "PKL007",
                Severity::Info,
                format!(
                    "{} bytes of non-pickle data after the last STOP were not scanned",
                    data.len() - m.pos
                ),
                m.pos as u64,
            );
            break;
        }
    }
    m.report
}

/// A pickle starts with PROTO (protocol 2+) or, for protocols 0/1, with an opcode that can begin
/// one. Used only to decide whether data after a STOP is another pickle.
fn looks_like_pickle_start(rest: &[u8]) -> bool {
    match rest {
        [0x80, p, ..] => *p <= 5,
        [
            b'(' | b']' | b'}' | b')' | b'c' | b'N' | b'I' | b'L' | b'S' | b'V' | b'X' | b'K'
            | b'J' | b'M' | b'U' | b'T',
            ..,
        ] => true,
        _ => false,
    }
}

impl Machine<'_> {
    fn push_finding(
        &mut self,
        rule: &'static str,
        severity: Severity,
        message: String,
        offset: u64,
    ) {
        self.report.findings.push(Finding {
            rule,
            severity,
            message,
            offset: self.base + offset,
            member: String::new(),
        });
    }

    fn incomplete(&mut self, why: String) {
        let message = format!(
            "malformed pickle (scan stopped at byte {}): {why}",
            self.pos
        );
        self.report.incomplete = Some(message.clone());
        self.push_finding("PKL008", Severity::Warning, message, self.pos as u64);
    }

    fn limit(&mut self, why: String) {
        let message = format!("scan limit reached: {why}; the rest of the stream was not scanned");
        self.report.incomplete = Some(message.clone());
        self.push_finding("PKL009", Severity::High, message, self.pos as u64);
    }

    fn byte(&mut self) -> Result<u8, Stop> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| Stop::Malformed("unexpected end of data".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: u64) -> Result<&[u8], Stop> {
        let n =
            usize::try_from(n).map_err(|_| Stop::Malformed("declared length too large".into()))?;
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.data.len())
            .ok_or_else(|| {
                Stop::Malformed(format!("declared length {n} runs past the end of data"))
            })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, Stop> {
        let bytes = self.take(n as u64)?;
        let mut v = 0u64;
        for (i, b) in bytes.iter().enumerate() {
            v |= u64::from(*b) << (8 * i);
        }
        Ok(v)
    }

    fn line(&mut self) -> Result<&[u8], Stop> {
        let rest = &self.data[self.pos..];
        let n = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| Stop::Malformed("text argument without newline".into()))?;
        let s = &rest[..n];
        self.pos += n + 1;
        Ok(s)
    }

    /// Reads a length-prefixed string; long ones are skipped, not copied.
    fn take_text(&mut self, n: u64) -> Result<V, Stop> {
        let max = self.limits.max_text as u64;
        let bytes = self.take(n)?;
        Ok(if n <= max {
            V::Text(Rc::from(String::from_utf8_lossy(bytes).as_ref()))
        } else {
            V::Opaque
        })
    }

    fn text(&self, bytes: &[u8]) -> V {
        if bytes.len() > self.limits.max_text {
            return V::Opaque;
        }
        V::Text(Rc::from(String::from_utf8_lossy(bytes).as_ref()))
    }

    fn push(&mut self, v: V) -> Result<(), Stop> {
        if self.stack.len() >= self.limits.max_stack {
            return Err(Stop::Limit(format!(
                "stack deeper than {}",
                self.limits.max_stack
            )));
        }
        self.stack.push(v);
        Ok(())
    }

    /// Lowest stack index the current frame may touch: values above the innermost MARK, as in
    /// CPython, where MARK starts a fresh stack and a pop past it is an underflow.
    fn floor(&self) -> usize {
        self.marks.last().map(|m| m + 1).unwrap_or(0)
    }

    fn pop(&mut self) -> Result<V, Stop> {
        let floor = self.floor();
        if self.stack.len() <= floor {
            return Err(Stop::Malformed("pop from an empty stack".into()));
        }
        Ok(self.stack.pop().expect("checked"))
    }

    fn top(&mut self) -> Result<&mut V, Stop> {
        let floor = self.floor();
        if self.stack.len() <= floor {
            return Err(Stop::Malformed("stack is empty".into()));
        }
        Ok(self.stack.last_mut().expect("checked"))
    }

    fn pop_mark(&mut self) -> Result<Vec<V>, Stop> {
        let mark = self
            .marks
            .pop()
            .ok_or_else(|| Stop::Malformed("no MARK on the stack".into()))?;
        // The mark itself was pushed as a placeholder.
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn tuple(&self, items: Vec<V>) -> V {
        let keep = items.len().min(self.limits.max_tuple_items);
        let depth = items.iter().take(keep).map(V::depth).max().unwrap_or(0) + 1;
        if depth > MAX_DEPTH {
            // Deeper structure adds nothing to the analysis and would make dropping it recurse.
            return V::Opaque;
        }
        V::Tuple(items.into_iter().take(keep).collect(), depth)
    }

    /// A dict of `existing` pairs plus `flat` (key, value, key, value, …), sampled.
    fn dict_with(&self, existing: &[(V, V)], flat: Vec<V>) -> V {
        let keep = self.limits.max_tuple_items;
        let mut pairs: Vec<(V, V)> = existing.to_vec();
        let mut it = flat.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            if pairs.len() >= keep {
                break;
            }
            if k.depth().max(v.depth()) >= MAX_DEPTH {
                continue;
            }
            pairs.push((k, v));
        }
        V::Dict(pairs.into())
    }

    /// SETITEM(S) on the value at the top: dicts record the pairs; anything else (an object with
    /// `__setitem__`) is left as it is.
    fn set_items(&mut self, flat: Vec<V>) -> Result<(), Stop> {
        let top = self.top()?;
        if let V::Dict(pairs) = top {
            let pairs = pairs.clone();
            let updated = self.dict_with(&pairs, flat);
            *self.top()? = updated;
        }
        Ok(())
    }

    /// joblib writes a NumPy array's raw bytes straight after the BUILD of its
    /// `NumpyArrayWrapper` (preceded, since joblib 1.2, by alignment padding); its loader reads
    /// them from the stream. Skip exactly those bytes, computed from the wrapper's state, so the
    /// pickle that follows is read as the loader reads it.
    fn skip_joblib_array(&mut self, state: &V) -> Result<(), Stop> {
        let V::Dict(pairs) = state else { return Ok(()) };
        let get = |name: &str| {
            pairs.iter().find_map(|(k, v)| match k {
                V::Text(t) if t.as_ref() == name => Some(v.clone()),
                _ => None,
            })
        };
        let count = match get("shape") {
            Some(V::Tuple(dims, _)) => dims.iter().try_fold(1u64, |acc, d| match d {
                V::Int(n) if *n >= 0 => acc.checked_mul(*n as u64),
                _ => None,
            }),
            _ => None,
        };
        let itemsize = match get("dtype") {
            Some(V::Called(call, _)) => match &call.1 {
                V::Tuple(args, _) => match args.first() {
                    Some(V::Text(code)) => dtype_itemsize(code),
                    _ => None,
                },
                _ => None,
            },
            _ => None,
        };
        let (Some(count), Some(itemsize)) = (count, itemsize) else {
            // Object arrays are nested pickles and are read as such; unknown layouts are left to
            // the opcode reader, which reports a malformation if raw bytes follow.
            return Ok(());
        };
        if let Some(V::Int(align)) = get("numpy_array_alignment_bytes")
            && align > 0
        {
            let padding = self.uint(1)?;
            self.take(padding)?;
        }
        let bytes = count
            .checked_mul(itemsize)
            .ok_or_else(|| Stop::Malformed("joblib array size overflows".into()))?;
        self.take(bytes)?;
        Ok(())
    }

    fn memo_put(&mut self, key: u64) -> Result<(), Stop> {
        let v = self.top()?.clone();
        if self.memo.len() >= self.limits.max_memo && !self.memo.contains_key(&key) {
            return Err(Stop::Limit(format!(
                "more than {} memo entries",
                self.limits.max_memo
            )));
        }
        self.memo.insert(key, v);
        Ok(())
    }

    fn memo_get(&mut self, key: u64) -> Result<(), Stop> {
        let v = self
            .memo
            .get(&key)
            .cloned()
            .ok_or_else(|| Stop::Malformed(format!("memo key {key} was never stored")))?;
        self.push(v)
    }

    fn global(&mut self, module: &str, name: &str, at: usize, how: &str) -> Result<V, Stop> {
        let key = (module.to_owned(), name.to_owned());
        if let Some(&dangerous) = self.seen.get(&key) {
            return Ok(V::Global(Rc::new(GlobalRef {
                module: key.0,
                name: key.1,
                dangerous,
            })));
        }
        if self.seen.len() >= self.limits.max_globals {
            return Err(Stop::Limit(format!(
                "more than {} distinct globals",
                self.limits.max_globals
            )));
        }
        let verdict = self.policy.judge(module, name);
        let dangerous = matches!(verdict, GlobalVerdict::Denied { .. });
        self.seen.insert(key.clone(), dangerous);
        {
            self.report.globals.push(key);
            if self.report.findings.len() < self.limits.max_findings {
                match verdict {
                    GlobalVerdict::Denied { pattern, reason } => self.push_finding(
                        "PKL001",
                        Severity::Critical,
                        format!("{how} `{module}.{name}` (matches `{pattern}`: {reason})"),
                        at as u64,
                    ),
                    GlobalVerdict::Unknown => self.push_finding(
                        "PKL002",
                        Severity::Warning,
                        format!("{how} `{module}.{name}`, which is not on the allow-list"),
                        at as u64,
                    ),
                    GlobalVerdict::Allowed => {}
                }
            }
        }
        Ok(V::Global(Rc::new(GlobalRef {
            module: module.to_owned(),
            name: name.to_owned(),
            dangerous,
        })))
    }

    /// A call of `callable` with `args`; judged by what is really being called.
    fn call(&mut self, callable: V, args: Option<&V>, at: usize, how: &str) -> V {
        match &callable {
            V::Global(g)
                if g.dangerous && self.report.findings.len() < self.limits.max_findings => {
                    self.push_finding(
                        "PKL003",
                        Severity::Critical,
                        format!(
                            "{how} calls `{}.{}`{}",
                            g.module,
                            g.name,
                            describe_args(args)
                        ),
                        at as u64,
                    );
                }
            V::Called(inner, _)
                // Calling what a call returned: `getattr(obj, "system")(...)` and friends.
                if self.report.findings.len() < self.limits.max_findings => {
                    self.push_finding(
                        "PKL004",
                        Severity::High,
                        format!(
                            "{how} calls the result of another call ({}): a way to reach callables the policy never sees",
                            describe(&inner.0)
                        ),
                        at as u64,
                    );
                }
            V::Text(_) | V::Opaque | V::Int(_) | V::Float | V::Bool | V::None => {
                // Calling a non-callable fails at load time; nothing runs.
            }
            _ => {}
        }
        let args = args.cloned().unwrap_or(V::None);
        let depth = callable.depth().max(args.depth()) + 1;
        if depth > MAX_DEPTH {
            return V::Called(Rc::new((V::Opaque, V::Opaque)), 1);
        }
        V::Called(Rc::new((callable, args)), depth)
    }

    fn run(&mut self) -> Stop {
        loop {
            if let Err(stop) = self.step() {
                return stop;
            }
        }
    }

    fn step(&mut self) -> Result<(), Stop> {
        self.report.ops += 1;
        if self.report.ops > self.limits.max_ops {
            return Err(Stop::Limit(format!(
                "more than {} opcodes",
                self.limits.max_ops
            )));
        }
        let at = self.pos;
        let op = self.byte()?;
        match op {
            // --- structure ---
            b'(' => {
                self.marks.push(self.stack.len());
                self.push(V::Mark)?;
            }
            b'.' => return Err(Stop::End),
            b'0' => {
                self.pop()?;
            }
            b'1' => {
                self.pop_mark()?;
            }
            b'2' => {
                let v = self.top()?.clone();
                self.push(v)?;
            }
            0x80 => {
                let proto = self.byte()?;
                if proto > 5 {
                    return Err(Stop::Malformed(format!("unsupported protocol {proto}")));
                }
            }
            0x95 => {
                // FRAME: an 8-byte length prefix; the opcodes inside are read as usual.
                self.uint(8)?;
            }
            // --- scalars ---
            b'N' => self.push(V::None)?,
            0x88 | 0x89 => self.push(V::Bool)?,
            b'I' => {
                let line = self.line()?;
                let v = match line {
                    b"00" | b"01" => V::Bool,
                    _ => V::Int(
                        std::str::from_utf8(line)
                            .ok()
                            .and_then(|t| t.trim().parse().ok())
                            .unwrap_or(0),
                    ),
                };
                self.push(v)?;
            }
            b'J' => {
                let v = self.uint(4)? as u32 as i32;
                self.push(V::Int(i64::from(v)))?;
            }
            b'K' => {
                let v = self.uint(1)?;
                self.push(V::Int(v as i64))?;
            }
            b'M' => {
                let v = self.uint(2)?;
                self.push(V::Int(v as i64))?;
            }
            b'L' => {
                self.line()?;
                self.push(V::Int(0))?;
            }
            0x8a => {
                let n = self.uint(1)?;
                self.take(n)?;
                self.push(V::Int(0))?;
            }
            0x8b => {
                let n = self.uint(4)?;
                self.take(n)?;
                self.push(V::Int(0))?;
            }
            b'F' => {
                self.line()?;
                self.push(V::Float)?;
            }
            b'G' => {
                self.take(8)?;
                self.push(V::Float)?;
            }
            // --- strings and bytes ---
            b'S' => {
                let line = self.line()?.to_vec();
                let unquoted = line
                    .strip_prefix(b"'")
                    .and_then(|l| l.strip_suffix(b"'"))
                    .or_else(|| line.strip_prefix(b"\"").and_then(|l| l.strip_suffix(b"\"")))
                    .ok_or_else(|| Stop::Malformed("STRING argument is not quoted".into()))?;
                let v = self.text(unquoted);
                self.push(v)?;
            }
            b'V' => {
                let line = self.line()?.to_vec();
                let v = self.text(&line);
                self.push(v)?;
            }
            b'T' | b'X' => {
                let n = self.uint(4)?;
                let v = self.take_text(n)?;
                self.push(v)?;
            }
            b'U' | 0x8c => {
                let n = self.uint(1)?;
                let v = self.take_text(n)?;
                self.push(v)?;
            }
            0x8d => {
                let n = self.uint(8)?;
                let v = self.take_text(n)?;
                self.push(v)?;
            }
            b'B' => {
                let n = self.uint(4)?;
                self.take(n)?;
                self.push(V::Opaque)?;
            }
            b'C' => {
                let n = self.uint(1)?;
                self.take(n)?;
                self.push(V::Opaque)?;
            }
            0x8e | 0x96 => {
                let n = self.uint(8)?;
                self.take(n)?;
                self.push(V::Opaque)?;
            }
            0x97 => self.push(V::Buffer)?,
            0x98 => {
                self.top()?;
            }
            // --- containers ---
            b')' => self.push(V::Tuple(Rc::from(Vec::new()), 1))?,
            b't' => {
                let items = self.pop_mark()?;
                let t = self.tuple(items);
                self.push(t)?;
            }
            0x85..=0x87 => {
                let n = usize::from(op - 0x84);
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.pop()?);
                }
                items.reverse();
                let t = self.tuple(items);
                self.push(t)?;
            }
            b']' => self.push(V::List)?,
            b'l' => {
                self.pop_mark()?;
                self.push(V::List)?;
            }
            b'a' => {
                self.pop()?;
                self.top()?;
            }
            b'e' => {
                self.pop_mark()?;
                self.top()?;
            }
            b'}' => self.push(V::Dict(Rc::from(Vec::new())))?,
            b'd' => {
                let items = self.pop_mark()?;
                let d = self.dict_with(&[], items);
                self.push(d)?;
            }
            b's' => {
                let value = self.pop()?;
                let key = self.pop()?;
                self.set_items(vec![key, value])?;
            }
            b'u' => {
                let items = self.pop_mark()?;
                self.set_items(items)?;
            }
            0x8f => self.push(V::Set)?,
            0x90 => {
                self.pop_mark()?;
                self.top()?;
            }
            0x91 => {
                self.pop_mark()?;
                self.push(V::Set)?;
            }
            // --- memo ---
            b'p' => {
                let line = self.line()?;
                let key = parse_decimal(line)?;
                self.memo_put(key)?;
            }
            b'q' => {
                let key = self.uint(1)?;
                self.memo_put(key)?;
            }
            b'r' => {
                let key = self.uint(4)?;
                self.memo_put(key)?;
            }
            0x94 => {
                let key = self.memo.len() as u64;
                self.memo_put(key)?;
            }
            b'g' => {
                let line = self.line()?;
                let key = parse_decimal(line)?;
                self.memo_get(key)?;
            }
            b'h' => {
                let key = self.uint(1)?;
                self.memo_get(key)?;
            }
            b'j' => {
                let key = self.uint(4)?;
                self.memo_get(key)?;
            }
            // --- imports ---
            b'c' => {
                let module = String::from_utf8_lossy(self.line()?).into_owned();
                let name = String::from_utf8_lossy(self.line()?).into_owned();
                let g = self.global(&module, &name, at, "GLOBAL imports")?;
                self.push(g)?;
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                let g = match (&module, &name) {
                    (V::Text(m), V::Text(n)) => {
                        let (m, n) = (m.to_string(), n.to_string());
                        self.global(&m, &n, at, "STACK_GLOBAL imports")?
                    }
                    _ => {
                        // The loader would fail on non-strings; we cannot name what it imports.
                        self.push_finding(
                            "PKL005",
                            Severity::High,
                            format!(
                                "STACK_GLOBAL with a module or name that is not a plain string ({} / {})",
                                describe(&module),
                                describe(&name)
                            ),
                            at as u64,
                        );
                        V::Global(Rc::new(GlobalRef {
                            module: describe(&module),
                            name: describe(&name),
                            dangerous: true,
                        }))
                    }
                };
                self.push(g)?;
            }
            0x82..=0x84 => {
                let width = match op {
                    0x82 => 1,
                    0x83 => 2,
                    _ => 4,
                };
                let code = self.uint(width)?;
                self.push_finding(
                    "PKL006",
                    Severity::Warning,
                    format!("EXT{width} imports extension-registry code {code}: the callable depends on the loading interpreter's copyreg table"),
                    at as u64,
                );
                self.push(V::Global(Rc::new(GlobalRef {
                    module: "copyreg.extension".into(),
                    name: code.to_string(),
                    dangerous: false,
                })))?;
            }
            // --- calls ---
            b'R' => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = self.call(callable, Some(&args), at, "REDUCE");
                self.push(v)?;
            }
            0x81 => {
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(cls, Some(&args), at, "NEWOBJ");
                self.push(v)?;
            }
            0x92 => {
                let _kwargs = self.pop()?;
                let args = self.pop()?;
                let cls = self.pop()?;
                let v = self.call(cls, Some(&args), at, "NEWOBJ_EX");
                self.push(v)?;
            }
            b'o' => {
                let mut items = self.pop_mark()?;
                if items.is_empty() {
                    return Err(Stop::Malformed("OBJ without a class".into()));
                }
                let cls = items.remove(0);
                let args = self.tuple(items);
                let v = self.call(cls, Some(&args), at, "OBJ");
                self.push(v)?;
            }
            b'i' => {
                let module = String::from_utf8_lossy(self.line()?).into_owned();
                let name = String::from_utf8_lossy(self.line()?).into_owned();
                let items = self.pop_mark()?;
                let cls = self.global(&module, &name, at, "INST imports")?;
                let args = self.tuple(items);
                let v = self.call(cls, Some(&args), at, "INST");
                self.push(v)?;
            }
            b'b' => {
                let state = self.pop()?;
                let target = self.top()?.clone();
                match target {
                    V::Global(g) => {
                        // BUILD on a class or function object itself, not on an instance:
                        // `setattr` on a module-level object, the core of attribute-overwrite
                        // gadgets.
                        self.push_finding(
                            "PKL010",
                            Severity::Critical,
                            format!(
                                "BUILD sets attributes on the global `{}.{}` itself ({})",
                                g.module,
                                g.name,
                                describe(&state)
                            ),
                            at as u64,
                        );
                    }
                    V::Called(inner, _) => {
                        if let V::Global(g) = &inner.0
                            && g.module == "joblib.numpy_pickle"
                            && g.name == "NumpyArrayWrapper"
                        {
                            self.skip_joblib_array(&state)?;
                        } else if let V::Global(g) = &inner.0
                            && g.dangerous
                        {
                            self.push_finding(
                                "PKL010",
                                Severity::Critical,
                                format!("BUILD passes state to an object made by `{}.{}` (its __setstate__ runs)", g.module, g.name),
                                at as u64,
                            );
                        }
                    }
                    _ => {}
                }
            }
            b'P' => {
                self.line()?;
                self.push(V::PersistentId)?;
            }
            b'Q' => {
                self.pop()?;
                self.push(V::PersistentId)?;
            }
            other => {
                return Err(Stop::Malformed(format!(
                    "unknown opcode 0x{other:02x} at byte {at}"
                )));
            }
        }
        Ok(())
    }
}

/// Bytes per element of a NumPy dtype code as pickled (`f8`, `<i4`, `U10`, `c16`); `None` for
/// object and unknown codes.
fn dtype_itemsize(code: &str) -> Option<u64> {
    let code = code.trim_start_matches(['<', '>', '=', '|']);
    let kind_len = code.find(|c: char| c.is_ascii_digit())?;
    let (kind, digits) = code.split_at(kind_len);
    let n: u64 = digits.split('[').next()?.parse().ok()?;
    match kind {
        "U" => n.checked_mul(4),
        "f" | "i" | "u" | "b" | "c" | "S" | "V" | "M" | "m" | "a" => Some(n),
        _ => None,
    }
}

fn parse_decimal(line: &[u8]) -> Result<u64, Stop> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .ok_or_else(|| Stop::Malformed("memo key is not a number".into()))
}

fn describe(v: &V) -> String {
    match v {
        V::Text(t) => format!("'{}'", t.chars().take(60).collect::<String>()),
        V::Global(g) => format!("{}.{}", g.module, g.name),
        V::Called(inner, _) => format!("result of calling {}", describe(&inner.0)),
        V::Tuple(items, _) => format!(
            "({})",
            items.iter().map(describe).collect::<Vec<_>>().join(", ")
        ),
        V::Int(i) => i.to_string(),
        V::Mark => "mark".into(),
        V::None => "None".into(),
        V::Bool => "bool".into(),
        V::Float => "float".into(),
        V::Opaque => "bytes".into(),
        V::List => "list".into(),
        V::Dict(_) => "dict".into(),
        V::Set => "set".into(),
        V::PersistentId => "persistent id".into(),
        V::Buffer => "buffer".into(),
    }
}

fn describe_args(args: Option<&V>) -> String {
    match args {
        Some(V::Tuple(items, _)) if !items.is_empty() => {
            let text: Vec<String> = items.iter().map(describe).collect();
            let mut s = text.join(", ");
            if s.chars().count() > 160 {
                // Truncate by characters: argument text is attacker-controlled UTF-8.
                s = s.chars().take(160).collect();
                s.push('…');
            }
            format!(" with ({s})")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(data: &[u8]) -> PickleReport {
        scan_pickle(data, &Policy::default_policy(), &Limits::default())
    }

    fn rules(r: &PickleReport) -> Vec<&'static str> {
        r.findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn every_opcode_family_runs_without_findings_on_plain_data() {
        // proto 4 frame, ints of every width, floats, strings, bytes, containers, memo, sets.
        let mut p = vec![0x80, 4, 0x95];
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(
            b"(K\x01M\x02\x00J\x03\x00\x00\x00\x8a\x01\x05\x8b\x01\x00\x00\x00\x06",
        );
        p.extend_from_slice(b"G\x00\x00\x00\x00\x00\x00\xf0?");
        p.extend_from_slice(b"\x8c\x01aC\x01b\x8e\x01\x00\x00\x00\x00\x00\x00\x00c");
        p.extend_from_slice(b"\x88\x89N\x8f(K\x01\x90\x94(K\x02\x91t");
        p.extend_from_slice(
            b"]K\x01a](K\x02K\x03e}K\x01K\x02s}(K\x01K\x02u\x86\x87\x94h\x00j\x00\x00\x00\x00\x85.",
        );
        let r = scan(&p);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.pickles, 1);
        assert!(r.incomplete.is_none());
        // protocol 0 text forms
        let p0 = b"((I1\nI01\nL5L\nF1.5\nS'x'\nVy\np0\ng0\nlp1\n(dp2\nt.";
        let r = scan(p0);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
    }

    #[test]
    fn persistent_ids_and_buffers_are_not_findings() {
        let r = scan(b"\x80\x05(X\x07\x00\x00\x00storageQ\x97\x98t.");
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        let r = scan(b"Pstorage0\n.");
        assert!(r.findings.is_empty());
    }

    #[test]
    fn unknown_global_is_a_warning_and_ext_is_flagged() {
        let r = scan(b"\x80\x02cmypkg.model\nNet\n)\x81.");
        assert_eq!(rules(&r), vec!["PKL002"]);
        let r = scan(b"\x80\x02\x82\x01)R.");
        assert_eq!(rules(&r), vec!["PKL006"]);
    }

    #[test]
    fn stack_global_on_non_strings_is_high() {
        let r = scan(b"\x80\x04K\x01K\x02\x93.");
        assert_eq!(rules(&r), vec!["PKL005"]);
    }

    #[test]
    fn findings_before_a_malformation_are_kept() {
        let r = scan(b"cos\nsystem\n\xff");
        assert_eq!(rules(&r), vec!["PKL001", "PKL008"]);
        assert!(r.incomplete.is_some());
    }

    #[test]
    fn trailing_non_pickle_data_is_noted() {
        let r = scan(b"\x80\x02K\x01.\x00\x00\x00garbage");
        assert_eq!(rules(&r), vec!["PKL007"]);
    }

    #[test]
    fn malformed_inputs_are_errors_not_panics() {
        let cases: &[&[u8]] = &[
            b"",
            b"\x80",
            b"\x80\x09",
            b"0",
            b"1",
            b"t",
            b"R",
            b"h\x05",
            b"g",
            b"X\xff\xff\xff\xff",
            b"\x8d\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\x8e\x00\x00\x00\x00\x00\x00\x00\x80",
            b"\x95\xff\xff\xff\xff\xff\xff\xff\xff",
            b"S'unterminated",
            b"Sx\n",
            b"o",
            b"(o",
            b"pnan\n",
            b"\x93",
            b"b",
        ];
        for c in cases {
            let r = scan(c);
            assert!(r.incomplete.is_some(), "{c:?} accepted");
            assert_eq!(r.findings.last().map(|f| f.rule), Some("PKL008"), "{c:?}");
        }
    }

    #[test]
    fn bombs_stop_at_the_limits_with_a_finding() {
        // DUP bomb: the stack limit stops it.
        let mut dup = b"\x80\x02N".to_vec();
        dup.extend(std::iter::repeat_n(b'2', 1_000_000));
        let r = scan(&dup);
        assert_eq!(rules(&r), vec!["PKL009"]);

        // Memo bomb: each tuple holds the previous one twice; shared, so linear cost here.
        let mut memo = b"\x80\x02]q\x00".to_vec();
        for _ in 0..200_000 {
            memo.extend_from_slice(b"h\x00h\x00\x86q\x000");
        }
        memo.push(b'.');
        let r = scan(&memo);
        assert!(r.findings.is_empty(), "{:?}", r.findings);

        // Mark nesting is bounded by the stack limit too.
        let marks = vec![b'('; 1_000_000];
        assert_eq!(rules(&scan(&marks)), vec!["PKL009"]);

        // An op budget stops endless streams of cheap opcodes.
        let limits = Limits {
            max_ops: 1000,
            ..Limits::default()
        };
        let mut many = b"\x80\x02".to_vec();
        many.extend(std::iter::repeat_n(b"N0".as_slice(), 10_000).flatten());
        let r = scan_pickle(&many, &Policy::default_policy(), &limits);
        assert_eq!(rules(&r), vec!["PKL009"]);

        // Distinct globals are bounded; repeated ones are judged once.
        let mut globals = b"\x80\x02".to_vec();
        for i in 0..3_000 {
            globals.extend_from_slice(format!("cm{i}\nx\n0").as_bytes());
        }
        let few = Limits {
            max_globals: 1_000,
            max_findings: 10,
            ..Limits::default()
        };
        let r = scan_pickle(&globals, &Policy::default_policy(), &few);
        assert_eq!(rules(&r).last(), Some(&"PKL009"));
        let mut repeated = b"\x80\x02".to_vec();
        for _ in 0..150_000 {
            repeated.extend_from_slice(b"cos\nsystem\n0");
        }
        repeated.push(b'.');
        assert_eq!(rules(&scan(&repeated)), vec!["PKL001"]);

        // Stacked pickles are bounded in number.
        let stacked = b"K\x01.".repeat(1000);
        let r = scan(&stacked);
        assert_eq!(r.pickles, 64);
        assert_eq!(rules(&r), vec!["PKL009"]);
    }
}
