//! Arbitrary bytes as a request frame: decoding must return a value or an
//! error, never panic, hang or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gregor_broker::protocol::decode_frame(bytes::Bytes::copy_from_slice(data));
});
