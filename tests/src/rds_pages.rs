//! A proxy in front of moto that pages RDS Describe*Snapshots answers by `MaxRecords` the
//! way RDS does (moto answers everything at once), and counts calls per `Action`. The
//! retention benchmark measures API calls through it. Moto's whole answer is fetched once
//! per query and pages are cut from it, so the time measured is the client's, not moto's
//! (moto takes over a second to list 5,000 snapshots). The cache never expires: for reads only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub type Counts = Arc<Mutex<BTreeMap<String, usize>>>;

fn param<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
}

/// The same query with `MaxRecords` and `Marker` removed: moto is asked for everything.
fn unpaged(body: &str) -> String {
    body.split('&')
        .filter(|p| !p.starts_with("MaxRecords=") && !p.starts_with("Marker="))
        .collect::<Vec<_>>()
        .join("&")
}

/// Keeps items `[from, from + max)` of the `<item>` list and adds a `Marker` when more follow.
fn page(xml: &str, list: &str, item: &str, from: usize, max: usize) -> String {
    let (open, close) = (format!("<{list}>"), format!("</{list}>"));
    let (Some(start), Some(end)) = (xml.find(&open), xml.find(&close)) else {
        return xml.to_string();
    };
    let inner = &xml[start + open.len()..end];
    let (item_open, item_close) = (format!("<{item}>"), format!("</{item}>"));
    let items: Vec<&str> = inner
        .split(&item_close)
        .filter(|s| s.contains(&item_open))
        .collect();
    let kept: String = items
        .iter()
        .skip(from)
        .take(max)
        .map(|s| format!("{}{item_close}", s.trim_start()))
        .collect();
    let marker = if from + max < items.len() {
        format!("<Marker>{}</Marker>", from + max)
    } else {
        String::new()
    };
    format!(
        "{}{open}{kept}{close}{marker}{}",
        &xml[..start],
        &xml[end + close.len()..]
    )
}

fn split_response(raw: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(raw).to_string();
    match text.split_once("\r\n\r\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    }
}

pub async fn paging_proxy(upstream: &str) -> (String, Counts) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let upstream = upstream.trim_start_matches("http://").to_string();
    let counts: Counts = Default::default();
    let seen = counts.clone();
    let cache: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Default::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (upstream, seen, cache) = (upstream.clone(), seen.clone(), cache.clone());
            tokio::spawn(async move {
                let mut client = BufReader::new(stream);
                let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                    return;
                };
                let mut server = BufReader::new(server);
                while let Some(req) = crate::http::read_request(&mut client).await {
                    let body = String::from_utf8_lossy(&req.body).to_string();
                    let action = param(&body, "Action").unwrap_or("(other)").to_string();
                    *seen.lock().unwrap().entry(action.clone()).or_default() += 1;
                    let paged = match action.as_str() {
                        "DescribeDBSnapshots" => Some(("DBSnapshots", "DBSnapshot")),
                        "DescribeDBClusterSnapshots" => {
                            Some(("DBClusterSnapshots", "DBClusterSnapshot"))
                        }
                        _ => None,
                    };
                    let (head, out_body) = match paged {
                        Some(_) => {
                            let b = unpaged(&body);
                            let head = req
                                .head
                                .lines()
                                .map(|l| {
                                    if l.to_ascii_lowercase().starts_with("content-length:") {
                                        format!("content-length: {}", b.len())
                                    } else {
                                        l.to_string()
                                    }
                                })
                                .collect::<Vec<_>>()
                                .join("\r\n");
                            (format!("{}\r\n", head.trim_end()) + "\r\n", b.into_bytes())
                        }
                        None => (req.head.clone(), req.body.clone()),
                    };
                    let key = String::from_utf8_lossy(&out_body).to_string();
                    let cached = match paged {
                        Some(_) => cache.lock().unwrap().get(&key).cloned(),
                        None => None,
                    };
                    let raw = match cached {
                        Some(raw) => raw,
                        None => {
                            if server.get_mut().write_all(head.as_bytes()).await.is_err()
                                || server.get_mut().write_all(&out_body).await.is_err()
                            {
                                return;
                            }
                            let Some(raw) = crate::http::read_response(&mut server).await else {
                                return;
                            };
                            if paged.is_some() {
                                cache.lock().unwrap().insert(key, raw.clone());
                            }
                            raw
                        }
                    };
                    let reply = match paged {
                        Some((list, item)) => {
                            let max = param(&body, "MaxRecords")
                                .and_then(|m| m.parse().ok())
                                .unwrap_or(100);
                            let from = param(&body, "Marker")
                                .and_then(|m| m.parse().ok())
                                .unwrap_or(0);
                            let (head, xml) = split_response(&raw);
                            let xml = page(&xml, list, item, from, max);
                            let head: Vec<String> = head
                                .lines()
                                .filter(|l| !l.to_ascii_lowercase().starts_with("content-length:"))
                                .map(str::to_string)
                                .collect();
                            format!(
                                "{}\r\ncontent-length: {}\r\n\r\n{xml}",
                                head.join("\r\n"),
                                xml.len()
                            )
                            .into_bytes()
                        }
                        None => raw,
                    };
                    if client.get_mut().write_all(&reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (endpoint, counts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_keep_their_items_and_say_where_to_go_on() {
        let xml = "<R><L><I><Id>a</Id></I><I><Id>b</Id></I><I><Id>c</Id></I></L></R>";
        let first = super::page(xml, "L", "I", 0, 2);
        assert_eq!(
            first,
            "<R><L><I><Id>a</Id></I><I><Id>b</Id></I></L><Marker>2</Marker></R>"
        );
        assert_eq!(
            super::page(xml, "L", "I", 2, 2),
            "<R><L><I><Id>c</Id></I></L></R>"
        );
    }
}
