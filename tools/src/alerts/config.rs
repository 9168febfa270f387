//! `[alerts]`: the channels (secrets from environment variables the file names) and the limits.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use zeroize::Zeroizing;

use super::smtp::{EmailSink, SmtpTls};

/// A delivery channel.
#[derive(Clone)]
pub enum Sink {
    Telegram {
        api_url: String,
        token: Zeroizing<String>,
        chat_id: String,
    },
    Discord {
        url: Zeroizing<String>,
    },
    Webhook {
        url: Zeroizing<String>,
    },
    Email(Box<EmailSink>),
}

impl Sink {
    pub fn name(&self) -> &'static str {
        match self {
            Sink::Telegram { .. } => "telegram",
            Sink::Discord { .. } => "discord",
            Sink::Webhook { .. } => "webhook",
            Sink::Email(_) => "email",
        }
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sink::Telegram {
                api_url, chat_id, ..
            } => write!(
                f,
                "Telegram {{ api_url: {api_url:?}, chat_id: {chat_id:?}, token: <redacted> }}"
            ),
            Sink::Discord { .. } => f.write_str("Discord { url: <redacted> }"),
            Sink::Webhook { .. } => f.write_str("Webhook { url: <redacted> }"),
            Sink::Email(e) => e.fmt(f),
        }
    }
}

/// `[alerts]`.
#[derive(Clone, Debug)]
pub struct AlertConfig {
    pub sinks: Vec<Sink>,
    pub dedup_window: Duration,
    pub max_per_minute: u32,
    pub disconnect_storm: u32,
    pub disconnect_window: Duration,
    pub daily_summary_utc_hour: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            sinks: Vec::new(),
            dedup_window: Duration::from_secs(600),
            max_per_minute: 6,
            disconnect_storm: 5,
            disconnect_window: Duration::from_secs(300),
            daily_summary_utc_hour: 0,
        }
    }
}

fn secret(t: &toml::Table, what: &str, key: &str, env_key: &str) -> Result<Zeroizing<String>> {
    match (t.get(key), t.get(env_key)) {
        (Some(_), Some(_)) => bail!("[alerts.{what}]: give {key} or {env_key}, not both"),
        (Some(v), None) => Ok(Zeroizing::new(
            v.as_str()
                .ok_or_else(|| anyhow!("[alerts.{what}] {key}: must be a string"))?
                .to_string(),
        )),
        (None, Some(v)) => {
            let var = v
                .as_str()
                .ok_or_else(|| anyhow!("[alerts.{what}] {env_key}: must be a string"))?;
            let val = std::env::var(var).map_err(|_| {
                anyhow!("[alerts.{what}] {env_key}: the environment variable {var} is not set")
            })?;
            Ok(Zeroizing::new(val))
        }
        (None, None) => bail!("[alerts.{what}]: {key} or {env_key} is required"),
    }
}

fn string(t: &toml::Table, what: &str, key: &str) -> Result<String> {
    t.get(key)
        .ok_or_else(|| anyhow!("[alerts.{what}] {key}: required"))?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("[alerts.{what}] {key}: must be a string"))
}

fn check_keys(t: &toml::Table, what: &str, allowed: &[&str]) -> Result<()> {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            bail!(
                "[alerts{what}] {k}: unknown key (known: {})",
                allowed.join(", ")
            );
        }
    }
    Ok(())
}

fn http_url(what: &str, u: &str) -> Result<()> {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        bail!("[alerts.{what}]: the URL must start with https:// or http://");
    }
    Ok(())
}

impl AlertConfig {
    /// From the `[alerts]` table (`None`: no alerts). Names the wrong key and why.
    pub fn from_table(t: Option<&toml::Table>) -> Result<AlertConfig> {
        let mut c = AlertConfig::default();
        let Some(t) = t else { return Ok(c) };
        check_keys(
            t,
            "",
            &[
                "dedup_window_s",
                "max_per_minute",
                "disconnect_storm",
                "disconnect_window_s",
                "daily_summary_utc_hour",
                "telegram",
                "discord",
                "webhook",
                "email",
            ],
        )?;
        let int = |k: &str, lo: i64, hi: i64| -> Result<Option<u64>> {
            match t.get(k) {
                None => Ok(None),
                Some(v) => {
                    let n = v
                        .as_integer()
                        .ok_or_else(|| anyhow!("[alerts] {k}: must be an integer"))?;
                    if n < lo || n > hi {
                        bail!("[alerts] {k} = {n}: must be {lo}..={hi}");
                    }
                    Ok(Some(n as u64))
                }
            }
        };
        if let Some(n) = int("dedup_window_s", 0, 7 * 86_400)? {
            c.dedup_window = Duration::from_secs(n);
        }
        if let Some(n) = int("max_per_minute", 1, 600)? {
            c.max_per_minute = n as u32;
        }
        if let Some(n) = int("disconnect_storm", 1, 10_000)? {
            c.disconnect_storm = n as u32;
        }
        if let Some(n) = int("disconnect_window_s", 1, 86_400)? {
            c.disconnect_window = Duration::from_secs(n);
        }
        if let Some(n) = int("daily_summary_utc_hour", 0, 23)? {
            c.daily_summary_utc_hour = n as u32;
        }
        let table = |k: &str| -> Result<Option<&toml::Table>> {
            match t.get(k) {
                None => Ok(None),
                Some(v) => v
                    .as_table()
                    .map(Some)
                    .ok_or_else(|| anyhow!("[alerts] {k}: must be a table ([alerts.{k}])")),
            }
        };
        if let Some(tg) = table("telegram")? {
            check_keys(
                tg,
                ".telegram",
                &["chat_id", "token", "token_env", "api_url"],
            )?;
            let api_url = match tg.get("api_url") {
                None => "https://api.telegram.org".to_string(),
                Some(_) => string(tg, "telegram", "api_url")?,
            };
            http_url("telegram", &api_url)?;
            c.sinks.push(Sink::Telegram {
                token: secret(tg, "telegram", "token", "token_env")?,
                chat_id: string(tg, "telegram", "chat_id")?,
                api_url: api_url.trim_end_matches('/').to_string(),
            });
        }
        for (k, make) in [
            (
                "discord",
                (|url| Sink::Discord { url }) as fn(Zeroizing<String>) -> Sink,
            ),
            ("webhook", |url| Sink::Webhook { url }),
        ] {
            if let Some(w) = table(k)? {
                check_keys(w, &format!(".{k}"), &["url", "url_env"])?;
                let url = secret(w, k, "url", "url_env")?;
                http_url(k, &url)?;
                c.sinks.push(make(url));
            }
        }
        if let Some(e) = table("email")? {
            check_keys(
                e,
                ".email",
                &[
                    "smtp",
                    "from",
                    "to",
                    "tls",
                    "username",
                    "password_env",
                    "ca_file",
                ],
            )?;
            let to: Vec<String> = match e.get("to") {
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| anyhow!("[alerts.email] to: a list of addresses"))
                    })
                    .collect::<Result<_>>()?,
                Some(toml::Value::String(s)) => vec![s.clone()],
                _ => bail!("[alerts.email] to: required (an address or a list)"),
            };
            if to.is_empty() {
                bail!("[alerts.email] to: at least one address");
            }
            let smtp = string(e, "email", "smtp")?;
            let Some(port) = smtp
                .rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
            else {
                bail!("[alerts.email] smtp = {smtp:?}: use HOST:PORT");
            };
            let tls = match e.get("tls") {
                None => SmtpTls::for_port(port),
                Some(_) => {
                    let t = string(e, "email", "tls")?;
                    SmtpTls::parse(&t).ok_or_else(|| {
                        anyhow!(
                            "[alerts.email] tls = {t:?}: one of \"tls\", \"starttls\", \"none\""
                        )
                    })?
                }
            };
            let auth = match e.get("username") {
                None => {
                    if e.contains_key("password_env") {
                        bail!("[alerts.email] password_env: given without username");
                    }
                    None
                }
                // `password` is not a known key: the password only ever comes from the variable.
                Some(_) => Some((
                    string(e, "email", "username")?,
                    secret(e, "email", "password", "password_env")?,
                )),
            };
            let ca_file = match e.get("ca_file") {
                None => None,
                Some(_) => Some(std::path::PathBuf::from(string(e, "email", "ca_file")?)),
            };
            let sink = EmailSink {
                smtp,
                from: string(e, "email", "from")?,
                to,
                tls,
                auth,
                ca_file,
            };
            if sink.auth.is_some() && tls == SmtpTls::None && !sink.host_is_loopback() {
                bail!(
                    "[alerts.email] username: the password would cross the network in clear \
                     (tls = \"none\" to {}); use tls = \"starttls\" or \"tls\"",
                    sink.host()
                );
            }
            c.sinks.push(Sink::Email(Box::new(sink)));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_the_wrong_key() {
        let t: toml::Table = toml::from_str("max_per_minute = 0").unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("max_per_minute = 0"), "{e}");
        let t: toml::Table = toml::from_str("[webhook]\nuri = \"x\"").unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("[alerts.webhook] uri: unknown key"), "{e}");
        let t: toml::Table =
            toml::from_str("[telegram]\nchat_id = \"1\"\ntoken_env = \"QALPHA_TEST_UNSET_VAR\"")
                .unwrap();
        let e = AlertConfig::from_table(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("QALPHA_TEST_UNSET_VAR is not set"), "{e}");
        let t: toml::Table =
            toml::from_str("[email]\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = []").unwrap();
        assert!(AlertConfig::from_table(Some(&t)).is_err());
        let t: toml::Table = toml::from_str(
            "[webhook]\nurl = \"http://127.0.0.1:1/h\"\n[email]\nsmtp = \"h:25\"\nfrom = \"a@b\"\nto = \"c@d\"",
        )
        .unwrap();
        let c = AlertConfig::from_table(Some(&t)).unwrap();
        assert_eq!(c.sinks.len(), 2);
        match &c.sinks[1] {
            Sink::Email(e) => assert_eq!((e.tls, e.auth.is_none()), (SmtpTls::None, true)),
            s => panic!("{s:?}"),
        }
        assert!(
            !format!("{c:?}").contains("127.0.0.1:1"),
            "webhook URL in Debug output"
        );
    }

    #[test]
    fn email_tls_and_auth_are_checked() {
        let email = |body: &str| {
            let t: toml::Table =
                toml::from_str(&format!("[email]\nfrom = \"a@b\"\nto = \"c@d\"\n{body}")).unwrap();
            AlertConfig::from_table(Some(&t)).map(|c| match &c.sinks[0] {
                Sink::Email(e) => (**e).clone(),
                s => panic!("{s:?}"),
            })
        };
        std::env::set_var("QALPHA_TEST_CFG_SMTP_PASS", "pw");
        let auth = "username = \"u\"\npassword_env = \"QALPHA_TEST_CFG_SMTP_PASS\"\n";
        // Defaults by port.
        assert_eq!(email("smtp = \"mx:465\"").unwrap().tls, SmtpTls::Implicit);
        assert_eq!(email("smtp = \"mx:587\"").unwrap().tls, SmtpTls::StartTls);
        assert_eq!(email("smtp = \"mx:2525\"").unwrap().tls, SmtpTls::None);
        // The password never crosses the network in clear; loopback relays may take it.
        let e = email(&format!("smtp = \"mx.example.com:25\"\n{auth}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("in clear"), "{e}");
        let ok = email(&format!("smtp = \"127.0.0.1:25\"\n{auth}")).unwrap();
        assert_eq!(
            ok.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            Some(("u", "pw"))
        );
        assert!(email(&format!("smtp = \"mx:587\"\n{auth}")).is_ok());
        for (body, want) in [
            ("smtp = \"mx:25\"\ntls = \"ssl\"", "tls = \"ssl\""),
            ("smtp = \"mx\"", "use HOST:PORT"),
            (
                "smtp = \"mx:587\"\nusername = \"u\"",
                "password_env is required",
            ),
            (
                "smtp = \"mx:587\"\npassword_env = \"X\"",
                "without username",
            ),
            (
                "smtp = \"mx:587\"\npassword = \"pw\"",
                "password: unknown key",
            ),
        ] {
            let e = email(body).unwrap_err().to_string();
            assert!(e.contains(want), "{body}: {e}");
        }
    }
}
