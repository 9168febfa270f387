//! Delivery to one channel: an HTTP POST (Telegram, Discord, webhook) or an SMTP session (`smtp.rs`). Errors
//! never carry the URL or the token.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use serde_json::json;

use super::{Alert, Sink};

pub(super) fn http_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .user_agent(concat!("qalpha/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Delivers one alert to one sink. Errors never carry the URL or token.
pub fn send(http: &ureq::Agent, sink: &Sink, a: &Alert) -> Result<()> {
    let post = |url: &str, body: serde_json::Value| -> Result<()> {
        let resp = http
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| {
                anyhow!(
                    "{} POST failed: {}",
                    sink.name(),
                    redact(&e.to_string(), url)
                )
            })?;
        let st = resp.status().as_u16();
        if !(200..300).contains(&st) {
            bail!("{} answered HTTP {st}", sink.name());
        }
        Ok(())
    };
    match sink {
        Sink::Telegram {
            api_url,
            token,
            chat_id,
        } => post(
            &format!("{api_url}/bot{}/sendMessage", token.as_str()),
            json!({"chat_id": chat_id, "text": a.line(), "disable_web_page_preview": true}),
        ),
        Sink::Discord { url } => post(url, json!({"content": a.line()})),
        Sink::Webhook { url } => post(url, json!(a)),
        Sink::Email(e) => super::smtp::send(e, a),
    }
}

fn redact(msg: &str, url: &str) -> String {
    msg.replace(url, "<url>")
}
