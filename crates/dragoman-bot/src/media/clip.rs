//! The looped test clips, parsed from the embedded files into frames ready to packetize.
//!
//! `clip.ogg` is 3 s of Opus (20 ms packets, one per Ogg page); `clip.ivf` is 3 s of 320x240 VP8
//! at 15 fps with a keyframe every second. Both are read with webrtc-rs's own Ogg and IVF readers.

use std::cell::Cell;
use std::io::{Cursor, Read};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use dragoman_signal::protocol::TrackKind;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;

use crate::error::BotError;
use crate::media::{opus, vp8};

/// The embedded Opus clip (Ogg).
pub const OGG_OPUS: &[u8] = include_bytes!("../../media/clip.ogg");
/// The embedded VP8 clip (IVF).
pub const IVF_VP8: &[u8] = include_bytes!("../../media/clip.ivf");

/// RTP clock rate of Opus.
pub const OPUS_CLOCK_RATE: u32 = 48_000;
/// RTP clock rate of video.
pub const VIDEO_CLOCK_RATE: u32 = 90_000;

/// One encoded frame (an Opus packet or a VP8 frame).
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    /// How long the frame plays, in RTP clock units: the timestamp step to the next frame.
    pub samples: u32,
    /// A VP8 keyframe (audio frames are all `true`: any of them can start playback).
    pub keyframe: bool,
}

/// A clip: frames to send in a loop at their own pace.
#[derive(Debug, Clone)]
pub struct Clip {
    pub kind: TrackKind,
    pub clock_rate: u32,
    pub frames: Vec<Frame>,
}

/// Counts the bytes a reader has handed out, to tell the end of the file from a broken file when
/// the webrtc-rs readers report both as an error: a clean end consumes nothing of a next unit.
struct Counted<R> {
    inner: R,
    read: Rc<Cell<usize>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n);
        Ok(n)
    }
}

fn counted(bytes: &[u8]) -> (Counted<Cursor<&[u8]>>, Rc<Cell<usize>>) {
    let read = Rc::new(Cell::new(0));
    (
        Counted {
            inner: Cursor::new(bytes),
            read: Rc::clone(&read),
        },
        read,
    )
}

impl Clip {
    /// The embedded Opus clip.
    pub fn opus() -> Result<Clip, BotError> {
        Clip::from_ogg_opus(OGG_OPUS)
    }

    /// The embedded VP8 clip.
    pub fn vp8() -> Result<Clip, BotError> {
        Clip::from_ivf_vp8(IVF_VP8)
    }

    /// The clip for a track kind.
    pub fn for_kind(kind: TrackKind) -> Result<Clip, BotError> {
        match kind {
            TrackKind::Audio => Clip::opus(),
            TrackKind::Video => Clip::vp8(),
        }
    }

    /// Parse an Ogg Opus file whose pages each hold one Opus packet.
    pub fn from_ogg_opus(bytes: &[u8]) -> Result<Clip, BotError> {
        let (reader, read) = counted(bytes);
        let (mut ogg, header) = OggReader::new(reader, true)
            .map_err(|e| BotError::Media(format!("not an Ogg Opus file: {e}")))?;
        if header.channels == 0 {
            return Err(BotError::Media("Opus header with no channels".into()));
        }
        let mut frames = Vec::new();
        loop {
            let before = read.get();
            let payload = match ogg.parse_next_page() {
                Ok((payload, _)) => payload,
                // Nothing of a next page: the end of the file, not a broken one.
                Err(_) if read.get() == before && before == bytes.len() => break,
                Err(e) => {
                    return Err(BotError::Media(format!(
                        "broken Ogg page after {} bytes: {e}",
                        read.get()
                    )));
                }
            };
            if payload.is_empty() || payload.starts_with(b"OpusTags") {
                continue;
            }
            let samples = opus::packet_samples(&payload).ok_or_else(|| {
                BotError::Media(format!("Opus packet {} has no readable TOC", frames.len()))
            })?;
            frames.push(Frame {
                data: payload.freeze(),
                samples,
                keyframe: true,
            });
        }
        if frames.is_empty() {
            return Err(BotError::Media("the Opus clip has no packets".into()));
        }
        Ok(Clip {
            kind: TrackKind::Audio,
            clock_rate: OPUS_CLOCK_RATE,
            frames,
        })
    }

    /// Parse an IVF file of VP8 frames whose first frame is a keyframe.
    pub fn from_ivf_vp8(bytes: &[u8]) -> Result<Clip, BotError> {
        let (reader, read) = counted(bytes);
        let (mut ivf, header) =
            IVFReader::new(reader).map_err(|e| BotError::Media(format!("not an IVF file: {e}")))?;
        if &header.four_cc != b"VP80" {
            return Err(BotError::Media(format!(
                "the IVF file holds {:?}, not VP8",
                String::from_utf8_lossy(&header.four_cc)
            )));
        }
        if header.timebase_denominator == 0 || header.timebase_numerator == 0 {
            return Err(BotError::Media("IVF header with a zero timebase".into()));
        }
        let mut raw = Vec::new();
        loop {
            let before = read.get();
            match ivf.parse_next_frame() {
                Ok((data, frame_header)) => raw.push((frame_header.timestamp, data.freeze())),
                Err(_) if read.get() == before && before == bytes.len() => break,
                Err(e) => {
                    return Err(BotError::Media(format!(
                        "broken IVF frame after {} bytes: {e}",
                        read.get()
                    )));
                }
            }
        }
        // Timestamps count timebase units of numerator/denominator seconds.
        let to_rtp = |units: u64| -> u32 {
            let rtp = units.saturating_mul(u64::from(VIDEO_CLOCK_RATE))
                * u64::from(header.timebase_numerator)
                / u64::from(header.timebase_denominator);
            u32::try_from(rtp).unwrap_or(u32::MAX)
        };
        let default_step = to_rtp(1).max(1);
        let mut frames = Vec::with_capacity(raw.len());
        for (i, (timestamp, data)) in raw.iter().enumerate() {
            let samples = match raw.get(i + 1) {
                Some((next, _)) if next > timestamp => to_rtp(next - timestamp),
                _ => default_step,
            };
            frames.push(Frame {
                keyframe: vp8::is_keyframe(data),
                data: data.clone(),
                samples,
            });
        }
        match frames.first() {
            None => return Err(BotError::Media("the VP8 clip has no frames".into())),
            Some(first) if !first.keyframe => {
                return Err(BotError::Media(
                    "the VP8 clip does not start with a keyframe".into(),
                ));
            }
            Some(_) => {}
        }
        Ok(Clip {
            kind: TrackKind::Video,
            clock_rate: VIDEO_CLOCK_RATE,
            frames,
        })
    }

    /// How long a frame plays in wall-clock time.
    pub fn frame_duration(&self, frame: &Frame) -> Duration {
        Duration::from_secs_f64(f64::from(frame.samples) / f64::from(self.clock_rate))
    }

    /// Total play time of one pass through the clip.
    pub fn duration(&self) -> Duration {
        self.frames.iter().map(|f| self.frame_duration(f)).sum()
    }

    /// The index of the last keyframe at or before `index` (0 if none, since frame 0 is one).
    pub fn keyframe_at_or_before(&self, index: usize) -> usize {
        let end = index.min(self.frames.len().saturating_sub(1));
        (0..=end)
            .rev()
            .find(|&i| self.frames[i].keyframe)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_opus_clip() {
        let clip = Clip::opus().unwrap();
        assert_eq!(clip.kind, TrackKind::Audio);
        // 3 s of 20 ms packets, give or take the encoder's padding packets
        assert!(
            (145..=155).contains(&clip.frames.len()),
            "{}",
            clip.frames.len()
        );
        assert!(clip.frames.iter().all(|f| f.samples == 960));
        let secs = clip.duration().as_secs_f64();
        assert!((2.9..3.1).contains(&secs), "{secs}");
    }

    #[test]
    fn loads_the_vp8_clip() {
        let clip = Clip::vp8().unwrap();
        assert_eq!(clip.kind, TrackKind::Video);
        assert_eq!(clip.frames.len(), 45);
        assert!(
            clip.frames.iter().all(|f| f.samples == 6000),
            "15 fps at 90 kHz"
        );
        let keyframes: Vec<usize> = clip
            .frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.keyframe)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keyframes, vec![0, 15, 30]);
        assert_eq!(clip.keyframe_at_or_before(20), 15);
        assert_eq!(clip.keyframe_at_or_before(14), 0);
        assert_eq!(clip.keyframe_at_or_before(999), 30);
    }

    #[test]
    fn embedded_media_stays_small() {
        assert!(OGG_OPUS.len() + IVF_VP8.len() < 200 * 1024);
    }

    #[test]
    fn rejects_broken_files() {
        assert!(Clip::from_ogg_opus(b"not ogg at all").is_err());
        assert!(Clip::from_ivf_vp8(b"DKIF").is_err());
        // a truncated file is an error, not a shorter clip
        assert!(Clip::from_ivf_vp8(&IVF_VP8[..IVF_VP8.len() - 10]).is_err());
        assert!(Clip::from_ogg_opus(&OGG_OPUS[..OGG_OPUS.len() - 10]).is_err());
        // an audio file is not a video clip
        assert!(Clip::from_ivf_vp8(OGG_OPUS).is_err());
    }
}
