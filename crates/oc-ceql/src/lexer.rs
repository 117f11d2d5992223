//! The CEQL lexer: turns a clause into tokens with byte spans, closing a string left open at the end (the one
//! repair) and reporting it as a warning.

use crate::ast::CmpOp;
use crate::error::{Error, ErrorKind, Span, Warning};

/// A token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    /// A plain or backticked name.
    Name(String),
    /// A single-quoted string, unescaped.
    Str(String),
    /// A number as written.
    Num(String),
    And,
    Or,
    Like,
    In,
    Is,
    Not,
    Null,
    True,
    False,
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    Eof,
}

/// The keywords (matched without regard to case).
pub(crate) fn keyword(word: &str) -> Option<Tok> {
    const WORDS: [(&str, Tok); 9] = [
        ("and", Tok::And),
        ("or", Tok::Or),
        ("like", Tok::Like),
        ("in", Tok::In),
        ("is", Tok::Is),
        ("not", Tok::Not),
        ("null", Tok::Null),
        ("true", Tok::True),
        ("false", Tok::False),
    ];
    WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|(_, t)| t.clone())
}

/// Characters allowed after the first one of a plain name.
pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$'
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == '$'
}

/// Tokens with their spans, and the repairs made.
pub(crate) type Lexed = (Vec<(Tok, Span)>, Vec<Warning>);

/// Splits `input` into tokens (the last one [`Tok::Eof`]).
pub(crate) fn tokenize(input: &str) -> Result<Lexed, Error> {
    let bytes = input.as_bytes();
    let mut tokens = Vec::new();
    let mut warnings = Vec::new();
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
                i += 1;
                tokens.push((Tok::LParen, start..i));
            }
            b')' => {
                i += 1;
                tokens.push((Tok::RParen, start..i));
            }
            b',' => {
                i += 1;
                tokens.push((Tok::Comma, start..i));
            }
            b'=' => {
                i += 1;
                tokens.push((Tok::Op(CmpOp::Eq), start..i));
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                i += 2;
                tokens.push((Tok::Op(CmpOp::Ne), start..i));
            }
            b'<' => {
                let (op, len) = match bytes.get(i + 1) {
                    Some(b'=') => (CmpOp::Le, 2),
                    Some(b'>') => (CmpOp::Ne, 2),
                    _ => (CmpOp::Lt, 1),
                };
                i += len;
                tokens.push((Tok::Op(op), start..i));
            }
            b'>' => {
                let (op, len) = if bytes.get(i + 1) == Some(&b'=') { (CmpOp::Ge, 2) } else { (CmpOp::Gt, 1) };
                i += len;
                tokens.push((Tok::Op(op), start..i));
            }
            b'\'' => {
                let (text, end, closed) = quoted(input, i, b'\'');
                if !closed {
                    warnings.push(Warning {
                        message: format!(
                            "the string starting at byte {start} is not closed: a closing `'` was added at the end of \
                             the clause"
                        ),
                        span: Some(start..end),
                    });
                }
                i = end;
                tokens.push((Tok::Str(text), start..i));
            }
            b'`' => {
                let (text, end, closed) = quoted(input, i, b'`');
                if !closed {
                    return Err(Error::new(ErrorKind::UnterminatedField, start..end));
                }
                if text.is_empty() {
                    return Err(Error::new(ErrorKind::EmptyField, start..end));
                }
                i = end;
                tokens.push((Tok::Name(text), start..i));
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(bytes, i);
                if end == i {
                    return Err(Error::new(ErrorKind::UnexpectedChar { found: '-' }, i..i + 1));
                }
                i = end;
                tokens.push((Tok::Num(input[start..i].to_string()), start..i));
            }
            _ => {
                // Slicing at `i` is safe: every arm above consumed whole ASCII characters.
                let ch = input[i..].chars().next().unwrap_or(char::REPLACEMENT_CHARACTER);
                if !is_name_start(ch) {
                    return Err(Error::new(ErrorKind::UnexpectedChar { found: ch }, i..i + ch.len_utf8()));
                }
                while i < bytes.len() && is_name_char(bytes[i] as char) {
                    i += 1;
                }
                let word = &input[start..i];
                tokens.push((keyword(word).unwrap_or_else(|| Tok::Name(word.to_string())), start..i));
            }
        }
    }
    tokens.push((Tok::Eof, input.len()..input.len()));
    Ok((tokens, warnings))
}

/// Reads a `quote`-delimited text starting at `start` (on the opening quote), a doubled quote standing for one.
/// Returns the text, the index after the closing quote (or the end of input) and whether it was closed.
fn quoted(input: &str, start: usize, quote: u8) -> (String, usize, bool) {
    let bytes = input.as_bytes();
    let mut text = String::new();
    let mut i = start + 1;
    let mut run = i;
    while i < bytes.len() {
        if bytes[i] == quote {
            text.push_str(&input[run..i]);
            if bytes.get(i + 1) == Some(&quote) {
                text.push(quote as char);
                i += 2;
                run = i;
                continue;
            }
            return (text, i + 1, true);
        }
        i += 1;
    }
    text.push_str(&input[run..]);
    (text, bytes.len(), false)
}

/// The end of a number `-?digits(.digits)?([eE][+-]?digits)?` starting at `start`, or `start` when there is none.
fn number_end(bytes: &[u8], start: usize) -> usize {
    let digits = |mut i: usize| {
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = start;
    if bytes[i] == b'-' {
        i += 1;
    }
    let int_end = digits(i);
    if int_end == i {
        return start;
    }
    i = int_end;
    if bytes.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        if frac_end > i + 1 {
            i = frac_end;
        }
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        if exp_end > j {
            i = exp_end;
        }
    }
    i
}
