//! `cocoon image measure|replay` and `cocoon audit image`: TD measurements offline (cocoon-measure).
//!
//! `measure` computes MRTD and RTMR0..3 from boot artifacts and the VM shape, or takes the RTMRs
//! from an event log, and prints the image hash governance allowlists. `replay` replays an event
//! log, explains every event and compares the registers with a quote. `audit image` checks the
//! measured image hash against the root's allowlist for a role.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use cocoon_measure::event::Event;
use cocoon_measure::explain::explain;
use cocoon_measure::measure::{AcpiBlobs, Artifacts, VmShape, measure};
use cocoon_measure::replay::{compare, first_difference, replay};
use cocoon_measure::tdvf::PageAdding;
use cocoon_measure::{Digest48, ccel, dstack, quote};
use serde_json::Value;

use crate::exit::{ExitKind, fail};
use crate::output::{Fields, OutputArgs};

mod audit;
pub(crate) use audit::{AuditImageArgs, run_audit};

/// TD images: compute measurements, replay event logs.
#[derive(Debug, Args)]
pub(crate) struct ImageArgs {
    #[command(flatten)]
    out: OutputArgs,
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(Debug, Subcommand)]
enum ImageCommand {
    /// MRTD, RTMR0..3 and the image hash from firmware, kernel, initrd, command line and the VM
    /// shape (or RTMRs from --event-log). Registers whose inputs are missing print as "-".
    Measure(Box<MeasureArgs>),
    /// Replay an event log (CCEL binary or dstack JSON), explain each event and compare the
    /// registers with a quote. Exit 9 if a register differs; the message names the event.
    Replay(ReplayArgs),
}

/// Inputs of a measurement.
#[derive(Debug, Args)]
pub(super) struct MeasureArgs {
    /// OVMF/TDVF firmware image (MRTD; with the ACPI blobs, RTMR0).
    #[arg(long, value_name = "PATH")]
    firmware: Option<PathBuf>,
    /// bzImage kernel with EFI stub (RTMR1).
    #[arg(long, value_name = "PATH")]
    kernel: Option<PathBuf>,
    /// initrd (RTMR1 through QEMU's header patch, RTMR2).
    #[arg(long, value_name = "PATH")]
    initrd: Option<PathBuf>,
    /// Kernel command line (RTMR2).
    #[arg(long, value_name = "TEXT", conflicts_with = "cmdline_file")]
    cmdline: Option<String>,
    /// File holding the kernel command line (a trailing newline is dropped).
    #[arg(long, value_name = "PATH")]
    cmdline_file: Option<PathBuf>,
    /// Guest memory: bytes, or with a K/M/G/T suffix (powers of 1024).
    #[arg(long, value_name = "SIZE", default_value = "2G")]
    memory: String,
    /// vCPUs (enter only through the ACPI tables, which are given as files).
    #[arg(long, default_value_t = 1)]
    cpus: u32,
    /// QEMU version class: before 9.0 pages are added in two passes.
    #[arg(long, value_name = "X.Y", default_value = "9.2")]
    qemu_version: String,
    /// Override the page-adding order the QEMU version implies.
    #[arg(long, value_name = "ORDER", value_parser = ["single-pass", "two-pass"])]
    page_adding: Option<String>,
    /// QEMU's etc/table-loader blob, captured from the VMM with this shape (RTMR0).
    #[arg(long, value_name = "PATH", requires_all = ["acpi_rsdp", "acpi_tables"])]
    acpi_loader: Option<PathBuf>,
    /// QEMU's etc/acpi/rsdp blob.
    #[arg(long, value_name = "PATH", requires = "acpi_loader")]
    acpi_rsdp: Option<PathBuf>,
    /// QEMU's etc/acpi/tables blob.
    #[arg(long, value_name = "PATH", requires = "acpi_loader")]
    acpi_tables: Option<PathBuf>,
    /// Take RTMR0..3 from this event log (CCEL binary or dstack JSON) instead of computing them;
    /// registers also computed from artifacts are compared with it.
    #[arg(long, value_name = "PATH", visible_alias = "ccel")]
    event_log: Option<PathBuf>,
    /// MRTD as hex, when the firmware is not at hand.
    #[arg(long, value_name = "HEX", conflicts_with = "firmware")]
    mrtd: Option<String>,
}

/// Inputs of a replay.
#[derive(Debug, Args)]
pub(crate) struct ReplayArgs {
    /// The event log: CCEL log area (binary), or a dstack quote response / event array (JSON).
    #[arg(long, value_name = "PATH", visible_alias = "ccel")]
    event_log: PathBuf,
    /// The CCEL ACPI table (/sys/firmware/acpi/tables/CCEL), checked and shown.
    #[arg(long, value_name = "PATH")]
    ccel_table: Option<PathBuf>,
    /// The quote (binary or hex); a dstack quote response carries its own.
    #[arg(long, value_name = "PATH")]
    quote: Option<PathBuf>,
    /// Registers to compare (default: those the log extends, plus RTMR3 if the quote is given).
    #[arg(long, value_name = "N", value_delimiter = ',')]
    rtmr: Vec<usize>,
}

/// Runs an `image` subcommand.
pub(crate) fn run(args: ImageArgs) -> Result<()> {
    match args.command {
        ImageCommand::Measure(m) => measured(&m)?.fields().print(args.out.json),
        ImageCommand::Replay(r) => run_replay(&r, args.out.json),
    }
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| fail(ExitKind::NotFound, format!("{}: {e}", path.display())))
}

pub(super) fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    fail(ExitKind::Usage, e.to_string())
}

/// A log from either format, with the quote and VM config a dstack response carries.
struct LoadedLog {
    events: Vec<Event>,
    format: &'static str,
    quote: Option<Vec<u8>>,
    vm_config: Value,
}

fn load_log(path: &Path) -> Result<LoadedLog> {
    let bytes = read(path)?;
    let context = || format!("event log {}", path.display());
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {
            let r = dstack::parse_quote_response(&bytes)
                .map_err(usage)
                .with_context(context)?;
            Ok(LoadedLog {
                events: r.events,
                format: "dstack quote response (JSON)",
                quote: Some(r.quote),
                vm_config: r.vm_config,
            })
        }
        Some(b'[') => {
            let events = dstack::parse_event_log(&bytes)
                .map_err(usage)
                .with_context(context)?;
            Ok(LoadedLog {
                events,
                format: "dstack event log (JSON)",
                quote: None,
                vm_config: Value::Null,
            })
        }
        _ => {
            let (_, events) = ccel::parse_log(&bytes)
                .map_err(usage)
                .with_context(context)?;
            Ok(LoadedLog {
                events,
                format: "CCEL (TCG crypto-agile)",
                quote: None,
                vm_config: Value::Null,
            })
        }
    }
}

fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim().trim_end_matches("iB").trim_end_matches('B');
    let (digits, shift) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 30),
        Some('T' | 't') => (&t[..t.len() - 1], 40),
        _ => (t, 0),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| {
            usage(format!(
                "--memory {text:?}: expected bytes or a size such as 2G"
            ))
        })
}

fn page_adding(a: &MeasureArgs) -> Result<PageAdding> {
    if let Some(order) = &a.page_adding {
        return Ok(if order == "two-pass" {
            PageAdding::TwoPass
        } else {
            PageAdding::SinglePass
        });
    }
    let major = a
        .qemu_version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    match major {
        Some(m) if m < 9 => Ok(PageAdding::TwoPass),
        Some(_) => Ok(PageAdding::SinglePass),
        None => Err(usage(format!(
            "--qemu-version {:?}: expected X.Y",
            a.qemu_version
        ))),
    }
}

fn hex48(text: &str, what: &str) -> Result<Digest48> {
    hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| usage(format!("{what}: expected 96 hex digits")))
}

/// A measurement with where each register came from.
pub(super) struct Measured {
    shape: VmShape,
    pub(super) mrtd: Option<Digest48>,
    pub(super) rtmr: [Option<Digest48>; 4],
    sources: [&'static str; 5],
    pub(super) events: Vec<Event>,
    /// Registers computed from artifacts that differ from the event log: (rtmr, what differs).
    log_differences: Vec<(usize, String)>,
}

impl Measured {
    pub(super) fn image_hash(&self) -> Option<[u8; 32]> {
        let [Some(r0), Some(r1), Some(r2), Some(r3)] = self.rtmr else {
            return None;
        };
        let mrtd = self.mrtd?;
        Some(
            cocoon_attestation::dcap::TdMeasurements {
                mrtd,
                rtmr: [r0, r1, r2, r3],
            }
            .image_hash(),
        )
    }

    pub(super) fn fields(&self) -> Fields {
        let reg = |r: &Option<Digest48>| r.map(hex::encode);
        let order = match self.shape.page_adding {
            PageAdding::SinglePass => "single-pass",
            PageAdding::TwoPass => "two-pass",
        };
        let mut f = Fields::new()
            .add("mrtd", reg(&self.mrtd))
            .add("rtmr0", reg(&self.rtmr[0]))
            .add("rtmr1", reg(&self.rtmr[1]))
            .add("rtmr2", reg(&self.rtmr[2]))
            .add("rtmr3", reg(&self.rtmr[3]))
            .add("image_hash", self.image_hash().map(hex::encode))
            .nest(
                "shape",
                Fields::new()
                    .add("memory_size", self.shape.memory_size)
                    .add("cpus", self.shape.cpus)
                    .add("page_adding", order),
            )
            .nest(
                "sources",
                Fields::new()
                    .add("mrtd", self.sources[0])
                    .add("rtmr0", self.sources[1])
                    .add("rtmr1", self.sources[2])
                    .add("rtmr2", self.sources[3])
                    .add("rtmr3", self.sources[4]),
            );
        if !self.log_differences.is_empty() {
            let diffs = self
                .log_differences
                .iter()
                .map(|(r, why)| {
                    Fields::new()
                        .add("rtmr", *r as u64)
                        .add("difference", why.clone())
                })
                .collect();
            f = f.list("differs_from_event_log", diffs);
        }
        f.list("events", self.events.iter().map(event_fields).collect())
    }
}

fn event_fields(e: &Event) -> Fields {
    let x = explain(e);
    let what = match &e.name {
        Some(n) if x.what == "(payload not in the log)" || e.data.is_empty() => n.clone(),
        _ => x.what,
    };
    Fields::new()
        .add("index", e.index as u64)
        .add("rtmr", e.rtmr.map(|r| r as u64))
        .add("type", x.type_name)
        .add("digest", x.digest)
        .add("what", what)
}

pub(super) fn measured(a: &MeasureArgs) -> Result<Measured> {
    let shape = VmShape {
        memory_size: parse_size(&a.memory)?,
        cpus: a.cpus,
        page_adding: page_adding(a)?,
    };
    let firmware = a.firmware.as_deref().map(read).transpose()?;
    let kernel = a.kernel.as_deref().map(read).transpose()?;
    let initrd = a.initrd.as_deref().map(read).transpose()?;
    let cmdline = match (&a.cmdline, &a.cmdline_file) {
        (Some(c), _) => Some(c.clone()),
        (None, Some(p)) => Some(
            String::from_utf8(read(p)?)
                .map_err(usage)?
                .trim_end_matches('\n')
                .to_owned(),
        ),
        (None, None) => None,
    };
    let acpi = match (&a.acpi_loader, &a.acpi_rsdp, &a.acpi_tables) {
        (Some(l), Some(r), Some(t)) => Some(AcpiBlobs {
            loader: read(l)?,
            rsdp: read(r)?,
            tables: read(t)?,
        }),
        _ => None,
    };
    let artifacts = Artifacts {
        firmware: firmware.as_deref(),
        acpi: acpi.as_ref(),
        kernel: kernel.as_deref(),
        initrd: initrd.as_deref(),
        cmdline: cmdline.as_deref(),
    };
    let m = measure(&artifacts, &shape).map_err(usage)?;
    let computed = |r: usize| {
        if m.rtmr[r].is_some() {
            "computed"
        } else {
            "missing inputs"
        }
    };
    let mut out = Measured {
        shape,
        mrtd: m.mrtd,
        rtmr: m.rtmr,
        sources: [
            if m.mrtd.is_some() {
                "firmware"
            } else {
                "missing inputs"
            },
            computed(0),
            computed(1),
            computed(2),
            "nothing extended at boot",
        ],
        events: m.events,
        log_differences: Vec::new(),
    };
    if let Some(hex) = &a.mrtd {
        out.mrtd = Some(hex48(hex, "--mrtd")?);
        out.sources[0] = "given";
    }
    if let Some(path) = &a.event_log {
        take_registers_from_log(&mut out, &load_log(path)?.events);
    }
    Ok(out)
}

fn take_registers_from_log(out: &mut Measured, log: &[Event]) {
    let replayed = replay(log);
    for (r, from_log) in replayed.iter().enumerate() {
        // RTMR3 is only extended at run time: a log's RTMR3 events are expected, not a difference.
        if let Some(ours) = out.rtmr[r].filter(|_| r < 3)
            && ours != *from_log
        {
            let why = first_difference(&out.events, log, r)
                .map(|(pos, index, what)| match index {
                    Some(i) => format!("event {pos} of the register (log event {i}): {what}"),
                    None => format!("event {pos} of the register: {what}"),
                })
                .unwrap_or_else(|| "registers differ".to_owned());
            out.log_differences.push((r, why));
        }
        out.rtmr[r] = Some(*from_log);
        out.sources[r + 1] = "event log";
    }
    out.events = log.to_vec();
}

fn run_replay(a: &ReplayArgs, json: bool) -> Result<()> {
    let log = load_log(&a.event_log)?;
    let mut f = Fields::new()
        .add("format", log.format)
        .add("events", log.events.len() as u64);
    if let Some(t) = &a.ccel_table {
        let table = ccel::CcelTable::parse(&read(t)?).map_err(usage)?;
        f = f.nest(
            "ccel_table",
            Fields::new()
                .add(
                    "cc_type",
                    if table.cc_type == ccel::CC_TYPE_TDX {
                        "tdx".to_owned()
                    } else {
                        table.cc_type.to_string()
                    },
                )
                .add("oem_id", table.oem_id)
                .add("log_area_start", format!("{:#x}", table.log_area_start))
                .add("log_area_len", table.log_area_len),
        );
    }
    if !log.vm_config.is_null() {
        f = f.add(
            "memory_size",
            log.vm_config
                .get("memory_size")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    let quote_bytes = match &a.quote {
        Some(p) => Some(quote_file(p)?),
        None => log.quote.clone(),
    };
    let replayed = replay(&log.events);
    let mut failures = Vec::new();
    if let Some(q) = &quote_bytes {
        let td = quote::td_measurements(q).map_err(usage)?;
        let which: Vec<usize> = if a.rtmr.is_empty() {
            (0..4).collect()
        } else {
            a.rtmr.clone()
        };
        let checks = compare(&log.events, &td.rtmr, &which);
        let mut list = Vec::new();
        for c in &checks {
            let mut item = Fields::new()
                .add("rtmr", c.rtmr as u64)
                .add("matches", c.matches)
                .add("replayed", c.replayed.clone())
                .add("quoted", c.quoted.clone())
                .add("events", c.events as u64);
            if let Some(s) = &c.suspect {
                item = item
                    .add("suspect_event", s.index as u64)
                    .add("suspect_reason", s.reason.clone());
            }
            if !c.matches {
                failures.push(match &c.suspect {
                    Some(s) => format!("RTMR{} differs from the quote; first suspect: event {} ({})", c.rtmr, s.index, s.reason),
                    None => format!("RTMR{} differs from the quote (an event of it was altered, added, dropped or moved)", c.rtmr),
                });
            }
            list.push(item);
        }
        f = f.add("mrtd", hex::encode(td.mrtd)).list("registers", list);
    } else {
        let regs = (0..4)
            .map(|r| {
                Fields::new()
                    .add("rtmr", r as u64)
                    .add("replayed", hex::encode(replayed[r]))
            })
            .collect();
        f = f.list("registers", regs);
    }
    f.list("log", log.events.iter().map(event_fields).collect())
        .print(json)?;
    match failures.is_empty() {
        true => Ok(()),
        false => Err(fail(ExitKind::NotVerified, failures.join("; "))),
    }
}

fn quote_file(path: &Path) -> Result<Vec<u8>> {
    let bytes = read(path)?;
    let text = std::str::from_utf8(&bytes)
        .ok()
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_hexdigit()));
    match text {
        Some(t) => hex::decode(t).map_err(usage),
        None => Ok(bytes),
    }
}
