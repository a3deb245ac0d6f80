//! The WGSL of every pass, assembled from `shaders/`: each pass file is prefixed with the
//! shared pieces it uses (WGSL has no include), so a shared piece is written once.

/// Pass parameters, hashing and 64-bit helpers.
const COMMON: &str = include_str!("../../../../shaders/common.wgsl");
/// Reading a micro-batch.
const BATCH: &str = include_str!("../../../../shaders/batch.wgsl");
/// Accumulator arithmetic.
const ACCUMULATORS: &str = include_str!("../../../../shaders/accumulators.wgsl");
const SESSIONS: &str = include_str!("../../../../shaders/sessions.wgsl");
/// The stream-join buffer's layout.
const JOIN_BUFFER: &str = include_str!("../../../../shaders/join_buffer.wgsl");

/// One compute pass: its file name and the assembled module source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// (row, window) items → group slots (`window_assign.wgsl`).
    WindowAssign,
    /// Counts, sums and min/max high words (`window_update.wgsl`).
    WindowUpdate,
    /// The same with native 64-bit atomics (`window_update64.wgsl`).
    WindowUpdate64,
    /// Min/max low words (`window_minmax_lo.wgsl`).
    WindowMinMaxLo,
    /// count_distinct entries (`distinct_insert.wgsl`).
    DistinctInsert,
    /// Closing windows and rebuilding the group table (`window_fire.wgsl`).
    WindowFire,
    /// Rebuilding the distinct-value table (`distinct_rebuild.wgsl`).
    DistinctRebuild,
    /// Following a table growth in in-flight items (`item_remap.wgsl`).
    ItemRemap,
    /// Settling claim tags before they are reused (`table_settle.wgsl`).
    TableSettle,
    /// A session batch's late rows, before it is applied (`session_late.wgsl`).
    SessionLate,
    /// Closing sessions: runs of buckets folded into rows (`session_fire.wgsl`).
    SessionFire,
    /// count_distinct of closing sessions (`session_distinct.wgsl`).
    SessionDistinct,
    /// A lookup join's table into a hash table (`lookup_build.wgsl`).
    LookupBuild,
    /// Stream keys looked up in it (`lookup_probe.wgsl`).
    LookupProbe,
    /// A stream join's new rows into its buffer (`join_buffer_insert.wgsl`).
    JoinBufferInsert,
    /// Their keys into the buffer's index (`join_buffer_link.wgsl`).
    JoinBufferLink,
    /// Probe rows against the buffer (`join_buffer_probe.wgsl`).
    JoinBufferProbe,
    /// Unlinking expired rows (`join_buffer_expire.wgsl`).
    JoinBufferExpire,
    /// The buffer's index into a new one (`join_buffer_rehash.wgsl`).
    JoinBufferRehash,
}

impl Kernel {
    /// Every kernel, for validation and pipeline creation.
    pub const ALL: [Kernel; 19] = [
        Kernel::WindowAssign,
        Kernel::WindowUpdate,
        Kernel::WindowUpdate64,
        Kernel::WindowMinMaxLo,
        Kernel::DistinctInsert,
        Kernel::WindowFire,
        Kernel::DistinctRebuild,
        Kernel::ItemRemap,
        Kernel::TableSettle,
        Kernel::SessionLate,
        Kernel::SessionFire,
        Kernel::SessionDistinct,
        Kernel::LookupBuild,
        Kernel::LookupProbe,
        Kernel::JoinBufferInsert,
        Kernel::JoinBufferLink,
        Kernel::JoinBufferProbe,
        Kernel::JoinBufferExpire,
        Kernel::JoinBufferRehash,
    ];

    /// The pass file in `shaders/`.
    pub fn file(self) -> &'static str {
        match self {
            Kernel::WindowAssign => "window_assign.wgsl",
            Kernel::WindowUpdate => "window_update.wgsl",
            Kernel::WindowUpdate64 => "window_update64.wgsl",
            Kernel::WindowMinMaxLo => "window_minmax_lo.wgsl",
            Kernel::DistinctInsert => "distinct_insert.wgsl",
            Kernel::WindowFire => "window_fire.wgsl",
            Kernel::DistinctRebuild => "distinct_rebuild.wgsl",
            Kernel::ItemRemap => "item_remap.wgsl",
            Kernel::TableSettle => "table_settle.wgsl",
            Kernel::SessionLate => "session_late.wgsl",
            Kernel::SessionFire => "session_fire.wgsl",
            Kernel::SessionDistinct => "session_distinct.wgsl",
            Kernel::LookupBuild => "lookup_build.wgsl",
            Kernel::LookupProbe => "lookup_probe.wgsl",
            Kernel::JoinBufferInsert => "join_buffer_insert.wgsl",
            Kernel::JoinBufferLink => "join_buffer_link.wgsl",
            Kernel::JoinBufferProbe => "join_buffer_probe.wgsl",
            Kernel::JoinBufferExpire => "join_buffer_expire.wgsl",
            Kernel::JoinBufferRehash => "join_buffer_rehash.wgsl",
        }
    }

    /// Whether the kernel needs 64-bit integers and atomics (`SHADER_INT64`,
    /// `SHADER_INT64_ATOMIC_ALL_OPS`).
    pub fn needs_int64_atomics(self) -> bool {
        self == Kernel::WindowUpdate64
    }

    /// The complete WGSL module: shared pieces, then the pass.
    pub fn source(self) -> String {
        let (pass, pieces): (&str, &[&str]) = match self {
            Kernel::WindowAssign => (
                include_str!("../../../../shaders/window_assign.wgsl"),
                &[BATCH, ACCUMULATORS],
            ),
            Kernel::WindowUpdate => (
                include_str!("../../../../shaders/window_update.wgsl"),
                &[BATCH, ACCUMULATORS],
            ),
            Kernel::WindowUpdate64 => (
                include_str!("../../../../shaders/window_update64.wgsl"),
                &[BATCH],
            ),
            Kernel::WindowMinMaxLo => (
                include_str!("../../../../shaders/window_minmax_lo.wgsl"),
                &[BATCH],
            ),
            Kernel::DistinctInsert => (
                include_str!("../../../../shaders/distinct_insert.wgsl"),
                &[BATCH, ACCUMULATORS],
            ),
            Kernel::WindowFire => (include_str!("../../../../shaders/window_fire.wgsl"), &[]),
            Kernel::DistinctRebuild => (
                include_str!("../../../../shaders/distinct_rebuild.wgsl"),
                &[],
            ),
            Kernel::ItemRemap => (include_str!("../../../../shaders/item_remap.wgsl"), &[]),
            Kernel::TableSettle => (include_str!("../../../../shaders/table_settle.wgsl"), &[]),
            Kernel::SessionLate => (
                include_str!("../../../../shaders/session_late.wgsl"),
                &[BATCH, SESSIONS],
            ),
            Kernel::SessionFire => (
                include_str!("../../../../shaders/session_fire.wgsl"),
                &[SESSIONS],
            ),
            Kernel::SessionDistinct => (
                include_str!("../../../../shaders/session_distinct.wgsl"),
                &[SESSIONS],
            ),
            Kernel::LookupBuild => (include_str!("../../../../shaders/lookup_build.wgsl"), &[]),
            Kernel::LookupProbe => (include_str!("../../../../shaders/lookup_probe.wgsl"), &[]),
            Kernel::JoinBufferInsert => (
                include_str!("../../../../shaders/join_buffer_insert.wgsl"),
                &[JOIN_BUFFER],
            ),
            Kernel::JoinBufferLink => (
                include_str!("../../../../shaders/join_buffer_link.wgsl"),
                &[JOIN_BUFFER],
            ),
            Kernel::JoinBufferProbe => (
                include_str!("../../../../shaders/join_buffer_probe.wgsl"),
                &[JOIN_BUFFER],
            ),
            Kernel::JoinBufferExpire => (
                include_str!("../../../../shaders/join_buffer_expire.wgsl"),
                &[JOIN_BUFFER],
            ),
            Kernel::JoinBufferRehash => (
                include_str!("../../../../shaders/join_buffer_rehash.wgsl"),
                &[JOIN_BUFFER],
            ),
        };
        let mut source = String::from(COMMON);
        for piece in pieces {
            source.push('\n');
            source.push_str(piece);
        }
        source.push('\n');
        source.push_str(pass);
        source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pass parses and validates with naga (the compiler wgpu uses), on any machine.
    #[test]
    fn every_shader_validates_with_naga() {
        for kernel in Kernel::ALL {
            let source = kernel.source();
            let module = naga::front::wgsl::parse_str(&source)
                .unwrap_or_else(|e| panic!("{}: {}", kernel.file(), e.emit_to_string(&source)));
            let capabilities = if kernel.needs_int64_atomics() {
                naga::valid::Capabilities::SHADER_INT64
                    | naga::valid::Capabilities::SHADER_INT64_ATOMIC_ALL_OPS
                    | naga::valid::Capabilities::SHADER_INT64_ATOMIC_MIN_MAX
            } else {
                naga::valid::Capabilities::empty()
            };
            naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities)
                .validate(&module)
                .unwrap_or_else(|e| panic!("{}: {}", kernel.file(), e.emit_to_string(&source)));
        }
    }

    /// Every `.wgsl` file in `shaders/` is a pass or a shared piece used above.
    #[test]
    fn no_shader_file_is_left_out() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shaders");
        let mut known: Vec<&str> = Kernel::ALL.iter().map(|k| k.file()).collect();
        known.extend([
            "common.wgsl",
            "batch.wgsl",
            "accumulators.wgsl",
            "sessions.wgsl",
            "join_buffer.wgsl",
        ]);
        for entry in std::fs::read_dir(&dir).expect("shaders/ exists") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .to_string();
            if name.ends_with(".wgsl") {
                assert!(
                    known.contains(&name.as_str()),
                    "{name} is not assembled into any kernel"
                );
            }
        }
    }
}
