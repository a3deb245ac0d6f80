//! `sluice devices`: the GPU adapters wgpu sees and which backend `auto` would choose.

use std::process::ExitCode;

use anyhow::Result;
use sluice_engine::backend::gpu::{AdapterChoice, AdapterSummary, list_adapters};

/// Prints every adapter with the features and limits that matter to sluice.
pub fn devices() -> Result<ExitCode> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!(
            "no GPU adapters found: `auto` runs on the CPU.\n\
             (On Debian, `apt-get install mesa-vulkan-drivers` adds lavapipe, a software Vulkan \
             adapter that `--backend gpu` can use for testing.)"
        );
        return Ok(ExitCode::SUCCESS);
    }
    for (i, adapter) in adapters.iter().enumerate() {
        print_adapter(i, adapter);
    }
    let pick = |choice| {
        adapters
            .iter()
            .filter(|a| a.eligible(choice))
            .min_by_key(|a| a.preference)
    };
    let (auto, any) = (pick(AdapterChoice::Hardware), pick(AdapterChoice::Any));
    match auto {
        Some(a) => println!("--backend auto uses: gpu on {a}"),
        None => println!("--backend auto uses: cpu (no usable hardware GPU)"),
    }
    match any {
        Some(a) => println!("--backend gpu uses:  {a}"),
        None => println!("--backend gpu fails: no usable adapter"),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_adapter(i: usize, a: &AdapterSummary) {
    let kind = if a.hardware { "hardware" } else { "software" };
    println!("[{i}] {}", a.name);
    println!("    type        {} ({kind}), API {}", a.device_type, a.api);
    if !a.driver.is_empty() {
        println!("    driver      {}", a.driver);
    }
    println!(
        "    limits      storage binding {} MiB, buffer {} MiB, {} storage buffers/shader, {} workgroups/dimension",
        a.max_storage_binding >> 20,
        a.max_buffer >> 20,
        a.max_storage_buffers,
        a.max_workgroups_per_dimension
    );
    let features = if a.features.is_empty() {
        "none of note".to_string()
    } else {
        a.features.join(", ")
    };
    println!("    features    {features}");
    match &a.unusable {
        None => println!("    usable      yes"),
        Some(why) => println!("    usable      no: {why}"),
    }
}
