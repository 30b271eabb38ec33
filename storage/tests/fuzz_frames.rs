//! Fuzzing (proptest) of log frame decoding, what recovery reads from disk:
//! arbitrary bytes never panic it; a valid frame with any byte changed never
//! decodes as valid (CRC32C catches every burst of up to 32 bits); a cut
//! frame asks for the bytes it lacks.
//!
//! `PROPTEST_CASES` sets the number of cases: the default (256) in the test
//! suite, many more in `perf/fuzz.sh`.

use proptest::prelude::*;
use storage::frame::{self, Decoded, FRAME_HEADER_BYTES};

fn frame_of(seq: u64, epoch: u32, term: u64, index: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode(&mut out, seq, epoch, term, index, payload);
    out
}

fn fields() -> impl Strategy<Value = (u64, u32, u64, u64, Vec<u8>)> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200), seq in any::<u64>()) {
        if let Decoded::Valid { header, payload } = frame::decode(&bytes, seq) {
            prop_assert_eq!(payload.len(), header.payload_len.get() as usize);
        }
    }

    #[test]
    fn a_frame_decodes_to_what_was_encoded((seq, epoch, term, index, payload) in fields()) {
        let bytes = frame_of(seq, epoch, term, index, &payload);
        match frame::decode(&bytes, seq) {
            Decoded::Valid { header, payload: read } => {
                prop_assert_eq!(read, &payload[..]);
                prop_assert_eq!((header.term.get(), header.index.get(), header.epoch.get()), (term, index, epoch));
            }
            other => prop_assert!(false, "{:?}", other),
        }
        // Under another segment's sequence number it is not valid.
        prop_assert!(matches!(frame::decode(&bytes, seq.wrapping_add(1)), Decoded::Invalid));
    }

    #[test]
    fn a_changed_byte_is_never_valid(
        (seq, epoch, term, index, payload) in fields(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let mut bytes = frame_of(seq, epoch, term, index, &payload);
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        // A changed length may ask for more bytes; it is never taken as valid.
        prop_assert!(!matches!(frame::decode(&bytes, seq), Decoded::Valid { .. }), "byte {}", i);
    }

    #[test]
    fn a_cut_frame_asks_for_the_rest(
        (seq, epoch, term, index, payload) in fields(),
        at in any::<prop::sample::Index>(),
    ) {
        let bytes = frame_of(seq, epoch, term, index, &payload);
        let cut = at.index(bytes.len());
        let wanted = if cut < FRAME_HEADER_BYTES { FRAME_HEADER_BYTES } else { bytes.len() };
        match frame::decode(&bytes[..cut], seq) {
            Decoded::Incomplete { frame_bytes } => prop_assert_eq!(frame_bytes, wanted),
            other => prop_assert!(false, "cut at {}: {:?}", cut, other),
        }
    }
}
