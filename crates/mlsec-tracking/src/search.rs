//! MLflow's search syntax: `metrics.acc > 0.9 and params.lr = '0.01' and tags.\`team\` LIKE 'a%'`
//! and order-by terms such as `metrics.acc DESC`.
//!
//! Grammar (case-insensitive keywords):
//!
//! ```text
//! filter  := clause ( AND clause )*
//! clause  := ident op value | ident IS [NOT] NULL
//! ident   := [entity '.'] key        entity: metric(s), param(s)/parameter(s), tag(s),
//!                                    attribute(s)/attr/run, dataset(s)
//! key     := `quoted` | "quoted" | bare     bare: letters, digits, _ . - / : and space-free
//! op      := = | != | <> | > | >= | < | <= | LIKE | ILIKE | IN | NOT IN
//! value   := 'text' | "text" | number | ( 'text' , … )
//! ```

use std::fmt;

/// Longest filter or order-by text accepted.
pub const MAX_FILTER_LEN: usize = 10_000;
/// Most clauses in one filter.
pub const MAX_CLAUSES: usize = 100;
/// Most values in one `IN (…)` list.
pub const MAX_LIST_ITEMS: usize = 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid search expression at offset {offset}: {message}")]
pub struct SearchError {
    pub offset: usize,
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, SearchError> {
    Err(SearchError {
        offset,
        message: message.into(),
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Metric,
    Param,
    Tag,
    Attribute,
    Dataset,
    /// No prefix (`name = 'x'` in model searches, `start_time DESC` in orderings).
    Bare,
}

impl Entity {
    fn parse(word: &str) -> Option<Entity> {
        Some(match word.to_ascii_lowercase().as_str() {
            "metric" | "metrics" => Entity::Metric,
            "param" | "params" | "parameter" | "parameters" => Entity::Param,
            "tag" | "tags" => Entity::Tag,
            "attribute" | "attributes" | "attr" | "run" => Entity::Attribute,
            "dataset" | "datasets" => Entity::Dataset,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Like,
    ILike,
    In,
    NotIn,
    IsNull,
    IsNotNull,
}

impl CompareOp {
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Like => "LIKE",
            CompareOp::ILike => "ILIKE",
            CompareOp::In => "IN",
            CompareOp::NotIn => "NOT IN",
            CompareOp::IsNull => "IS NULL",
            CompareOp::IsNotNull => "IS NOT NULL",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    Number(f64),
    Text(String),
    List(Vec<String>),
    None,
}

/// One comparison of a filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub entity: Entity,
    pub key: String,
    pub op: CompareOp,
    pub value: FilterValue,
}

/// One term of an ordering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderTerm {
    pub entity: Entity,
    pub key: String,
    pub ascending: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String, char),
    Number(f64),
    Op(&'static str),
    LParen,
    RParen,
    Comma,
    Dot,
}

fn lex(text: &str) -> Result<Vec<(usize, Token)>, SearchError> {
    if text.len() > MAX_FILTER_LEN {
        return err(0, format!("longer than {MAX_FILTER_LEN} bytes"));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => {
                out.push((start, Token::LParen));
                i += 1;
            }
            b')' => {
                out.push((start, Token::RParen));
                i += 1;
            }
            b',' => {
                out.push((start, Token::Comma));
                i += 1;
            }
            // A dot right after a word is a separator (`tags.v.1`, `metrics.1st`), never the
            // start of a number.
            b'.' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                || matches!(out.last(), Some((_, Token::Word(_) | Token::Number(_))))
                    && adjacent(&out, i, text) =>
            {
                out.push((start, Token::Dot));
                i += 1;
            }
            b'0'..=b'9'
                if matches!(out.last(), Some((_, Token::Dot))) && adjacent(&out, i, text) =>
            {
                // A key part after a dot: `metrics.1st`.
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || b"_-/:".contains(&bytes[j]))
                {
                    j += 1;
                }
                out.push((start, Token::Word(text[i..j].to_owned())));
                i = j;
            }
            b'\'' | b'"' | b'`' => {
                let quote = c;
                i += 1;
                let mut value = String::new();
                loop {
                    let Some(&b) = bytes.get(i) else {
                        return err(start, "unterminated quoted text");
                    };
                    if b == quote {
                        // A doubled quote stands for itself.
                        if bytes.get(i + 1) == Some(&quote) {
                            value.push(quote as char);
                            i += 2;
                            continue;
                        }
                        i += 1;
                        break;
                    }
                    if b == b'\\' && bytes.get(i + 1) == Some(&quote) {
                        value.push(quote as char);
                        i += 2;
                        continue;
                    }
                    // Copy one whole UTF-8 character.
                    let ch = text[i..].chars().next().expect("in bounds");
                    value.push(ch);
                    i += ch.len_utf8();
                }
                out.push((start, Token::Quoted(value, quote as char)));
            }
            b'=' => {
                i += if bytes.get(i + 1) == Some(&b'=') {
                    2
                } else {
                    1
                };
                out.push((start, Token::Op("=")));
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                out.push((start, Token::Op("!=")));
                i += 2;
            }
            b'<' | b'>' => {
                let op = match (c, bytes.get(i + 1)) {
                    (b'<', Some(b'=')) => "<=",
                    (b'>', Some(b'=')) => ">=",
                    (b'<', Some(b'>')) => "!=",
                    (b'<', _) => "<",
                    _ => ">",
                };
                i += op.len().min(2);
                if op == "!=" {
                    i = start + 2;
                }
                out.push((start, Token::Op(op)));
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric()
                        || bytes[j] == b'.'
                        || ((bytes[j] == b'-' || bytes[j] == b'+')
                            && matches!(bytes[j - 1], b'e' | b'E')))
                {
                    j += 1;
                }
                let word = &text[i..j];
                match word.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((start, Token::Number(n))),
                    _ => return err(start, format!("`{word}` is not a number")),
                }
                i = j;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || b"_-/:".contains(&bytes[j]))
                {
                    j += 1;
                }
                out.push((start, Token::Word(text[i..j].to_owned())));
                i = j;
            }
            _ => {
                let ch = text[i..].chars().next().expect("in bounds");
                return err(start, format!("unexpected character {ch:?}"));
            }
        }
    }
    Ok(out)
}

/// Whether the previous token ends exactly at byte `i` (no space between).
fn adjacent(out: &[(usize, Token)], i: usize, text: &str) -> bool {
    let Some((start, token)) = out.last() else {
        return false;
    };
    let len = match token {
        Token::Word(w) => w.len(),
        Token::Dot => 1,
        Token::Number(_) => text[*start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+'))
            .unwrap_or(text.len() - start),
        _ => return false,
    };
    start + len == i
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    len: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.pos).map_or(self.len, |(o, _)| *o)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).map(|(_, t)| t.clone());
        self.pos += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    /// `entity.key`, `entity.\`key\``, or a bare key. A bare word followed by a dot and more
    /// words is an entity prefix only when it names one; otherwise the dots belong to the key
    /// (`tags.mlflow.runName` is the tag `mlflow.runName`).
    fn identifier(&mut self) -> Result<(Entity, String), SearchError> {
        let at = self.offset();
        let first = match self.next() {
            Some(Token::Word(w)) => w,
            Some(Token::Quoted(q, _)) => return Ok((Entity::Bare, q)),
            _ => return err(at, "expected an identifier such as `metrics.acc`"),
        };
        let entity = match (Entity::parse(&first), self.peek()) {
            (Some(e), Some(Token::Dot)) => {
                self.pos += 1;
                e
            }
            _ => {
                return Ok((Entity::Bare, self.rest_of_key(first)));
            }
        };
        let at = self.offset();
        match self.next() {
            Some(Token::Quoted(q, _)) => Ok((entity, q)),
            Some(Token::Word(w)) => Ok((entity, self.rest_of_key(w))),
            Some(Token::Number(n)) => Ok((entity, self.rest_of_key(format_number(n)))),
            _ => err(at, "expected a key after the entity prefix"),
        }
    }

    fn rest_of_key(&mut self, mut key: String) -> String {
        while matches!(self.peek(), Some(Token::Dot))
            && matches!(
                self.tokens.get(self.pos + 1).map(|(_, t)| t),
                Some(Token::Word(_) | Token::Number(_))
            )
        {
            self.pos += 1;
            key.push('.');
            match self.next() {
                Some(Token::Word(w)) => key.push_str(&w),
                Some(Token::Number(n)) => key.push_str(&format_number(n)),
                _ => unreachable!("checked above"),
            }
        }
        key
    }

    fn op(&mut self) -> Result<CompareOp, SearchError> {
        let at = self.offset();
        match self.next() {
            Some(Token::Op(o)) => Ok(match o {
                "=" => CompareOp::Eq,
                "!=" => CompareOp::Ne,
                ">" => CompareOp::Gt,
                ">=" => CompareOp::Ge,
                "<" => CompareOp::Lt,
                _ => CompareOp::Le,
            }),
            Some(Token::Word(w)) => match w.to_ascii_uppercase().as_str() {
                "LIKE" => Ok(CompareOp::Like),
                "ILIKE" => Ok(CompareOp::ILike),
                "IN" => Ok(CompareOp::In),
                "NOT" if self.keyword("IN") => {
                    self.pos += 1;
                    Ok(CompareOp::NotIn)
                }
                "IS" => {
                    let not = self.keyword("NOT");
                    if not {
                        self.pos += 1;
                    }
                    if !self.keyword("NULL") {
                        return err(self.offset(), "expected NULL after IS");
                    }
                    self.pos += 1;
                    Ok(if not {
                        CompareOp::IsNotNull
                    } else {
                        CompareOp::IsNull
                    })
                }
                other => err(at, format!("unknown comparison `{other}`")),
            },
            _ => err(at, "expected a comparison operator"),
        }
    }

    fn value(&mut self, op: CompareOp) -> Result<FilterValue, SearchError> {
        if matches!(op, CompareOp::IsNull | CompareOp::IsNotNull) {
            return Ok(FilterValue::None);
        }
        let at = self.offset();
        if matches!(op, CompareOp::In | CompareOp::NotIn) {
            if self.next() != Some(Token::LParen) {
                return err(at, "expected `(` to open the list");
            }
            let mut items = Vec::new();
            loop {
                let at = self.offset();
                match self.next() {
                    Some(Token::Quoted(q, '\'' | '"')) => items.push(q),
                    Some(Token::Number(n)) => items.push(format_number(n)),
                    _ => return err(at, "expected a quoted value in the list"),
                }
                if items.len() > MAX_LIST_ITEMS {
                    return err(at, format!("more than {MAX_LIST_ITEMS} values in the list"));
                }
                let at = self.offset();
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::RParen) => break,
                    _ => return err(at, "expected `,` or `)`"),
                }
            }
            return Ok(FilterValue::List(items));
        }
        match self.next() {
            Some(Token::Quoted(q, '\'' | '"')) => Ok(FilterValue::Text(q)),
            Some(Token::Number(n)) => Ok(FilterValue::Number(n)),
            _ => err(at, "expected a quoted string or a number"),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

/// Parses a filter into its clauses (joined by AND). An empty filter has none.
pub fn parse_filter(text: &str) -> Result<Vec<Clause>, SearchError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        len: text.len(),
    };
    let mut clauses = Vec::new();
    while p.peek().is_some() {
        if !clauses.is_empty() {
            if !p.keyword("AND") {
                return err(
                    p.offset(),
                    if p.keyword("OR") {
                        "OR is not supported; clauses are joined with AND"
                    } else {
                        "expected AND between clauses"
                    },
                );
            }
            p.pos += 1;
        }
        let (entity, key) = p.identifier()?;
        let op = p.op()?;
        let value = p.value(op)?;
        clauses.push(Clause {
            entity,
            key,
            op,
            value,
        });
        if clauses.len() > MAX_CLAUSES {
            return err(p.offset(), format!("more than {MAX_CLAUSES} clauses"));
        }
    }
    Ok(clauses)
}

/// Parses one order-by term: `metrics.acc DESC`, `attributes.start_time`, `name ASC`.
pub fn parse_order_by(text: &str) -> Result<OrderTerm, SearchError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        tokens,
        pos: 0,
        len: text.len(),
    };
    let (entity, key) = p.identifier()?;
    let ascending = if p.keyword("DESC") {
        p.pos += 1;
        false
    } else {
        if p.keyword("ASC") {
            p.pos += 1;
        }
        true
    };
    if p.peek().is_some() {
        return err(p.offset(), "unexpected text after the order-by term");
    }
    Ok(OrderTerm {
        entity,
        key,
        ascending,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Clause {
        let mut c = parse_filter(text).expect(text);
        assert_eq!(c.len(), 1, "{text}");
        c.remove(0)
    }

    #[test]
    fn parses_the_clauses_mlflow_clients_send() {
        let c = parse_filter("metrics.acc > 0.9 and params.lr = '0.01'").unwrap();
        assert_eq!(c[0].entity, Entity::Metric);
        assert_eq!(c[0].key, "acc");
        assert_eq!(c[0].op, CompareOp::Gt);
        assert_eq!(c[0].value, FilterValue::Number(0.9));
        assert_eq!(c[1].entity, Entity::Param);
        assert_eq!(c[1].value, FilterValue::Text("0.01".into()));
        let c = one("tags.mlflow.runName = \"child\"");
        assert_eq!((c.entity, c.key.as_str()), (Entity::Tag, "mlflow.runName"));
        let c = one("tags.`my key` LIKE 'a%'");
        assert_eq!((c.key.as_str(), c.op), ("my key", CompareOp::Like));
        let c = one("attributes.run_id IN ('a', 'b')");
        assert_eq!(c.value, FilterValue::List(vec!["a".into(), "b".into()]));
        let c = one("attribute.status NOT IN ('FAILED')");
        assert_eq!(c.op, CompareOp::NotIn);
        let c = one("metrics.loss <= -1.5e-3");
        assert_eq!(c.value, FilterValue::Number(-1.5e-3));
        let c = one("name ILIKE '%fraud%'");
        assert_eq!((c.entity, c.op), (Entity::Bare, CompareOp::ILike));
        let c = one("tags.team IS NOT NULL");
        assert_eq!(c.op, CompareOp::IsNotNull);
        let c = one("metrics.`f1 score` != 3");
        assert_eq!(c.op, CompareOp::Ne);
        let c = one("tags.v.1 = 'x'");
        assert_eq!(c.key, "v.1");
        let c = one("metrics.1st > 2");
        assert_eq!((c.entity, c.key.as_str()), (Entity::Metric, "1st"));
        let c = one("metrics.acc > .5");
        assert_eq!(c.value, FilterValue::Number(0.5));
        let c = one("params.a <> 'x'");
        assert_eq!(c.op, CompareOp::Ne);
        assert!(parse_filter("").unwrap().is_empty());
        assert!(parse_filter("   ").unwrap().is_empty());
    }

    #[test]
    fn order_terms() {
        let o = parse_order_by("metrics.acc DESC").unwrap();
        assert_eq!(
            (o.entity, o.key.as_str(), o.ascending),
            (Entity::Metric, "acc", false)
        );
        let o = parse_order_by("attributes.start_time").unwrap();
        assert!(o.ascending);
        let o = parse_order_by("start_time desc").unwrap();
        assert_eq!((o.entity, o.ascending), (Entity::Bare, false));
        assert!(parse_order_by("metrics.acc DESC extra").is_err());
    }

    #[test]
    fn refuses_what_it_cannot_read_with_the_offset() {
        for bad in [
            "metrics.acc >",
            "metrics.acc > 1 or params.x = 'y'",
            "metrics.acc 1",
            "params.x = 'unterminated",
            "attributes.run_id IN ('a',",
            "metrics.acc > 1e999",
            "params.x = 'a' params.y = 'b'",
            "metrics. > 1",
            "tags.x IS 3",
            "§",
        ] {
            assert!(parse_filter(bad).is_err(), "{bad}");
        }
        let e = parse_filter("metrics.acc > 1 or x = 'y'").unwrap_err();
        assert_eq!(e.offset, 16);
        assert!(parse_filter(&"a".repeat(MAX_FILTER_LEN + 1)).is_err());
        let many = vec!["metrics.a > 1"; MAX_CLAUSES + 1].join(" and ");
        assert!(parse_filter(&many).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(text in "\\PC{0,200}") {
            let _ = parse_filter(&text);
            let _ = parse_order_by(&text);
        }
    }
}
