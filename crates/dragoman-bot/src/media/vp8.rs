//! VP8 facts the bot needs: is a frame a keyframe, and does an RTP payload start one (RFC 7741).

/// Whether an encoded VP8 frame is a keyframe (bit 0 of the frame tag is 0, RFC 6386 §9.1).
pub fn is_keyframe(frame: &[u8]) -> bool {
    frame.first().is_some_and(|tag| tag & 0x01 == 0)
}

/// Whether an RTP payload (VP8 payload descriptor + data) carries the start of a keyframe.
///
/// Only the first packet of a frame can say so: it has the S bit set, partition index 0, and the
/// VP8 frame tag right after the descriptor. Malformed payloads are simply not keyframe starts.
pub fn payload_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    let extended = first & 0x80 != 0;
    let start = first & 0x10 != 0;
    let partition = first & 0x07;
    if !start || partition != 0 {
        return false;
    }
    let mut at = 1;
    if extended {
        let Some(&flags) = payload.get(at) else {
            return false;
        };
        at += 1;
        if flags & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pid) = payload.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if flags & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if flags & 0x30 != 0 {
            at += 1; // TID/Y/KEYIDX
        }
    }
    payload.get(at..).is_some_and(is_keyframe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_keyframes_from_the_frame_tag() {
        assert!(is_keyframe(&[0x10, 0x02]));
        assert!(!is_keyframe(&[0x11, 0x02]));
        assert!(!is_keyframe(&[]));
    }

    #[test]
    fn finds_keyframe_starts_behind_the_descriptor() {
        // S=1, PID=0, no extension, keyframe tag
        assert!(payload_starts_keyframe(&[0x10, 0x50]));
        // not the start of a partition
        assert!(!payload_starts_keyframe(&[0x00, 0x50]));
        // extended with a 15-bit picture id, then the keyframe tag
        assert!(payload_starts_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x50]));
        // extended with a 7-bit picture id, then an interframe tag
        assert!(!payload_starts_keyframe(&[0x90, 0x80, 0x05, 0x51]));
        // truncated descriptors are not keyframes, and do not panic
        assert!(!payload_starts_keyframe(&[0x90]));
        assert!(!payload_starts_keyframe(&[0x90, 0x80]));
        assert!(!payload_starts_keyframe(&[0x90, 0x80, 0x81]));
        assert!(!payload_starts_keyframe(&[]));
    }
}
