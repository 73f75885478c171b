//! Checkpoint tensors read from safetensors files one at a time, as the model asks for them.
//!
//! candle's `safetensors::load` holds a whole file in memory next to the tensors made from
//! it, so loading peaked at about twice the checkpoint's size, and glibc kept much of that
//! afterwards. Here only the headers are read up front; each tensor is read with one
//! positioned read when a layer asks for it, and the layer (packing its weight) drops it.
//! Loading peaks at the model as held plus one tensor.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Mutex;

use crate::error::Context;
use candle_core::{DType, Device, Shape, Tensor};
use candle_nn::var_builder::SimpleBackend;

/// Headers larger than this are refused (the hub's largest are a few hundred KB).
const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Where one tensor's bytes are.
#[derive(Debug)]
struct Entry {
    file: usize,
    dtype: DType,
    shape: Vec<usize>,
    /// Absolute offset of the first byte in its file.
    offset: u64,
    len: usize,
}

/// The tensors of one or more safetensors files (shards), by name.
#[derive(Debug)]
pub struct SafetensorsFiles {
    files: Vec<(PathBuf, Mutex<File>)>,
    entries: HashMap<String, Entry>,
}

impl SafetensorsFiles {
    /// Reads the headers of `paths`; a name in two shards is an error.
    pub fn open(paths: &[PathBuf]) -> crate::error::Result<Self> {
        let mut files = Vec::with_capacity(paths.len());
        let mut entries = HashMap::new();
        for (index, path) in paths.iter().enumerate() {
            let mut file =
                File::open(path).with_context(|| format!("opening {}", path.display()))?;
            for (name, entry) in read_header(&mut file, index)
                .with_context(|| format!("reading the safetensors header of {}", path.display()))?
            {
                crate::error::ensure!(
                    !entries.contains_key(&name),
                    "tensor {name} appears in two shards ({})",
                    path.display()
                );
                entries.insert(name, entry);
            }
            files.push((path.clone(), Mutex::new(file)));
        }
        Ok(Self { files, entries })
    }

    /// Reads tensor `name` onto the CPU in its stored dtype.
    fn read(&self, name: &str) -> candle_core::Result<Tensor> {
        let entry = self
            .entries
            .get(name)
            .ok_or_else(|| candle_core::Error::CannotFindTensor { path: name.into() })?;
        let (path, file) = &self.files[entry.file];
        let mut bytes = vec![0u8; entry.len];
        {
            let mut file = file.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            file.seek(SeekFrom::Start(entry.offset))
                .and_then(|_| file.read_exact(&mut bytes))
                .map_err(|e| {
                    candle_core::Error::Msg(format!("reading {name} from {}: {e}", path.display()))
                })?;
        }
        Tensor::from_raw_buffer(&bytes, entry.dtype, &entry.shape, &Device::Cpu)
    }
}

/// Parses one file's header: `u64` length, then JSON `{name: {dtype, shape, data_offsets}}`.
fn read_header(file: &mut File, index: usize) -> crate::error::Result<Vec<(String, Entry)>> {
    let mut len = [0u8; 8];
    file.read_exact(&mut len)?;
    let header_len = u64::from_le_bytes(len);
    crate::error::ensure!(
        header_len <= MAX_HEADER_BYTES,
        "header of {header_len} bytes"
    );
    let mut header = vec![0u8; header_len as usize];
    file.read_exact(&mut header)?;
    let data_start = 8 + header_len;
    let file_len = file.metadata()?.len();
    let header: HashMap<String, serde_json::Value> = serde_json::from_slice(&header)?;
    header
        .into_iter()
        .filter(|(name, _)| name != "__metadata__")
        .map(|(name, info)| {
            let entry =
                parse_entry(&info, index, data_start).with_context(|| format!("tensor {name}"))?;
            crate::error::ensure!(
                entry.offset + entry.len as u64 <= file_len,
                "tensor {name} runs past the end of the file"
            );
            Ok((name, entry))
        })
        .collect()
}

fn parse_entry(
    info: &serde_json::Value,
    file: usize,
    data_start: u64,
) -> crate::error::Result<Entry> {
    let dtype = match info["dtype"].as_str().context("no dtype")? {
        "F32" => DType::F32,
        "F16" => DType::F16,
        "BF16" => DType::BF16,
        "F64" => DType::F64,
        "I64" => DType::I64,
        "U32" => DType::U32,
        "U8" => DType::U8,
        other => crate::error::bail!("unsupported dtype {other}"),
    };
    let shape: Vec<usize> = serde_json::from_value(info["shape"].clone()).context("bad shape")?;
    let [start, end]: [u64; 2] =
        serde_json::from_value(info["data_offsets"].clone()).context("bad data_offsets")?;
    let len = (end
        .checked_sub(start)
        .context("data_offsets run backwards")?) as usize;
    crate::error::ensure!(
        len == shape.iter().product::<usize>() * dtype.size_in_bytes(),
        "{len} bytes do not hold a {dtype:?} tensor of shape {shape:?}"
    );
    Ok(Entry {
        file,
        dtype,
        shape,
        offset: data_start + start,
        len,
    })
}

impl SimpleBackend for SafetensorsFiles {
    fn get(
        &self,
        shape: Shape,
        name: &str,
        _: candle_nn::Init,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        let tensor = self.read(name)?;
        if tensor.shape() != &shape {
            return Err(candle_core::Error::UnexpectedShape {
                msg: format!("shape mismatch for {name}"),
                expected: shape,
                got: tensor.shape().clone(),
            });
        }
        tensor.to_dtype(dtype)?.to_device(device)
    }

    fn get_unchecked(
        &self,
        name: &str,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Tensor> {
        self.read(name)?.to_dtype(dtype)?.to_device(device)
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a safetensors file with the given header JSON and `data` bytes.
    fn write(dir: &std::path::Path, name: &str, header: &str, data: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn scratch(test: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("siglip-weights-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const TWO_F32: &str =
        r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;

    #[test]
    fn reads_tensors_across_shards_by_name() {
        let dir = scratch("shards");
        let values: Vec<u8> = [1.5f32, -2.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let first = write(&dir, "a.safetensors", TWO_F32, &values);
        let bf16 = r#"{"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}"#;
        let second = write(&dir, "b.safetensors", bf16, &[0x80, 0x3f, 0x00, 0x40]);
        let files = SafetensorsFiles::open(&[first, second]).unwrap();
        let a = files.get_unchecked("a", DType::F32, &Device::Cpu).unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), [1.5, -2.0]);
        let b = files
            .get(
                (1, 2).into(),
                "b",
                candle_nn::Init::Const(0.),
                DType::F32,
                &Device::Cpu,
            )
            .unwrap();
        assert_eq!(b.to_vec2::<f32>().unwrap(), [[1.0, 2.0]]);
        assert!(files.contains_tensor("b") && !files.contains_tensor("__metadata__"));
        let wrong_shape = files.get(
            (2, 1).into(),
            "b",
            candle_nn::Init::Const(0.),
            DType::F32,
            &Device::Cpu,
        );
        assert!(wrong_shape
            .unwrap_err()
            .to_string()
            .contains("shape mismatch for b"));
        let missing = files.get_unchecked("c", DType::F32, &Device::Cpu);
        assert!(missing
            .unwrap_err()
            .to_string()
            .contains("cannot find tensor c"));
    }

    #[test]
    fn refuses_broken_files() {
        let dir = scratch("broken");
        let cases = [
            ("truncated", TWO_F32, &[0u8; 4][..], "runs past the end"),
            ("garbage", "{not json", &[][..], "header"),
            (
                "size",
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                &[0u8; 8][..],
                "do not hold",
            ),
            (
                "dtype",
                r#"{"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}"#,
                &[0u8; 1][..],
                "unsupported dtype",
            ),
        ];
        for (name, header, data, expected) in cases {
            let path = write(&dir, &format!("{name}.safetensors"), header, data);
            let err = format!("{:#}", SafetensorsFiles::open(&[path]).unwrap_err());
            assert!(err.contains(expected), "{name}: {err}");
        }
        let values = [0u8; 8];
        let twice = [
            write(&dir, "one.safetensors", TWO_F32, &values),
            write(&dir, "two.safetensors", TWO_F32, &values),
        ];
        let err = SafetensorsFiles::open(&twice).unwrap_err().to_string();
        assert!(err.contains("appears in two shards"), "{err}");
    }
}
