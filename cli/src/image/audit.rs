//! `cocoon audit image`: the measured image hash against the root's allowlist for a role, and,
//! given the allowed build's measurement, the register and event that differ.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use cocoon_measure::event::Event;
use cocoon_measure::explain::explain;
use serde_json::Value;

use super::{MeasureArgs, Measured, measured, read, usage};
use crate::common::{RoleChoice, RootArg};
use crate::exit::{ExitKind, fail};
use crate::global::GlobalArgs;
use crate::output::Fields;
use crate::runtime;

/// `cocoon audit image`: the measured image hash against the root's allowlist.
#[derive(Debug, Args)]
pub(crate) struct AuditImageArgs {
    /// The role whose allowlist to check.
    #[arg(long, value_enum)]
    role: RoleChoice,
    /// A `cocoon image measure --json` output of the image governance allowed; when the hashes
    /// differ, its registers and events say which register and which event differ.
    #[arg(long, value_name = "PATH")]
    expected: Option<PathBuf>,
    #[command(flatten)]
    measure: MeasureArgs,
}

/// Runs `cocoon audit image`.
pub(crate) fn run_audit(
    global: &GlobalArgs,
    root: &RootArg,
    a: AuditImageArgs,
    json: bool,
) -> Result<()> {
    let m = measured(&a.measure)?;
    let Some(hash) = m.image_hash() else {
        let missing: Vec<&str> = ["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"]
            .into_iter()
            .zip(std::iter::once(m.mrtd.is_some()).chain(m.rtmr.iter().map(Option::is_some)))
            .filter(|(_, known)| !known)
            .map(|(n, _)| n)
            .collect();
        return Err(usage(format!(
            "cannot compute the image hash: {} unknown (give their inputs or --event-log)",
            missing.join(", ")
        )));
    };
    let handle = root.handle()?;
    let storage = runtime::block_on(async {
        let client = global.client()?;
        handle
            .storage(&client)
            .await
            .context("reading the root's allowlist")
    })?;
    let images = match a.role {
        RoleChoice::Worker => &storage.registry.worker_images,
        RoleChoice::Proxy => &storage.registry.proxy_images,
        RoleChoice::Kms => &storage.kms_images,
    };
    let allowed: Vec<String> = images
        .iter()
        .filter(|(_, revoked)| **revoked == 0)
        .map(|(h, _)| hex::encode(h))
        .collect();
    let status = match images.get(&hash) {
        Some(0) => "allowed",
        Some(_) => "revoked",
        None => "not in the allowlist",
    };
    let mut f = Fields::new()
        .add("role", a.role.name())
        .add("image_hash", hex::encode(hash))
        .add("status", status)
        .add("allowed_hashes", allowed)
        .extend(m.fields());
    let mut explanation = None;
    if status != "allowed"
        && let Some(path) = &a.expected
    {
        let (diffs, text) = register_differences(&m, path)?;
        f = f.list("differs_from_expected", diffs);
        explanation = Some(text);
    }
    f.print(json)?;
    match (status, explanation) {
        ("allowed", _) => Ok(()),
        (_, Some(text)) => Err(fail(
            ExitKind::NotVerified,
            format!(
                "image hash {} is {status} for the {} role: {text}",
                hex::encode(hash),
                a.role.name()
            ),
        )),
        _ => Err(fail(
            ExitKind::NotVerified,
            format!(
                "image hash {} is {status} for the {} role (pass --expected with the allowed image's measurement to see which register differs)",
                hex::encode(hash),
                a.role.name()
            ),
        )),
    }
}

/// Compares a measurement with an expected `cocoon image measure --json` output.
fn register_differences(m: &Measured, path: &Path) -> Result<(Vec<Fields>, String)> {
    let v: Value = serde_json::from_slice(&read(path)?)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let names = ["mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3"];
    let ours: Vec<Option<String>> = std::iter::once(m.mrtd)
        .chain(m.rtmr)
        .map(|r| r.map(hex::encode))
        .collect();
    let expected_events: Vec<(Option<u64>, String, String)> = v["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["rtmr"].as_u64(),
                        e["type"].as_str().unwrap_or("").to_owned(),
                        e["digest"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut list = Vec::new();
    let mut text = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let theirs = v[*name].as_str().map(str::to_owned);
        if theirs == ours[i] {
            continue;
        }
        let mut item = Fields::new()
            .add("register", *name)
            .add("measured", ours[i].clone())
            .add("expected", theirs);
        let mut line = format!("{name} differs");
        if i > 0 {
            let mine: Vec<&Event> = m.events.iter().filter(|e| e.rtmr == Some(i - 1)).collect();
            let exp: Vec<&(Option<u64>, String, String)> = expected_events
                .iter()
                .filter(|e| e.0 == Some(i as u64 - 1))
                .collect();
            let pos = (0..mine.len().max(exp.len())).find(|&p| {
                mine.get(p).map(|e| hex::encode(e.digest)) != exp.get(p).map(|e| e.2.clone())
            });
            if let Some(p) = pos {
                let what = mine
                    .get(p)
                    .map(|e| format!("{} {}", e.type_name(), explain(e).what))
                    .unwrap_or_else(|| "(no event)".to_owned());
                item = item
                    .add("first_differing_event", p as u64)
                    .add("event", what.clone());
                line = format!("{name} differs at its event {p}: {what}");
            }
        }
        list.push(item);
        text.push(line);
    }
    Ok((
        list,
        if text.is_empty() {
            "registers equal the expected ones".to_owned()
        } else {
            text.join("; ")
        },
    ))
}
