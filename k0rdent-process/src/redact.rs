//! Redaction of what programs print before it reaches errors and logs: WireGuard keys,
//! `PrivateKey`/`private_key` assignments, bearer tokens (JWTs) and any string the caller
//! declared secret.

/// Replaces anything that looks like a WireGuard key (44 base64 characters ending in `=`), a
/// JWT (`eyJ…` with two dots, as Azure and Kubernetes tokens are), and the value of any
/// `PrivateKey`/`private_key` assignment with `[redacted]`.
pub fn redact(text: &str) -> String {
    redact_with(text, &[])
}

/// [`redact`], and every occurrence of each non-empty string in `secrets` too.
pub fn redact_with(text: &str, secrets: &[String]) -> String {
    let mut text = text.to_owned();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        text = text.replace(s.as_str(), "[redacted]");
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let lower = line.to_ascii_lowercase();
        if let Some(pos) = lower
            .find("privatekey")
            .or_else(|| lower.find("private_key"))
            .or_else(|| lower.find("private-key"))
        {
            out.push_str(&line[..pos]);
            out.push_str("[redacted]");
            continue;
        }
        out.push_str(&redact_tokens(line));
    }
    out
}

fn is_b64(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '+' || c == '/'
}

fn is_jwt_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
}

fn redact_tokens(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(is_b64(chars[i - 1]) || is_jwt_char(chars[i - 1]));
        if starts_word && chars[i..].starts_with(&['e', 'y', 'J']) {
            let mut j = i;
            while j < chars.len() && is_jwt_char(chars[j]) {
                j += 1;
            }
            if chars[i..j].iter().filter(|c| **c == '.').count() >= 2 && j - i >= 20 {
                out.push_str("[redacted]");
                i = j;
                continue;
            }
        }
        if is_b64(chars[i]) && starts_word {
            let mut j = i;
            while j < chars.len() && is_b64(chars[j]) {
                j += 1;
            }
            if j - i == 43 && chars.get(j) == Some(&'=') {
                out.push_str("[redacted]");
                i = j + 1;
                continue;
            }
            out.extend(&chars[i..j]);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_private_key_lines_are_redacted() {
        let key = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=";
        let text = format!("peer {key} endpoint\nPrivateKey = {key}\nplain line");
        let r = redact(&text);
        assert!(!r.contains(key), "{r}");
        assert_eq!(r, "peer [redacted] endpoint\n[redacted]\nplain line");
    }

    #[test]
    fn ordinary_words_survive_redaction() {
        let t = "wg-quick: `wgk0abc' already exists; see https://example.test/a.b.c";
        assert_eq!(redact(t), t);
    }

    #[test]
    fn bearer_tokens_and_declared_secrets_are_redacted() {
        let jwt = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJl-_x";
        let r = redact(&format!("Authorization: Bearer {jwt} rejected"));
        assert_eq!(r, "Authorization: Bearer [redacted] rejected");
        let r = redact_with(
            "login with hunter2 failed",
            &["hunter2".to_owned(), String::new()],
        );
        assert_eq!(r, "login with [redacted] failed");
    }
}
