//! Reading the server's Prometheus `/metrics` over plain HTTP/1.0 on loopback (no HTTP client
//! dependency for one GET), and the counters the load report needs from it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::BotError;

/// `http://host:port/path` split into its parts.
pub fn split_http_url(url: &str) -> Result<(String, u16, String), BotError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        BotError::Config(format!("the metrics URL must be http://…, not {url:?}"))
    })?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = super::split_authority(authority, 80)?;
    Ok((host, port, path.to_owned()))
}

/// GET `url` and return the body; bounded by `timeout`.
pub async fn http_get(url: &str, timeout: Duration) -> Result<String, BotError> {
    let (host, port, path) = split_http_url(url)?;
    let fetch = async {
        let address = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut stream = TcpStream::connect(&address).await?;
        stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes())
            .await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(timeout, fetch)
        .await
        .map_err(|_| BotError::timeout(format!("GET {url}"), timeout))??;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| BotError::Protocol(format!("GET {url}: no HTTP header")))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(BotError::Protocol(format!("GET {url}: {status}")));
    }
    Ok(body.to_owned())
}

/// One scrape: every sample by its series name (`name{labels}` as written).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    pub series: BTreeMap<String, f64>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let series = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .filter_map(|l| {
                // The value follows the series; a timestamp may follow the value.
                let split = match l.rfind('}') {
                    Some(close) => close + 1,
                    None => l.find(char::is_whitespace)?,
                };
                let (name, rest) = l.split_at(split);
                let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
                Some((name.trim().to_owned(), value))
            })
            .collect();
        Scrape { series }
    }

    /// The sum of every series of metric `name` (all label sets).
    pub fn total(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let mut sum = 0.0;
        for (series, value) in &self.series {
            let base = series.split('{').next().unwrap_or(series);
            if base == name {
                found = true;
                sum += value;
            }
        }
        found.then_some(sum)
    }

    /// Quantile `q` (0–1) of what histogram `name` observed between `earlier` and this scrape,
    /// interpolated linearly inside the bucket it falls in (as Prometheus's `histogram_quantile`),
    /// with the number of observations. `None` when the histogram is missing or saw nothing.
    pub fn histogram_quantile(&self, earlier: &Scrape, name: &str, q: f64) -> Option<(f64, u64)> {
        let now = self.by_label(&format!("{name}_bucket"), "le");
        let before = earlier.by_label(&format!("{name}_bucket"), "le");
        let mut buckets: Vec<(f64, f64)> = now
            .iter()
            .filter_map(|(le, count)| {
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                let delta = count - before.get(le).copied().unwrap_or(0.0);
                Some((bound, delta.max(0.0)))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total = buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let (mut lower, mut below) = (0.0, 0.0);
        for (bound, cumulative) in buckets {
            if cumulative >= rank {
                if bound.is_infinite() {
                    // Beyond the last finite bucket: its bound is all that is known.
                    return Some((lower, total as u64));
                }
                let inside = cumulative - below;
                let share = if inside > 0.0 {
                    (rank - below) / inside
                } else {
                    1.0
                };
                return Some((lower + (bound - lower) * share, total as u64));
            }
            (lower, below) = (bound, cumulative);
        }
        None
    }

    /// The series of metric `name` keyed by the value of `label`.
    pub fn by_label(&self, name: &str, label: &str) -> BTreeMap<String, f64> {
        let prefix = format!("{name}{{");
        let needle = format!("{label}=\"");
        self.series
            .iter()
            .filter_map(|(series, value)| {
                let labels = series.strip_prefix(&prefix)?;
                let start = labels.find(&needle)? + needle.len();
                let end = labels[start..].find('"')? + start;
                Some((labels[start..end].to_owned(), *value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP dragoman_rtp_packets_forwarded_total Packets.\n\
# TYPE dragoman_rtp_packets_forwarded_total counter\n\
dragoman_rtp_packets_forwarded_total 1234\n\
dragoman_packets_dropped_total{reason=\"paused\"} 3\n\
dragoman_packets_dropped_total{reason=\"waiting_for_keyframe\"} 40\n\
dragoman_participants 8\n\
weird{a=\"x y\"} 1.5 1700000000\n";

    #[test]
    fn parses_counters_and_labels() {
        let s = Scrape::parse(TEXT);
        assert_eq!(
            s.total("dragoman_rtp_packets_forwarded_total"),
            Some(1234.0)
        );
        assert_eq!(s.total("dragoman_packets_dropped_total"), Some(43.0));
        assert_eq!(s.total("nothing"), None);
        assert_eq!(s.total("weird"), Some(1.5));
        let drops = s.by_label("dragoman_packets_dropped_total", "reason");
        assert_eq!(drops.get("waiting_for_keyframe"), Some(&40.0));
        assert_eq!(drops.len(), 2);
    }

    #[test]
    fn histogram_quantiles_cover_the_window_only() {
        let bucket = |le: &str, n: f64| (format!("h_bucket{{le=\"{le}\"}}"), n);
        let earlier = Scrape {
            series: [
                bucket("0.001", 10.0),
                bucket("0.01", 10.0),
                bucket("+Inf", 10.0),
            ]
            .into_iter()
            .collect(),
        };
        // In the window: 90 observations under 1 ms, 10 between 1 and 10 ms.
        let later = Scrape {
            series: [
                bucket("0.001", 100.0),
                bucket("0.01", 110.0),
                bucket("+Inf", 110.0),
            ]
            .into_iter()
            .collect(),
        };
        let (p50, n) = later.histogram_quantile(&earlier, "h", 0.5).unwrap();
        assert_eq!(n, 100);
        assert!((p50 - 0.000_5 / 0.9).abs() < 1e-9, "{p50}");
        let (p95, _) = later.histogram_quantile(&earlier, "h", 0.95).unwrap();
        assert!((p95 - (0.001 + 0.009 * 0.5)).abs() < 1e-9, "{p95}");
        assert_eq!(
            later.histogram_quantile(&later, "h", 0.5),
            None,
            "nothing observed"
        );
        assert_eq!(later.histogram_quantile(&earlier, "missing", 0.5), None);
    }

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_http_url("http://127.0.0.1:7880/metrics").unwrap(),
            ("127.0.0.1".into(), 7880, "/metrics".into())
        );
        assert_eq!(
            split_http_url("http://[::1]:9/m").unwrap(),
            ("::1".into(), 9, "/m".into())
        );
        assert!(split_http_url("https://x/metrics").is_err());
    }

    #[tokio::test]
    async fn fetches_over_http_1_0() {
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nx 1\n")
                .await;
        });
        let body = http_get(
            &format!("http://127.0.0.1:{port}/metrics"),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(Scrape::parse(&body).total("x"), Some(1.0));
    }
}
