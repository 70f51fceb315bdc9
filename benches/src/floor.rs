//! The crypto floor: the least work any SFU must do per output packet on an SRTP profile, done with
//! the same library str0m's provider calls (aws-lc-rs), keys set up once.
//!
//! Per packet: copy a 12-byte RTP header (and stamp its sequence number), copy the payload next to
//! it, encrypt the payload and append the tag:
//! - AEAD_AES_128_GCM / AEAD_AES_256_GCM: `LessSafeKey::seal_in_place_separate_tag` with the RFC 7714
//!   IV and the header as associated data; 16-byte tag.
//! - AES_CM_128_HMAC_SHA1_80: AES-128 in counter mode with the RFC 3711 IV (a key schedule made
//!   once), then HMAC-SHA1 over header, payload and rollover counter (a keyed context made once),
//!   cut to 10 bytes.

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use crate::profile::Profile;

/// The RTP header every floor packet carries (V=2, PT 96, SSRC 0x11223344).
const HEADER: [u8; 12] = [
    0x80, 0x60, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x11, 0x22, 0x33, 0x44,
];
const SSRC: u32 = 0x1122_3344;

// One value per benchmark, made once and never moved in the measured loop: boxing the large
// variant would only add an indirection to the floor.
#[allow(clippy::large_enum_variant)]
enum Cipher {
    Gcm {
        key: LessSafeKey,
        salt: [u8; 12],
    },
    Cm {
        key: EncryptingKey,
        salt: [u8; 14],
        auth: hmac::Key,
    },
}

/// Protects packets of one payload size on one profile. See the module documentation.
pub struct CryptoFloor {
    cipher: Cipher,
    payload: Vec<u8>,
    /// Extended sequence number (the SRTP index) of the next packet.
    index: u64,
}

impl std::fmt::Debug for CryptoFloor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoFloor")
            .field("payload", &self.payload.len())
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl CryptoFloor {
    pub fn new(profile: Profile, payload_len: usize) -> Self {
        let cipher = match profile {
            Profile::AeadAes128Gcm => Cipher::Gcm {
                key: LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).expect("key")),
                salt: [9; 12],
            },
            Profile::AeadAes256Gcm => Cipher::Gcm {
                key: LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32]).expect("key")),
                salt: [9; 12],
            },
            Profile::AesCm128HmacSha1_80 => Cipher::Cm {
                key: EncryptingKey::ctr(UnboundCipherKey::new(&AES_128, &[7; 16]).expect("key"))
                    .expect("CTR"),
                salt: [9; 14],
                auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[5; 20]),
            },
        };
        CryptoFloor {
            cipher,
            payload: (0..payload_len).map(|i| i as u8).collect(),
            index: 1000,
        }
    }

    /// Bytes of the largest packet [`CryptoFloor::protect`] writes.
    pub fn packet_len(&self) -> usize {
        HEADER.len() + self.payload.len() + 16
    }

    /// Protect the next packet into `out` (at least [`CryptoFloor::packet_len`] bytes). Returns its
    /// length.
    pub fn protect(&mut self, out: &mut [u8]) -> usize {
        let index = self.index;
        self.index += 1;
        let seq = index as u16;
        let roc = (index >> 16) as u32;
        let h = HEADER.len();
        let end = h + self.payload.len();
        out[..h].copy_from_slice(&HEADER);
        out[2..4].copy_from_slice(&seq.to_be_bytes());
        out[h..end].copy_from_slice(&self.payload);
        match &self.cipher {
            Cipher::Gcm { key, salt } => {
                // RFC 7714 §8.1: 00 00 || SSRC || ROC || SEQ, XOR the salt.
                let mut iv = [0u8; 12];
                iv[2..6].copy_from_slice(&SSRC.to_be_bytes());
                iv[6..10].copy_from_slice(&roc.to_be_bytes());
                iv[10..12].copy_from_slice(&seq.to_be_bytes());
                for (b, s) in iv.iter_mut().zip(salt) {
                    *b ^= s;
                }
                let (header, body) = out.split_at_mut(h);
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(iv),
                        Aad::from(&*header),
                        &mut body[..end - h],
                    )
                    .expect("seal");
                out[end..end + 16].copy_from_slice(tag.as_ref());
                end + 16
            }
            Cipher::Cm { key, salt, auth } => {
                // RFC 3711 §4.1.1: (salt << 16) XOR (SSRC << 64) XOR (index << 16).
                let mut iv = [0u8; 16];
                iv[..14].copy_from_slice(salt);
                for (b, s) in iv[4..8].iter_mut().zip(SSRC.to_be_bytes()) {
                    *b ^= s;
                }
                for (b, s) in iv[6..14].iter_mut().zip(index.to_be_bytes()) {
                    *b ^= s;
                }
                key.less_safe_encrypt(
                    &mut out[h..end],
                    EncryptionContext::Iv128(FixedLength::from(iv)),
                )
                .expect("encrypt");
                let mut ctx = hmac::Context::with_key(auth);
                ctx.update(&out[..end]);
                ctx.update(&roc.to_be_bytes());
                let tag = ctx.sign();
                out[end..end + 10].copy_from_slice(&tag.as_ref()[..10]);
                end + 10
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::cipher::{AES_128, DecryptingKey, DecryptionContext, UnboundCipherKey};
    use aws_lc_rs::hmac;
    use aws_lc_rs::iv::FixedLength;

    use super::{CryptoFloor, HEADER};
    use crate::profile::Profile;

    /// The GCM floor writes a packet that opens with the same key and the RFC 7714 IV.
    #[test]
    fn gcm_floor_packets_open() {
        let mut floor = CryptoFloor::new(Profile::AeadAes128Gcm, 100);
        let mut out = vec![0u8; floor.packet_len()];
        floor.protect(&mut out);
        let len = floor.protect(&mut out);
        assert_eq!(len, 12 + 100 + 16);
        assert_eq!(&out[2..4], &1001u16.to_be_bytes());
        let key = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, &[7; 16]).expect("key"));
        let mut iv = [0u8; 12];
        iv[2..6].copy_from_slice(&0x1122_3344u32.to_be_bytes());
        iv[10..12].copy_from_slice(&1001u16.to_be_bytes());
        for b in &mut iv {
            *b ^= 9;
        }
        let (header, body) = out[..len].split_at_mut(12);
        let plain = key
            .open_in_place(Nonce::assume_unique_for_key(iv), Aad::from(&*header), body)
            .expect("the packet opens");
        let expected: Vec<u8> = (0..100).map(|i| i as u8).collect();
        assert_eq!(plain, &expected[..]);
    }

    /// The AES-CM floor writes a packet whose tag verifies and whose payload decrypts.
    #[test]
    fn cm_floor_packets_verify_and_decrypt() {
        let mut floor = CryptoFloor::new(Profile::AesCm128HmacSha1_80, 1200);
        let mut out = vec![0u8; floor.packet_len()];
        let len = floor.protect(&mut out);
        assert_eq!(len, 12 + 1200 + 10);
        let auth = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &[5; 20]);
        let mut ctx = hmac::Context::with_key(&auth);
        ctx.update(&out[..len - 10]);
        ctx.update(&0u32.to_be_bytes());
        assert_eq!(&ctx.sign().as_ref()[..10], &out[len - 10..len]);
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&[9; 14]);
        for (b, s) in iv[4..8].iter_mut().zip(0x1122_3344u32.to_be_bytes()) {
            *b ^= s;
        }
        for (b, s) in iv[6..14].iter_mut().zip(1000u64.to_be_bytes()) {
            *b ^= s;
        }
        let key = DecryptingKey::ctr(UnboundCipherKey::new(&AES_128, &[7; 16]).expect("key"))
            .expect("CTR");
        let plain = key
            .decrypt(
                &mut out[12..len - 10],
                DecryptionContext::Iv128(FixedLength::from(iv)),
            )
            .expect("decrypt");
        let expected: Vec<u8> = (0..1200).map(|i| i as u8).collect();
        assert_eq!(plain, &expected[..]);
        assert_eq!(&out[..2], &HEADER[..2]);
    }
}
