//! `classify` in bulk: a directory or an @LIST, JSON Lines in input order through the server's
//! batching, an error line per unreadable image, and a complete prefix after Ctrl-C.

mod common;

use std::process::{Command, Stdio};

use serde_json::Value;

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_siglip-server"))
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

/// The one-shot response's scores for one image, label by label.
fn one_shot(image: &str) -> Vec<(String, f64)> {
    let output = binary()
        .args(["classify", "--labels", "cat,dog,a red car", "--model"])
        .arg(common::fixture("models/tiny-p16"))
        .arg(image)
        .output()
        .unwrap();
    assert!(output.status.success());
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    scores(&response["data"][0])
}

fn scores(entry: &Value) -> Vec<(String, f64)> {
    entry["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["label"].as_str().unwrap().to_string(),
                s["score"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_directory_gives_one_line_per_image_in_order() {
    let dir = common::fixture("jpeg");
    let output = binary()
        .args(["classify", "--labels", "cat,dog,a red car", "--model"])
        .arg(common::fixture("models/tiny-p16"))
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output.stdout);
    // Every image file below the directory, the references in decoded/ included, sorted.
    let mut expected: Vec<String> = Vec::new();
    for sub in [dir.join("decoded"), dir.clone()] {
        for entry in std::fs::read_dir(&sub).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.extension().is_some_and(|e| e == "jpg" || e == "png") {
                expected.push(path.to_string_lossy().into_owned());
            }
        }
    }
    expected.sort();
    let images: Vec<&str> = lines.iter().map(|l| l["image"].as_str().unwrap()).collect();
    assert_eq!(images, expected);
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i);
    }
    // Files Pillow refuses are error lines; the run went on past them.
    let errors: Vec<&str> = lines
        .iter()
        .filter(|l| l.get("error").is_some())
        .map(|l| l["image"].as_str().unwrap())
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("truncated_half_64x48.jpg")),
        "{errors:?}"
    );
    assert!(errors.len() < lines.len() / 4, "{errors:?}");
    // The same scores as the one-shot command, through the batching queues.
    for line in lines.iter().filter(|l| l.get("scores").is_some()).take(3) {
        let image = line["image"].as_str().unwrap();
        let (bulk, alone) = (scores(line), one_shot(image));
        assert_eq!(bulk.len(), alone.len());
        for ((label_a, a), (label_b, b)) in bulk.iter().zip(&alone) {
            assert_eq!(label_a, label_b, "{image}");
            assert!((a - b).abs() < 1e-6, "{image}: {a} against {b}");
        }
    }
}

#[test]
fn a_list_with_a_missing_file_writes_its_error_and_goes_on() {
    let list = std::env::temp_dir().join(format!("siglip-bulk-{}.txt", std::process::id()));
    let out = std::env::temp_dir().join(format!("siglip-bulk-{}.jsonl", std::process::id()));
    let chelsea = common::fixture("images/chelsea.jpg");
    std::fs::write(
        &list,
        format!(
            "{}\n/no/such/image.png\n\n{}\n",
            chelsea.display(),
            chelsea.display()
        ),
    )
    .unwrap();
    let status = binary()
        .args(["classify", "--labels", "cat", "--output"])
        .arg(&out)
        .arg("--model")
        .arg(common::fixture("models/tiny-p16"))
        .arg(format!("@{}", list.display()))
        .status()
        .unwrap();
    assert!(status.success());
    let lines = lines(&std::fs::read(&out).unwrap());
    assert_eq!(lines.len(), 3);
    assert!(lines[0].get("scores").is_some() && lines[2].get("scores").is_some());
    assert!(lines[1]["error"]
        .as_str()
        .unwrap()
        .contains("/no/such/image.png"));
    std::fs::remove_file(list).unwrap();
    std::fs::remove_file(out).unwrap();
}

#[test]
fn ctrl_c_leaves_a_complete_prefix() {
    let stem = std::env::temp_dir().join(format!("siglip-bulk-int-{}", std::process::id()));
    let (list, out) = (stem.with_extension("txt"), stem.with_extension("jsonl"));
    let image = common::fixture("images/rgb_46x46.png");
    let total = 50_000;
    std::fs::write(&list, format!("{}\n", image.display()).repeat(total)).unwrap();
    let mut child = binary()
        .args(["classify", "--labels", "cat,dog", "--model"])
        .arg(common::fixture("models/tiny-p16"))
        .arg(format!("@{}", list.display()))
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt once some lines are out.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::metadata(&out).unwrap().len() < 1_000 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let written = std::fs::read(&out).unwrap();
    std::fs::remove_file(list).unwrap();
    std::fs::remove_file(out).unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(written.ends_with(b"\n"), "the last line is cut");
    let lines = lines(&written);
    assert!(
        !lines.is_empty() && lines.len() < total,
        "{} lines",
        lines.len()
    );
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(line["index"], i);
        assert!(line.get("scores").is_some(), "{line}");
    }
}
