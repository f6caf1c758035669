#!/usr/bin/env python3
"""Builds data/guard/counterparts/train.jsonl from the training side of data/guard/injection.

The embedded TaskTracker cases in the training split are `<trigger> <payload>` inside a host
document, where the payload is a trivia question in one of four templates ("Answer the following
question: ..."). A classifier trained on them alone can learn the payload templates instead of
the trigger, and the held-out cases use other templates. This script adds the two halves on their
own, from the training side only:

- each trigger of TaskTracker's `saved_injections.txt` (the training trigger file) alone, labelled
  `injection` (a preamble that takes over the task is an attack with or without a payload);
- each payload (template + question) found in a training embedded case alone, labelled `benign`
  (a user asking a trivia question is not an attack).

Usage: python3 scripts/guard/build_counterparts.py --source /work/shared/data/eval --out data/guard
Standard library only; the output is byte-identical between runs.
"""
import argparse
import hashlib
import json
import re
import unicodedata
from pathlib import Path

TEMPLATES = re.compile(
    r"(?:Your task is now to answer:|Reply only with the answer to this question:|"
    r"Answer the following question:|Now answer this question instead:) [^\n?]{3,200}\?"
)


def norm(t: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", t).casefold().split())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    train = [json.loads(l) for l in open(args.out / "injection" / "train.jsonl", encoding="utf-8")]
    heldout = {norm(json.loads(l)["text"]) for l in open(args.out / "injection" / "heldout.jsonl", encoding="utf-8")}
    rows, seen = [], set()

    def add(text: str, label: str, source: str, group: str) -> None:
        n = norm(text)
        if n in seen or n in heldout:
            return
        seen.add(n)
        rows.append({"text": text, "label": label, "source": source, "group": group})

    triggers = (args.source / "tasktracker-injections" / "saved_injections.txt").read_text(encoding="utf-8")
    for line in triggers.splitlines():
        t = line.strip()
        if t:
            digest = hashlib.sha256(norm(t).encode()).hexdigest()[:12]
            add(t, "injection", "tasktracker/trigger", f"tasktracker/saved_injections:{digest}")
    for r in train:
        if r["source"] != "tasktracker/embedded":
            continue
        for m in TEMPLATES.finditer(r["text"]):
            add(m.group(0), "benign", "tasktracker/payload", r["group"])
    rows.sort(key=lambda r: hashlib.sha256(r["text"].encode()).hexdigest())
    out = args.out / "counterparts" / "train.jsonl"
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {}
    for r in rows:
        counts[r["source"]] = counts.get(r["source"], 0) + 1
    print(out, counts)


if __name__ == "__main__":
    main()
