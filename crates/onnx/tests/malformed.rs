//! Malformed model files (testdata/malformed/, written by testdata/malformed/make.py): each must
//! be refused with an error that names what is at fault, never a panic or a huge allocation.

use kiln_ir::OpSet;
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/malformed").join(name)
}

/// Loads a fixture, expecting an error; returns its message.
fn load_err(name: &str) -> String {
    let path = fixture(name);
    assert!(path.is_file(), "fixture {} missing: run python3 testdata/malformed/make.py", path.display());
    let ops = OpSet::new("test");
    let result = std::panic::catch_unwind(|| kiln_onnx::load(&path, &ops));
    match result {
        Err(_) => panic!("{name}: the importer panicked"),
        Ok(Ok(_)) => panic!("{name}: imported without error"),
        Ok(Err(e)) => {
            let msg = e.to_string();
            println!("{name}: {msg}");
            msg
        }
    }
}

fn assert_mentions(name: &str, parts: &[&str]) {
    let msg = load_err(name);
    for p in parts {
        assert!(msg.contains(p), "{name}: error should mention {p:?}, got: {msg}");
    }
}

#[test]
fn truncated_file() {
    assert_mentions("truncated.onnx", &["not a valid ONNX protobuf"]);
}

/// Cut at a field boundary inside the graph: the nested messages are whole, so only the
/// framing check sees that the graph's length runs past the end of the file.
#[test]
fn truncated_at_a_field_boundary() {
    assert_mentions("truncated_at_boundary.onnx", &["not a valid ONNX protobuf", "field 7", "truncated"]);
}

#[test]
fn no_opset_import() {
    assert_mentions("no_opset_import.onnx", &["no opset_import"]);
}

#[test]
fn random_bytes() {
    assert_mentions("random_bytes.onnx", &["not a valid ONNX protobuf"]);
}

#[test]
fn empty_file() {
    assert_mentions("empty.onnx", &["holds no graph"]);
}

#[test]
fn raw_data_of_wrong_length() {
    assert_mentions("raw_data_length.onnx", &["tensor 'short_raw'", "20 bytes", "24 bytes"]);
}

#[test]
fn negative_dims() {
    assert_mentions("negative_dims.onnx", &["tensor 'neg_dims'", "negative dimension -3"]);
}

#[test]
fn absurd_dims_are_refused_before_allocating() {
    assert_mentions("absurd_dims.onnx", &["tensor 'huge'", "too large"]);
}

#[test]
fn large_dims_without_data() {
    assert_mentions("large_dims_no_data.onnx", &["tensor 'big_empty'", "8589934592"]);
}

#[test]
fn unknown_dtype() {
    assert_mentions("unknown_dtype.onnx", &["tensor 'odd_type'", "element type code 99"]);
}

#[test]
fn cycle() {
    assert_mentions("cycle.onnx", &["cycle through node 'cycle_"]);
}

#[test]
fn node_reads_a_missing_value() {
    assert_mentions("missing_value.onnx", &["node 'reader' (Add)", "'no_such_weight'"]);
}

#[test]
fn undefined_graph_output() {
    assert_mentions("undefined_output.onnx", &["'never_made'", "never defined"]);
}

#[test]
fn external_data_in_parent_folder() {
    assert_mentions("external_parent.onnx", &["tensor 'W_parent'", "'../secret.bin'", "escapes the model's folder"]);
}

#[test]
fn external_data_at_absolute_path() {
    assert_mentions("external_absolute.onnx", &["tensor 'W_abs'", "'/etc/passwd'", "escapes the model's folder"]);
}

#[test]
fn external_data_file_too_short() {
    assert_mentions("external_short.onnx", &["tensor 'W_short'", "'external_short.bin'", "too short"]);
}

#[test]
fn external_data_file_missing() {
    assert_mentions("external_missing.onnx", &["tensor 'W_missing'", "'no_such_file.bin'", "cannot be opened"]);
}

#[test]
fn external_data_length_disagrees_with_dims() {
    assert_mentions("external_bad_length.onnx", &["tensor 'W_len'", "length 4", "16 bytes"]);
}

#[test]
fn opset_too_new() {
    assert_mentions("opset99.onnx", &["opset 99"]);
}

#[test]
fn ir_version_too_old() {
    assert_mentions("ir_version1.onnx", &["IR version 1 "]);
}

#[test]
fn sparse_index_out_of_range() {
    assert_mentions("sparse_bad_index.onnx", &["tensor 'sparse_bad'", "outside dims"]);
}

#[test]
fn sparse_dense_form_too_large() {
    assert_mentions("sparse_huge.onnx", &["tensor 'sparse_huge'", "too large"]);
}

#[test]
fn initializer_given_twice() {
    assert_mentions("duplicate_initializer.onnx", &["tensor 'twice'", "given twice"]);
}

#[test]
fn graph_input_declared_twice() {
    assert_mentions("duplicate_input.onnx", &["value 'x'", "declared twice"]);
}

#[test]
fn negative_dim_in_value_info() {
    assert_mentions("negative_value_dim.onnx", &["value 'x'", "dimension 1 is negative"]);
}

#[test]
fn subgraph_reads_an_undefined_value() {
    assert_mentions("subgraph_dangling.onnx", &["node 'branch'", "then_branch", "'ghost'"]);
}

/// Without a folder to resolve against (bytes in memory), external data is refused.
#[test]
fn external_data_without_a_folder() {
    let bytes = std::fs::read(fixture("valid/external.onnx")).expect("read fixture");
    let err = kiln_onnx::import_bytes(&bytes, None, &OpSet::new("test")).expect_err("must refuse");
    let msg = err.to_string();
    assert!(msg.contains("tensor 'W'") && msg.contains("not loaded from a folder"), "{msg}");
}

/// A missing model file is an I/O error naming the path.
#[test]
fn missing_file() {
    let err = kiln_onnx::load(&fixture("does_not_exist.onnx"), &OpSet::new("test")).expect_err("must fail");
    assert!(err.to_string().contains("does_not_exist.onnx"), "{err}");
}

/// Every fixture in the folder has a test above (so a new one is not forgotten).
#[test]
fn every_fixture_is_tested() {
    let me = include_str!("malformed.rs");
    let dir = fixture("");
    for entry in std::fs::read_dir(&dir).expect("read testdata/malformed") {
        let name = entry.expect("dir entry").file_name().to_string_lossy().into_owned();
        if name.ends_with(".onnx") {
            assert!(me.contains(&format!("\"{name}\"")), "fixture {name} has no test in malformed.rs");
        }
    }
}

/// External data reached through a symlink that leaves the model's folder is refused too.
#[cfg(unix)]
#[test]
fn external_data_through_a_link_out_of_the_folder() {
    let root = std::env::temp_dir().join(format!("kiln-link-test-{}", std::process::id()));
    let (model_dir, outside) = (root.join("model"), root.join("outside"));
    std::fs::create_dir_all(&model_dir).expect("mkdir");
    std::fs::create_dir_all(&outside).expect("mkdir");
    let valid = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/malformed/valid");
    std::fs::copy(valid.join("external.onnx"), model_dir.join("external.onnx")).expect("copy model");
    std::fs::copy(valid.join("external.bin"), outside.join("secret.bin")).expect("copy data");
    std::os::unix::fs::symlink(outside.join("secret.bin"), model_dir.join("external.bin")).expect("symlink");
    let r = kiln_onnx::load(&model_dir.join("external.onnx"), &OpSet::new("test"));
    std::fs::remove_dir_all(&root).ok();
    let msg = r.expect_err("a link out of the folder must be refused").to_string();
    assert!(msg.contains("tensor 'W'") && msg.contains("through a link"), "{msg}");
}
