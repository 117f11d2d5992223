//! The syntax tree of a CEQL clause, every node with its byte span in the input, and the canonical printer
//! (`Display`): upper-case keywords, single spaces, parentheses only where the tree needs them; printing then
//! parsing gives the same tree.

use std::fmt;

use crate::error::Span;
use crate::lexer;

/// A node of the syntax tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it is in the input (for a parenthesized group: the parentheses included).
    pub span: Span,
}

/// The kinds of node.
#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    /// Every term holds (two or more terms; a parenthesized `AND` stays a nested node).
    And(Vec<Expr>),
    /// Some term holds (two or more terms).
    Or(Vec<Expr>),
    /// `field op value`.
    Compare {
        /// The field.
        field: Field,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Literal,
    },
    /// `field LIKE 'pattern'`.
    Like {
        /// The field.
        field: Field,
        /// The pattern (a string).
        pattern: Literal,
    },
    /// `field IN (v, ...)`.
    In {
        /// The field.
        field: Field,
        /// The values (one at least).
        values: Vec<Literal>,
    },
    /// `field IS NULL` or, `negated`, `field IS NOT NULL`.
    IsNull {
        /// The field.
        field: Field,
        /// True for `IS NOT NULL`.
        negated: bool,
    },
}

/// A field name (dotted paths allowed: `contact.id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name, backticks removed.
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal {
    /// The value.
    pub value: Value,
    /// Where.
    pub span: Span,
}

/// The value of a literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A quoted string, quotes removed and `''` undoubled.
    String(String),
    /// A number, as written (so `1.50` prints back as `1.50`).
    Number(String),
    /// `true` or `false`.
    Bool(bool),
}

impl Value {
    /// The value as text (a string's content, a number as written, `true`/`false`).
    pub fn as_text(&self) -> &str {
        match self {
            Value::String(s) | Value::Number(s) => s,
            Value::Bool(true) => "true",
            Value::Bool(false) => "false",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` (also written `<>`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as CEQL writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

impl Expr {
    /// The same tree with every span set to `0..0`: two clauses that differ only in layout compare equal.
    pub fn without_spans(&self) -> Expr {
        let field = |f: &Field| Field { name: f.name.clone(), span: 0..0 };
        let lit = |l: &Literal| Literal { value: l.value.clone(), span: 0..0 };
        let kind = match &self.kind {
            ExprKind::And(terms) => ExprKind::And(terms.iter().map(Expr::without_spans).collect()),
            ExprKind::Or(terms) => ExprKind::Or(terms.iter().map(Expr::without_spans).collect()),
            ExprKind::Compare { field: f, op, value } => {
                ExprKind::Compare { field: field(f), op: *op, value: lit(value) }
            }
            ExprKind::Like { field: f, pattern } => ExprKind::Like { field: field(f), pattern: lit(pattern) },
            ExprKind::In { field: f, values } => {
                ExprKind::In { field: field(f), values: values.iter().map(lit).collect() }
            }
            ExprKind::IsNull { field: f, negated } => ExprKind::IsNull { field: field(f), negated: *negated },
        };
        Expr { kind, span: 0..0 }
    }

    /// The terms of the top-level conjunction: the children of an `AND` (nested `AND`s flattened), else itself.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
            match &e.kind {
                ExprKind::And(terms) => terms.iter().for_each(|t| walk(t, out)),
                _ => out.push(e),
            }
        }
        walk(self, &mut out);
        out
    }

    /// Every field named in the tree, in order.
    pub fn fields(&self) -> Vec<&Field> {
        let mut out = Vec::new();
        fn walk<'a>(e: &'a Expr, out: &mut Vec<&'a Field>) {
            match &e.kind {
                ExprKind::And(terms) | ExprKind::Or(terms) => terms.iter().for_each(|t| walk(t, out)),
                ExprKind::Compare { field, .. }
                | ExprKind::Like { field, .. }
                | ExprKind::In { field, .. }
                | ExprKind::IsNull { field, .. } => out.push(field),
            }
        }
        walk(self, &mut out);
        out
    }
}

/// True when `name` can be printed without backticks.
fn is_plain_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$');
    first_ok && chars.all(lexer::is_name_char) && lexer::keyword(name).is_none()
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if is_plain_name(&self.name) {
            f.write_str(&self.name)
        } else {
            write!(f, "`{}`", self.name.replace('`', "``"))
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Number(n) => f.write_str(n),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Display for Expr {
    /// Canonical CEQL: upper-case keywords, single spaces, parentheses only where the tree needs them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ExprKind::And(terms) => join(f, terms, " AND ", |t| matches!(t.kind, ExprKind::And(_) | ExprKind::Or(_))),
            ExprKind::Or(terms) => join(f, terms, " OR ", |t| matches!(t.kind, ExprKind::Or(_))),
            ExprKind::Compare { field, op, value } => write!(f, "{field} {} {value}", op.as_str()),
            ExprKind::Like { field, pattern } => write!(f, "{field} LIKE {pattern}"),
            ExprKind::In { field, values } => {
                write!(f, "{field} IN (")?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            ExprKind::IsNull { field, negated: false } => write!(f, "{field} IS NULL"),
            ExprKind::IsNull { field, negated: true } => write!(f, "{field} IS NOT NULL"),
        }
    }
}

fn join(f: &mut fmt::Formatter<'_>, terms: &[Expr], sep: &str, parens: impl Fn(&Expr) -> bool) -> fmt::Result {
    for (i, t) in terms.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        if parens(t) { write!(f, "({t})")? } else { write!(f, "{t}")? }
    }
    Ok(())
}
