//! The `sluice` command line: run and validate job files.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    quiet_device_select_layer();
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(error) => {
            // Whatever an error quotes (a URL from the job, an endpoint from the
            // environment), its credentials are not repeated.
            let message = error.to_string();
            eprintln!(
                "error: {}",
                sluice_engine::checkpoint::redact::redact(&message)
            );
            ExitCode::FAILURE
        }
    }
}

/// Turns off Mesa's `VK_LAYER_MESA_device_select`, an implicit Vulkan layer that, when a job
/// looks for an adapter, tries to reach a Wayland and an X display to learn the desktop's
/// default GPU: on a machine without a desktop it prints `error: XDG_RUNTIME_DIR is invalid or
/// not set in the environment.` twice, alarming users who never asked for a GPU. Sluice
/// enumerates every adapter and picks one itself, so the layer has nothing to add. A user who
/// steers it (`MESA_VK_DEVICE_SELECT`) or sets `NODEVICE_SELECT` keeps it as set.
fn quiet_device_select_layer() {
    let steered = std::env::var_os("MESA_VK_DEVICE_SELECT").is_some()
        || std::env::var_os("NODEVICE_SELECT").is_some();
    if !steered {
        // SAFETY: `set_var` is unsound only while another thread may read the environment;
        // this is the first statement of `main`, before the process starts any thread.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
