//! The CEQL parser: recursive descent over the lexer's tokens, `OR` below `AND`, with a nesting limit so that no
//! input can exhaust the stack.

use crate::ast::{Expr, ExprKind, Field, Literal, Value};
use crate::error::{Error, ErrorKind, Span, Warning};
use crate::lexer::{Tok, tokenize};

/// The deepest nesting of parentheses accepted.
pub const MAX_DEPTH: usize = 64;

/// A parsed clause and what was repaired on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The expression.
    pub expr: Expr,
    /// Repairs made (at most the closing of a string left open at the end).
    pub warnings: Vec<Warning>,
}

/// Parses a CEQL clause. Never panics; errors carry the byte span of the offending input. The clause needs no
/// dialect: what its field names stand for is the evaluator's and the provider's business.
///
/// ```
/// use oc_ceql::{parse, ExprKind};
///
/// let parsed = parse("lastModifiedDate >= '2024-01-01T00:00:00Z' and attributes='id,name").unwrap();
/// assert!(matches!(parsed.expr.kind, ExprKind::And(ref terms) if terms.len() == 2));
/// assert_eq!(parsed.warnings.len(), 1); // the string left open at the end was closed
/// assert_eq!(parsed.expr.to_string(), "lastModifiedDate >= '2024-01-01T00:00:00Z' AND attributes = 'id,name'");
/// ```
pub fn parse(input: &str) -> Result<Parsed, Error> {
    let (tokens, warnings) = tokenize(input)?;
    let mut p = Parser { input, tokens, pos: 0 };
    if p.peek() == &Tok::Eof {
        return Err(Error::new(ErrorKind::Empty, 0..input.len()));
    }
    let expr = p.or(0)?;
    if p.peek() != &Tok::Eof {
        return Err(p.expected("`AND`, `OR` or the end of the clause"));
    }
    Ok(Parsed { expr, warnings })
}

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<(Tok, Span)>,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos].0
    }

    fn span(&self) -> Span {
        self.tokens[self.pos].1.clone()
    }

    fn bump(&mut self) -> (Tok, Span) {
        let t = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn expected(&self, what: &str) -> Error {
        let span = self.span();
        let found = match self.peek() {
            Tok::Eof => "the end of the clause".to_string(),
            _ => format!("`{}`", &self.input[span.clone()]),
        };
        Error::new(ErrorKind::Expected { expected: what.to_string(), found }, span)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, Error> {
        let first = self.and(depth)?;
        if self.peek() != &Tok::Or {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.peek() == &Tok::Or {
            self.bump();
            terms.push(self.and(depth)?);
        }
        Ok(group(terms, ExprKind::Or))
    }

    fn and(&mut self, depth: usize) -> Result<Expr, Error> {
        let first = self.atom(depth)?;
        if self.peek() != &Tok::And {
            return Ok(first);
        }
        let mut terms = vec![first];
        while self.peek() == &Tok::And {
            self.bump();
            terms.push(self.atom(depth)?);
        }
        Ok(group(terms, ExprKind::And))
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, Error> {
        if self.peek() == &Tok::LParen {
            if depth >= MAX_DEPTH {
                return Err(Error::new(ErrorKind::TooDeep { max: MAX_DEPTH }, self.span()));
            }
            let (_, open) = self.bump();
            let mut inner = self.or(depth + 1)?;
            if self.peek() != &Tok::RParen {
                return Err(self.expected("`)`"));
            }
            let (_, close) = self.bump();
            inner.span = open.start..close.end;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, Error> {
        let Tok::Name(name) = self.peek().clone() else { return Err(self.expected("a field name or `(`")) };
        let (_, span) = self.bump();
        let field = Field { name, span };
        let start = field.span.start;
        let (kind, end) = match self.peek().clone() {
            Tok::Op(op) => {
                self.bump();
                let value = self.literal()?;
                let end = value.span.end;
                (ExprKind::Compare { field, op, value }, end)
            }
            Tok::Like => {
                self.bump();
                let pattern = self.literal()?;
                if !matches!(pattern.value, Value::String(_)) {
                    let found = format!("`{}`", &self.input[pattern.span.clone()]);
                    let kind = ErrorKind::Expected { expected: "a quoted pattern after `LIKE`".into(), found };
                    return Err(Error::new(kind, pattern.span));
                }
                let end = pattern.span.end;
                (ExprKind::Like { field, pattern }, end)
            }
            Tok::In => {
                self.bump();
                if self.peek() != &Tok::LParen {
                    return Err(self.expected("`(` after `IN`"));
                }
                self.bump();
                let mut values = vec![self.literal()?];
                while self.peek() == &Tok::Comma {
                    self.bump();
                    values.push(self.literal()?);
                }
                if self.peek() != &Tok::RParen {
                    return Err(self.expected("`,` or `)`"));
                }
                let (_, close) = self.bump();
                (ExprKind::In { field, values }, close.end)
            }
            Tok::Is => {
                self.bump();
                let negated = self.peek() == &Tok::Not;
                if negated {
                    self.bump();
                }
                if self.peek() != &Tok::Null {
                    return Err(self.expected(if negated { "`NULL`" } else { "`NULL` or `NOT NULL`" }));
                }
                let (_, null) = self.bump();
                (ExprKind::IsNull { field, negated }, null.end)
            }
            _ => return Err(self.expected("an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`, `LIKE`, `IN`, `IS`)")),
        };
        Ok(Expr { kind, span: start..end })
    }

    fn literal(&mut self) -> Result<Literal, Error> {
        let value = match self.peek() {
            Tok::Str(s) => Value::String(s.clone()),
            Tok::Num(n) => Value::Number(n.clone()),
            Tok::True => Value::Bool(true),
            Tok::False => Value::Bool(false),
            _ => return Err(self.expected("a value (a quoted string, a number, `true` or `false`)")),
        };
        let (_, span) = self.bump();
        Ok(Literal { value, span })
    }
}

fn group(terms: Vec<Expr>, make: fn(Vec<Expr>) -> ExprKind) -> Expr {
    let start = terms.first().map_or(0, |t| t.span.start);
    let end = terms.last().map_or(0, |t| t.span.end);
    Expr { kind: make(terms), span: start..end }
}
