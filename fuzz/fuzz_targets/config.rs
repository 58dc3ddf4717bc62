//! The gateway's typed config loader on arbitrary text (UTF-8, lossy), with no environment
//! overrides. `from_toml` does no file I/O; the path is only used to resolve relative paths.
#![no_main]

use hotline_gateway::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Config::from_toml(
        &text,
        Path::new("/tmp/x/gateway.toml"),
        Vec::<(String, String)>::new(),
    );
});
