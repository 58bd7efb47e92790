//! Typed errors: every parse failure names the event (its position in the log) or the structure
//! and offset that broke.

/// What can go wrong while parsing logs, firmware or kernels, or while comparing registers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The CCEL ACPI table is malformed.
    #[error("CCEL ACPI table: {0}")]
    CcelTable(String),
    /// The log's header event (TCG_PCClientPCREvent with the Spec ID Event03 structure) is malformed.
    #[error("event log header: {0}")]
    LogHeader(String),
    /// An event of the log does not parse.
    #[error("event {index} (at byte {offset}): {reason}")]
    Event {
        /// Position of the event in the log, 0-based, the header event not counted.
        index: usize,
        /// Byte offset of the event in the log area.
        offset: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON event log (dstack quote response) is malformed.
    #[error("JSON event log: {0}")]
    Json(String),
    /// The quote does not parse or is not a TDX quote.
    #[error("quote: {0}")]
    Quote(String),
    /// The firmware's TDVF metadata is missing or malformed.
    #[error("TDVF metadata: {0}")]
    Tdvf(String),
    /// The kernel image is not a bzImage/PE that QEMU and the EFI stub would load.
    #[error("kernel image: {0}")]
    Kernel(String),
    /// The VM shape is inconsistent (memory too small for the firmware's sections, ...).
    #[error("VM shape: {0}")]
    Shape(String),
}

/// Result type of this crate.
pub type Result<T, E = MeasureError> = std::result::Result<T, E>;
