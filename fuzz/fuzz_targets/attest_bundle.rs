//! OMS bundles, DSSE envelopes and in-toto statements arrive from anyone who hands over a
//! model: parsing, the OMS predicate checks, threshold verification and key/certificate PEM
//! reading must return a value or an error, never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mlsec_attest::dsse::{Envelope, TrustedKey, verify_threshold};
use mlsec_attest::statement::{Statement, parse_oms_predicate};
use mlsec_attest::{Bundle, PrivateKey, PublicKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(bundle) = Bundle::from_slice(data) {
        let _ = bundle.certificates();
        if let Ok(payload) = bundle.dsse_envelope.payload_bytes() {
            if let Ok(s) = Statement::from_slice(&payload) {
                let _ = s.single_sha256_subject();
                let _ = parse_oms_predicate(&s.predicate);
            }
        }
    }
    if let Ok(s) = Statement::from_slice(data) {
        if let Ok((_, resources)) = parse_oms_predicate(&s.predicate) {
            let _ = mlsec_attest::manifest::root_digest(&resources);
        }
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(data) {
        let key = PrivateKey::from_pkcs8_der(include_bytes!("../seeds/p256.pk8")).unwrap();
        let trusted = [TrustedKey { key: key.public_key(), principal: "a".into(), revoked: false }];
        let _ = verify_threshold(&env, "application/vnd.in-toto+json", &trusted, 1);
    }
    let _ = PublicKey::from_pem(data);
    let _ = PrivateKey::from_pem(data);
    let _ = mlsec_attest::x509::certificates_from_pem(data);
});
