//! Reading what the bot needs from an SDP text: which mid each SSRC and msid belongs to, and the
//! id of the `sdes:mid` header extension. Tolerant: lines it does not understand are skipped.

use std::collections::HashMap;

/// The URI of the RTP header extension that carries the mid.
pub const SDES_MID_URI: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";

/// What one SDP says about its media sections.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MediaMap {
    /// SSRC → mid, from `a=ssrc:` lines (RTX and FEC SSRCs included).
    pub ssrc_to_mid: HashMap<u32, String>,
    /// msid track id → mid, from `a=msid:` lines and `a=ssrc:<n> msid:` lines.
    pub track_to_mid: HashMap<String, String>,
    /// The mids in order of their m-lines.
    pub mids: Vec<String>,
    /// The id negotiated for [`SDES_MID_URI`].
    pub mid_extension_id: Option<u8>,
}

/// Read the media sections of `sdp`.
pub fn media_map(sdp: &str) -> MediaMap {
    let mut map = MediaMap::default();
    // Facts of the current media section, committed when its mid is known.
    let mut ssrcs: Vec<u32> = Vec::new();
    let mut tracks: Vec<String> = Vec::new();
    let mut mid: Option<String> = None;

    let flush = |map: &mut MediaMap,
                 mid: &mut Option<String>,
                 ssrcs: &mut Vec<u32>,
                 tracks: &mut Vec<String>| {
        if let Some(mid) = mid.take() {
            for ssrc in ssrcs.drain(..) {
                map.ssrc_to_mid.insert(ssrc, mid.clone());
            }
            for track in tracks.drain(..) {
                map.track_to_mid.insert(track, mid.clone());
            }
            map.mids.push(mid);
        }
        ssrcs.clear();
        tracks.clear();
    };

    for line in sdp.lines().map(str::trim) {
        if line.starts_with("m=") {
            flush(&mut map, &mut mid, &mut ssrcs, &mut tracks);
            continue;
        }
        let Some(attribute) = line.strip_prefix("a=") else {
            continue;
        };
        let (key, value) = attribute.split_once(':').unwrap_or((attribute, ""));
        match key {
            "mid" => mid = Some(value.to_owned()),
            "msid" => {
                if let Some(track) = value.split_whitespace().nth(1) {
                    tracks.push(track.to_owned());
                }
            }
            "ssrc" => {
                let mut parts = value.split_whitespace();
                if let Some(Ok(ssrc)) = parts.next().map(str::parse::<u32>) {
                    ssrcs.push(ssrc);
                    // `a=ssrc:<n> msid:<stream> <track>`
                    let is_msid = parts.next().is_some_and(|a| a.starts_with("msid:"));
                    if let (true, Some(track)) = (is_msid, parts.next()) {
                        tracks.push(track.to_owned());
                    }
                }
            }
            "extmap" => {
                let mut parts = value.split_whitespace();
                let id = parts
                    .next()
                    .and_then(|id| id.split('/').next())
                    .and_then(|id| id.parse::<u8>().ok());
                if let (Some(id), Some(SDES_MID_URI)) = (id, parts.next()) {
                    map.mid_extension_id = Some(id);
                }
            }
            _ => {}
        }
    }
    flush(&mut map, &mut mid, &mut ssrcs, &mut tracks);
    map
}

/// Whether an SDP carries at least one ICE candidate.
pub fn has_candidate(sdp: &str) -> bool {
    sdp.lines().any(|l| l.trim().starts_with("a=candidate:"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\n\
o=- 1 2 IN IP4 0.0.0.0\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
a=mid:0\r\n\
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=sendonly\r\n\
a=msid:stream-a track-a\r\n\
a=ssrc:1111 cname:x\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\n\
a=mid:1\r\n\
a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid\r\n\
a=ssrc-group:FID 2222 3333\r\n\
a=ssrc:2222 msid:stream-b track-b\r\n\
a=ssrc:3333 msid:stream-b track-b\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 7881 typ host\r\n";

    #[test]
    fn maps_ssrcs_and_tracks_to_mids() {
        let map = media_map(OFFER);
        assert_eq!(map.mids, vec!["0", "1"]);
        assert_eq!(map.ssrc_to_mid.get(&1111).map(String::as_str), Some("0"));
        assert_eq!(map.ssrc_to_mid.get(&2222).map(String::as_str), Some("1"));
        assert_eq!(map.ssrc_to_mid.get(&3333).map(String::as_str), Some("1"));
        assert_eq!(
            map.track_to_mid.get("track-a").map(String::as_str),
            Some("0")
        );
        assert_eq!(
            map.track_to_mid.get("track-b").map(String::as_str),
            Some("1")
        );
        assert_eq!(map.mid_extension_id, Some(3));
        assert!(has_candidate(OFFER));
    }

    #[test]
    fn tolerates_garbage() {
        let map = media_map("m=\na=ssrc:x\na=mid\na=extmap:z\n\u{0}");
        assert_eq!(map.mids, vec![""]);
        assert!(map.ssrc_to_mid.is_empty());
        assert!(!has_candidate("v=0"));
    }
}
