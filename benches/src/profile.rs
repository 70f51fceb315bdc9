//! Choosing the SRTP protection profile of in-memory str0m peers.
//!
//! str0m 0.25 negotiates the SRTP profile inside DTLS (dimpl 0.9), and neither str0m's `RtcConfig`
//! nor the SDP can restrict it: dimpl's ClientHello always offers AEAD_AES_256_GCM,
//! AEAD_AES_128_GCM and AES128_CM_HMAC_SHA1_80, and dimpl's DTLS 1.2 server picks in that order. So
//! str0m talking to str0m always ends up on **AEAD_AES_256_GCM** (and so does the engine with any
//! client that offers it first).
//!
//! To measure the other two profiles, the benchmarks install a process-wide crypto provider that is
//! str0m's aws-lc-rs provider with one change: its DTLS instances, when the handshake exports the
//! SRTP keying material, hand str0m the first bytes of that material labelled with the profile
//! chosen by [`force`]. Both ends of every connection apply the same cut to the same exported bytes,
//! so they agree on keys and salts, and str0m's own SRTP code for that profile (the very code a
//! browser connection on that profile runs) protects and unprotects every packet. Only the key
//! derivation differs from a real negotiation, and it happens once per connection, outside any
//! measurement.
//!
//! [`install`] must run before the first `MediaEngine::new`, which otherwise installs str0m's plain
//! provider (the first provider installed in a process wins).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use str0m::crypto::dtls::{
    DtlsCert, DtlsImplError, DtlsInstance, DtlsOutput, DtlsProvider, DtlsVersion, KeyingMaterial,
    ProtocolVersion, SrtpProfile,
};
use str0m::crypto::{CryptoError, CryptoProvider};

/// An SRTP protection profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Profile {
    /// AEAD_AES_128_GCM (RFC 7714).
    AeadAes128Gcm,
    /// AES_CM_128_HMAC_SHA1_80 (RFC 3711).
    AesCm128HmacSha1_80,
    /// AEAD_AES_256_GCM (RFC 7714): what dimpl negotiates when left alone.
    AeadAes256Gcm,
}

impl Profile {
    pub const ALL: [Profile; 3] = [
        Profile::AeadAes128Gcm,
        Profile::AesCm128HmacSha1_80,
        Profile::AeadAes256Gcm,
    ];

    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Profile::AeadAes128Gcm => "GCM128",
            Profile::AesCm128HmacSha1_80 => "CM128-SHA1-80",
            Profile::AeadAes256Gcm => "GCM256",
        }
    }

    /// Bytes of DTLS-SRTP keying material: two master keys and two master salts (RFC 5764 §4.2).
    fn keying_material_len(self) -> usize {
        match self {
            Profile::AeadAes128Gcm => 2 * 16 + 2 * 12,
            Profile::AesCm128HmacSha1_80 => 2 * 16 + 2 * 14,
            Profile::AeadAes256Gcm => 2 * 32 + 2 * 12,
        }
    }

    fn to_dimpl(self) -> SrtpProfile {
        match self {
            Profile::AeadAes128Gcm => SrtpProfile::AEAD_AES_128_GCM,
            Profile::AesCm128HmacSha1_80 => SrtpProfile::AES128_CM_SHA1_80,
            Profile::AeadAes256Gcm => SrtpProfile::AEAD_AES_256_GCM,
        }
    }

    fn from_dimpl(profile: SrtpProfile) -> Option<Profile> {
        match profile {
            SrtpProfile::AEAD_AES_128_GCM => Some(Profile::AeadAes128Gcm),
            SrtpProfile::AES128_CM_SHA1_80 => Some(Profile::AesCm128HmacSha1_80),
            SrtpProfile::AEAD_AES_256_GCM => Some(Profile::AeadAes256Gcm),
            _ => None,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// 0: leave the negotiated profile alone; otherwise 1 + `Profile as u8`.
static FORCED: AtomicU8 = AtomicU8::new(0);
/// How many DTLS instances (both ends) installed SRTP keys of each profile.
static INSTALLED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// How many handshakes negotiated each profile before any forcing.
static NEGOTIATED: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];

/// Install the profile-forcing crypto provider as the process default (once). Panics if another
/// provider was installed first.
pub fn install() {
    static DTLS: OnceLock<ForcingDtlsProvider> = OnceLock::new();
    let base = str0m::crypto::from_feature_flags();
    let dtls = DTLS.get_or_init(|| ForcingDtlsProvider {
        inner: base.dtls_provider,
    });
    CryptoProvider {
        dtls_provider: dtls,
        ..base
    }
    .install_process_default();
    let installed = CryptoProvider::get_default().expect("a provider is installed");
    let ours: &dyn DtlsProvider = dtls;
    assert!(
        std::ptr::addr_eq(installed.dtls_provider, ours),
        "another crypto provider was installed first: call profile::install() before MediaEngine::new"
    );
}

/// From now on, connections that finish their DTLS handshake use `profile`.
pub fn force(profile: Profile) {
    FORCED.store(1 + profile as u8, Ordering::SeqCst);
}

fn forced() -> Option<Profile> {
    match FORCED.load(Ordering::SeqCst) {
        0 => None,
        n => Profile::ALL.get(usize::from(n - 1)).copied(),
    }
}

/// How many DTLS instances installed SRTP keys of `profile` so far.
pub fn installed(profile: Profile) -> u64 {
    INSTALLED[profile.index()].load(Ordering::SeqCst)
}

/// How many DTLS instances negotiated `profile` (before forcing) so far.
pub fn negotiated(profile: Profile) -> u64 {
    NEGOTIATED[profile.index()].load(Ordering::SeqCst)
}

#[derive(Debug)]
struct ForcingDtlsProvider {
    inner: &'static dyn DtlsProvider,
}

impl DtlsProvider for ForcingDtlsProvider {
    fn generate_certificate(&self) -> Option<DtlsCert> {
        self.inner.generate_certificate()
    }

    fn new_dtls(
        &self,
        cert: &DtlsCert,
        now: Instant,
        dtls_version: DtlsVersion,
        mtu: Option<usize>,
    ) -> Result<Box<dyn DtlsInstance>, CryptoError> {
        let inner = self.inner.new_dtls(cert, now, dtls_version, mtu)?;
        Ok(Box::new(ForcingDtls { inner }))
    }

    fn is_test(&self) -> bool {
        self.inner.is_test()
    }
}

#[derive(Debug)]
struct ForcingDtls {
    inner: Box<dyn DtlsInstance>,
}

impl DtlsInstance for ForcingDtls {
    fn set_active(&mut self, active: bool) {
        self.inner.set_active(active);
    }

    fn handle_packet(&mut self, packet: &[u8]) -> Result<(), DtlsImplError> {
        self.inner.handle_packet(packet)
    }

    fn poll_output<'a>(&mut self, buf: &'a mut [u8]) -> DtlsOutput<'a> {
        match self.inner.poll_output(buf) {
            DtlsOutput::KeyingMaterial(material, negotiated) => {
                let native = Profile::from_dimpl(negotiated);
                if let Some(native) = native {
                    NEGOTIATED[native.index()].fetch_add(1, Ordering::SeqCst);
                }
                let chosen = forced().or(native);
                match chosen {
                    Some(profile) if material.len() >= profile.keying_material_len() => {
                        INSTALLED[profile.index()].fetch_add(1, Ordering::SeqCst);
                        let cut = KeyingMaterial::new(&material[..profile.keying_material_len()]);
                        DtlsOutput::KeyingMaterial(cut, profile.to_dimpl())
                    }
                    _ => DtlsOutput::KeyingMaterial(material, negotiated),
                }
            }
            other => other,
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Result<(), DtlsImplError> {
        self.inner.handle_timeout(now)
    }

    fn send_application_data(&mut self, data: &[u8]) -> Result<usize, DtlsImplError> {
        self.inner.send_application_data(data)
    }

    fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    fn protocol_version(&self) -> Option<ProtocolVersion> {
        self.inner.protocol_version()
    }

    fn is_closing(&self) -> bool {
        self.inner.is_closing()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn close(&mut self) -> Result<(), DtlsImplError> {
        self.inner.close()
    }
}
