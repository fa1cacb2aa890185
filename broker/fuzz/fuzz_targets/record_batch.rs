//! Arbitrary bytes as the records of a Produce request: validating them,
//! their records included, and decoding them (as ListOffsets by time does)
//! must return, never panic or abort.
#![no_main]

use libfuzzer_sys::fuzz_target;

/// A small `max.decompressed.message.bytes`, so the records' length
/// prefixes are checked too.
const MAX_RECORD: u32 = 1024;

fuzz_target!(|data: &[u8]| {
    let data = bytes::Bytes::copy_from_slice(data);
    let (headers, _) = gregor_broker::log::batch::scan_valid(&data);
    for h in &headers {
        let batch = data.slice(h.position..h.position + h.size);
        let _ = gregor_broker::log::batch::validate_records(batch, h, MAX_RECORD);
    }
    let _ = gregor_broker::log::batch::validate_all(&data);
    let _ = gregor_broker::log::record_timestamps(data, MAX_RECORD);
});
