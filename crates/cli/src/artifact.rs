//! Turning a compile into an artifact folder, its provenance and build attestations.

use anyhow::Context;
use kiln_artifact::{BuildConfig, Envelope, KeyPair, KilnInfo, Manifest, SourceModel};
use kiln_pipeline::Compiled;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const KILN_COMMIT: &str = env!("KILN_GIT_COMMIT");
pub const BUILD_PREDICATE: &str = "https://kiln.invalid/attestations/build-timings/v1";

/// A tuning decision as the artifact keeps it: the choice, never its timings.
#[derive(Serialize)]
struct Decision<'a> {
    kernel: &'a str,
    problem: &'a str,
    chosen: &'a str,
    default: &'a str,
}

pub struct Identity {
    pub name: String,
    pub version: String,
}

/// Writes the artifact folder for `compiled` (plan.json, weights.bin, tuning.json, manifest).
pub fn write(
    out: &Path,
    id: &Identity,
    model: &Path,
    weights: Option<&Path>,
    tune: &str,
    dims: &BTreeMap<String, usize>,
    compiled: &Compiled,
) -> anyhow::Result<kiln_artifact::ArtifactOutput> {
    let plan = compiled.plan.as_ref().context("the lower phase produced no plan")?;
    let mut plan_json = serde_json::to_vec_pretty(plan)?;
    plan_json.push(b'\n');
    let mut decisions: Vec<Decision> = compiled
        .tune
        .iter()
        .map(|d| Decision { kernel: &d.key.kernel, problem: &d.key.problem, chosen: &d.chosen, default: &d.default_variant })
        .collect();
    decisions.sort_by(|a, b| (a.kernel, a.problem).cmp(&(b.kernel, b.problem)));
    decisions.dedup_by(|a, b| a.kernel == b.kernel && a.problem == b.problem);
    let mut tuning = serde_json::to_vec_pretty(&serde_json::json!({ "schema_version": 1, "decisions": decisions }))?;
    tuning.push(b'\n');
    let source_name = model.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let manifest = Manifest {
        schema_version: 0,
        name: id.name.clone(),
        version: id.version.clone(),
        target: BTreeMap::from([
            ("kind".to_string(), plan.target.kind.clone()),
            ("device".to_string(), plan.target.device.clone()),
            ("fingerprint".to_string(), plan.target.fingerprint.clone()),
        ]),
        // Quantized, or f16 on the device (the wgpu target under --precision fp16 marks its
        // steps f16; without shader-f16 it does not, and the artifact is f32).
        precision: match &compiled.quantized {
            Some(q) => q.emitted_precision(),
            None if plan.precision_histogram().contains_key("f16") => "fp16",
            None => "f32",
        }
        .into(),
        source: SourceModel {
            name: source_name,
            sha256: kiln_artifact::source_digest(model)?,
            weights_sha256: weights.map(kiln_artifact::source_digest).transpose()?,
        },
        build: BuildConfig {
            target: plan.target.kind.clone(),
            tune: tune.into(),
            dims: dims.clone(),
            passes: compiled.patches.iter().fold(BTreeMap::new(), |mut m, p| {
                *m.entry(p.pass.to_string()).or_insert(0) += 1;
                m
            }),
            kernels: plan.kernel_histogram(),
        },
        kiln: KilnInfo { version: kiln_target::KILN_VERSION.into(), commit: KILN_COMMIT.into() },
        files: Vec::new(),
    };
    let mut files = vec![
        ("plan.json".to_string(), plan_json),
        ("weights.bin".to_string(), compiled.weights.clone()),
        ("tuning.json".to_string(), tuning),
    ];
    if let Some(q) = &compiled.quantized {
        // Every quantized node's scheme and every node left in float, with the reason.
        // and the precision decisions of the latency guard and of mixed precision. Decisions
        // only: what was measured to make them goes to the build evidence, so the artifact
        // stays byte-identical for the same decisions.
        let decisions = serde_json::json!({
            "summary": q.summary,
            "smoothquant": q.smooth,
            "latency_guard": q.latency.as_ref().map(|l| serde_json::json!({
                "declined": l.declined,
                "layers_kept_f32": l.layers_kept_float.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            })),
            "mixed_precision": q.mixed.as_ref().map(|m| m.layers.iter().map(|l| serde_json::json!({"node": l.node, "precision": l.precision})).collect::<Vec<_>>()),
        });
        let mut j = serde_json::to_vec_pretty(&decisions)?;
        j.push(b'\n');
        files.push(("quantization.json".to_string(), j));
    }
    Ok(kiln_artifact::write_artifact(out, manifest, &files)?)
}

/// The evidence a compile leaves beside the artifact: provenance (what from what, by which
/// config), build timings (phases and tuning measurements), and the signature over the digest.
pub fn write_evidence(art: &kiln_artifact::ArtifactOutput, compiled: &Compiled, key: Option<&KeyPair>) -> anyhow::Result<()> {
    let m = &art.manifest;
    let build = serde_json::to_value(&m.build)?;
    let prov =
        kiln_artifact::provenance_statement(&m.name, &art.digest, &m.source.name, &m.source.sha256, build, &m.kiln.version, &m.kiln.commit);
    kiln_artifact::write_attestation(&art.dir, "provenance.intoto.json", &Envelope::new(&prov, key))?;
    let device = kiln_target_cpu::device::description();
    let timings = serde_json::json!({
        "measured_on": device,
        "phases_ms": compiled.phase_times.iter().map(|(p, d)| serde_json::json!({"phase": p, "ms": d.as_secs_f64() * 1e3})).collect::<Vec<_>>(),
        "tuning": compiled.tune,
        "quantization": compiled.quantized.as_ref().map(|q| serde_json::json!({
            "calibration": q.calibration.as_ref().map(|c| serde_json::json!({"samples": c.samples, "ms": c.time.as_secs_f64() * 1e3, "observer_bytes": c.observer_bytes})),
            "latency_guard": q.latency,
            "mixed_precision": q.mixed,
        })),
    });
    let st = kiln_artifact::statement(&m.name, &art.digest, BUILD_PREDICATE, timings);
    kiln_artifact::write_attestation(&art.dir, "build.intoto.json", &Envelope::new(&st, key))?;
    if let Some(k) = key {
        let sig = kiln_artifact::sign_digest(&art.digest, k);
        let mut bytes = serde_json::to_vec_pretty(&sig)?;
        bytes.push(b'\n');
        kiln_artifact::write_atomic(&kiln_artifact::attestations_dir(&art.dir).join("artifact.sig"), &bytes)?;
    }
    Ok(())
}

/// Reads an artifact's manifest and digest.
pub fn read_manifest(dir: &Path) -> anyhow::Result<(Manifest, String)> {
    let p = dir.join(kiln_artifact::MANIFEST_FILE);
    let bytes = std::fs::read(&p).with_context(|| {
        format!("{} is not a Kiln artifact (no manifest.json): compile one with `kiln compile MODEL -o DIR`", dir.display())
    })?;
    let m: Manifest = serde_json::from_slice(&bytes).with_context(|| format!("{} does not parse as a manifest", p.display()))?;
    Ok((m, format!("sha256:{}", kiln_artifact::sha256_hex(&bytes))))
}

/// The statement in `<ARTIFACT>.attestations/<name>`, if there.
pub fn read_statement(dir: &Path, name: &str) -> anyhow::Result<Option<kiln_artifact::Statement>> {
    let p = kiln_artifact::attestations_dir(dir).join(name);
    if !p.exists() {
        return Ok(None);
    }
    let env = kiln_artifact::read_envelope(&p)?;
    Ok(Some(env.statement().with_context(|| format!("{} holds no in-toto statement", p.display()))?))
}
