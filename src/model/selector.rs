//! Label selectors in the Kubernetes string syntax (`app=web,tier!=db,env in (a,b),!legacy`),
//! parsed once so that the same selector filters server-side (the API's `labelSelector`
//! parameter) and client-side (the manifests source, namespaces).
//!
//! Entry point: [`LabelFilter::parse`].

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt};

/// A parsed label selector and the text it came from.
#[derive(Debug, Clone)]
pub struct LabelFilter {
    text: String,
    selector: Selector,
}

impl PartialEq for LabelFilter {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl LabelFilter {
    /// Parses `text`. Errors say what is wrong with which requirement.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut exprs = Vec::new();
        for req in split_requirements(text)? {
            exprs.push(parse_requirement(&req)?);
        }
        if exprs.is_empty() {
            return Err("empty label selector".into());
        }
        Ok(Self { text: text.trim().to_owned(), selector: exprs.into_iter().collect() })
    }

    /// The selector as the API server's `labelSelector` parameter.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }
}

/// Splits at commas that are not inside `( )`.
fn split_requirements(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        if depth < 0 {
            return Err(format!("unbalanced `)` in `{text}`"));
        }
        cur.push(c);
    }
    if depth != 0 {
        return Err(format!("unbalanced `(` in `{text}`"));
    }
    out.push(cur);
    Ok(out.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

fn valid_key(key: &str) -> Result<String, String> {
    let ok = !key.is_empty()
        && key.len() <= 253
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/'));
    if ok { Ok(key.to_owned()) } else { Err(format!("`{key}` is not a valid label key")) }
}

fn valid_value(v: &str) -> Result<String, String> {
    let ok = v.len() <= 63 && v.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok { Ok(v.to_owned()) } else { Err(format!("`{v}` is not a valid label value")) }
}

fn parse_set(rest: &str) -> Result<BTreeSet<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected `(v1,v2)` after the operator, got `{rest}`"))?;
    inner.split(',').map(|v| valid_value(v.trim())).collect()
}

fn parse_requirement(req: &str) -> Result<Expression, String> {
    if let Some(key) = req.strip_prefix('!') {
        return Ok(Expression::DoesNotExist(valid_key(key.trim())?));
    }
    if let Some((k, v)) = req.split_once("!=") {
        return Ok(Expression::NotEqual(valid_key(k.trim())?, valid_value(v.trim())?));
    }
    if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
        return Ok(Expression::Equal(valid_key(k.trim())?, valid_value(v.trim())?));
    }
    let mut words = req.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or("");
    match words.next().map(str::trim) {
        None => Ok(Expression::Exists(valid_key(key)?)),
        Some(rest) if rest.starts_with("notin") => Ok(Expression::NotIn(valid_key(key)?, parse_set(&rest[5..])?)),
        Some(rest) if rest.starts_with("in") => Ok(Expression::In(valid_key(key)?, parse_set(&rest[2..])?)),
        Some(rest) => Err(format!("unknown operator in `{req}` (near `{rest}`)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn selector_syntax_and_matching() {
        let f = LabelFilter::parse("app=web, tier!=db,env in (prod, stage),!legacy,team").unwrap();
        assert!(f.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "a")])));
        assert!(!f.matches(&labels(&[("app", "web"), ("env", "dev"), ("team", "a")])));
        assert!(!f.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "a"), ("legacy", "1")])));
        assert!(!f.matches(&labels(&[("app", "web"), ("env", "prod"), ("team", "a"), ("tier", "db")])));
        let n = LabelFilter::parse("dns notin (off)").unwrap();
        assert!(n.matches(&labels(&[])));
        assert!(!n.matches(&labels(&[("dns", "off")])));
        assert!(LabelFilter::parse("app=").unwrap().matches(&labels(&[("app", "")])));
        for bad in ["", "a b c", "env in prod", "x=(", "k=v!"] {
            assert!(LabelFilter::parse(bad).is_err(), "{bad}");
        }
    }
}
