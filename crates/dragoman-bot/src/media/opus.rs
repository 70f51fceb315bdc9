//! Opus packet facts read from the TOC byte (RFC 6716 §3.1): how long a packet plays.

/// Samples per 48 kHz frame for each of the 32 TOC configurations.
fn frame_samples(config: u8) -> u32 {
    match config {
        // SILK-only: 10, 20, 40, 60 ms
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// The duration of one Opus packet in 48 kHz samples (which is also its RTP timestamp step), or
/// `None` if the packet is too short to say.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let per_frame = frame_samples(toc >> 3);
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3F),
    };
    if frames == 0 {
        return None;
    }
    Some(per_frame * frames)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_durations_from_the_toc() {
        // config 31 (CELT 20 ms), one frame
        assert_eq!(packet_samples(&[31 << 3, 0]), Some(960));
        // config 1 (SILK 20 ms), two frames (c = 1)
        assert_eq!(packet_samples(&[(1 << 3) | 1]), Some(1920));
        // config 16 (CELT 2.5 ms), code 3 with 4 frames
        assert_eq!(packet_samples(&[(16 << 3) | 3, 4]), Some(480));
        assert_eq!(packet_samples(&[]), None);
        assert_eq!(packet_samples(&[3]), None);
        assert_eq!(packet_samples(&[3, 0]), None);
    }
}
