//! The webhook sender of event hooks ([`twinflow_core::WebhookSender`]): an
//! HTTP POST of the event's JSON with the hook's headers. Errors name the
//! URL without its query string and never a header's value.

use std::time::Duration;
use twinflow_core::{WebhookError, WebhookSender};

/// Posts webhooks with one reused HTTP client.
#[derive(Debug, Clone)]
pub struct HttpWebhooks {
    client: reqwest::Client,
}

impl HttpWebhooks {
    /// A sender; fails only when the TLS stack cannot be set up.
    pub fn new() -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(concat!("twinflow/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("failed to set up the webhook HTTP client: {e}"))?;
        Ok(Self { client })
    }
}

/// The URL as messages show it: without query string or fragment.
fn bare(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

#[async_trait::async_trait]
impl WebhookSender for HttpWebhooks {
    async fn post(
        &self,
        url: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<(), WebhookError> {
        let mut request = self
            .client
            .post(url)
            .timeout(timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in headers {
            let value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                WebhookError(format!(
                    "header `{name}` of the headers file has a value that is not valid in HTTP"
                ))
            })?;
            request = request.header(name.as_str(), value);
        }
        let response = request.send().await.map_err(|e| {
            // reqwest's message may hold the URL with its query: keep its kind only.
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            WebhookError(format!("POST {}: {kind}", bare(url)))
        })?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(WebhookError(format!(
                "POST {} answered {status}",
                bare(url)
            )))
        }
    }
}
