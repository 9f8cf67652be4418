//! Credentials never reach a message: [`scrub_url`] drops a URL's user
//! and password and masks the values of query parameters that carry
//! secrets (tokens, keys, signatures, passwords).

/// Query parameters whose values are masked (compared case-insensitively;
/// a name containing `token`, `secret`, `password` or `signature` is too).
const SECRET_PARAMS: [&str; 9] = [
    "key",
    "apikey",
    "api_key",
    "sig",
    "x-amz-credential",
    "x-amz-signature",
    "x-amz-security-token",
    "access_token",
    "auth",
];

fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARAMS.contains(&name.as_str())
        || ["token", "secret", "password", "passwd", "pwd", "signature"]
            .iter()
            .any(|w| name.contains(w))
}

/// `url` without credentials: no `user:password@`, secret query values
/// replaced by `REDACTED`. A URL that does not parse is cut at its `@`.
pub fn scrub_url(url: &str) -> String {
    let Ok(mut parsed) = reqwest::Url::parse(url) else {
        return match (url.find("://"), url.rfind('@')) {
            (Some(s), Some(at)) if at > s => format!("{}{}", &url[..s + 3], &url[at + 1..]),
            _ => url.to_owned(),
        };
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    "REDACTED".to_owned()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::scrub_url;

    #[test]
    fn credentials_and_secret_params_are_scrubbed() {
        let s = scrub_url("https://ann:hunter2@example.org/a.csv?token=abc&x=1&X-Amz-Signature=zz");
        assert_eq!(
            s,
            "https://example.org/a.csv?token=REDACTED&x=1&X-Amz-Signature=REDACTED"
        );
        assert_eq!(scrub_url("not a url://u:p@host/x"), "not a url://host/x");
        assert_eq!(scrub_url("http://h/x"), "http://h/x");
    }
}
