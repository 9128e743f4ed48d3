//! Trace files of arbitrary bytes: parsing never panics, and whatever parses replays without
//! panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mynacard_trace::{ReplayChannel, Trace};
use mynacard_transport::CardChannel;
use mynacard_transport::blocking::block_on;

fuzz_target!(|data: &[u8]| {
    if let Ok(trace) = Trace::read(data) {
        for session in trace.sessions() {
            if let Ok(mut channel) = ReplayChannel::new(session) {
                let _ = channel.capabilities();
                let _ = block_on(channel.transmit(&[0x00, 0xA4, 0x04, 0x0C]));
                let _ = channel.finish();
            }
        }
    }
});
