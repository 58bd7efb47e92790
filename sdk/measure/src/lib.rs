//! TDX measurements for cocoon, offline: what an allowed image hash stands for.
//!
//! - [`ccel`] parses the CCEL ACPI table and the TCG crypto-agile event log it points at;
//!   [`dstack`] parses dstack's JSON quote responses (quote, event log, VM config);
//! - [`replay`] replays a log into RTMR0..3, compares with a quote ([`quote`]) and names the event
//!   that breaks a register; [`explain`] says what each event measured;
//! - [`tdvf`] computes MRTD from an OVMF/TDVF image, [`td_hob`] the TD HOB digest for a memory
//!   size, [`kernel`] the kernel, command-line and initrd digests, and [`measure`] puts them
//!   together into the registers and the image hash (`SHA-256(MRTD ‖ RTMR0..3)`, defined once in
//!   cocoon-attestation's `TdMeasurements::image_hash`).
//!
//! See docs/attestation.md, "Images and measurements".

pub mod ccel;
pub mod dstack;
mod error;
pub mod event;
pub mod explain;
pub mod kernel;
pub mod measure;
pub mod quote;
pub mod replay;
pub mod td_hob;
pub mod tdvf;

pub use error::{MeasureError, Result};
pub use event::{Digest48, Event};
