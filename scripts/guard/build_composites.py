#!/usr/bin/env python3
"""Builds data/guard/composite-benign/train.jsonl: long benign prompts with pasted context.

Real prompts paste things: worksheets, earlier answers, code, notes, other people's replies.
The classifier's training rows are mostly single requests, and the pasted text of a long prompt
(an assistant's answer written in character, a list of tasks with imperatives in them) looks to
it like an instruction hidden in a document. These 600 prompts teach it otherwise. They are made
only from rows on the training side of data/guard's split (gsm8k `train.jsonl`; GPTeacher and
Self-Instruct records whose instruction+input hashes to train under the same
`sha256(normalized) % 10 >= 2` rule build_corpus.py uses), including the responses of those
records, which the injection corpus never uses. The wording around them is this script's own
and differs from benches/guard/make_prompts.py, so the benchmark prompts stay unseen.

Usage: python3 scripts/guard/build_composites.py --source /work/shared/data/eval --out data/guard
Standard library only; fixed seed; the output is byte-identical between runs.
"""
import argparse
import hashlib
import json
import random
import unicodedata
from pathlib import Path

SEED = 7_2026
N = 600


def norm(t: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", t).casefold().split())


def train_side(text: str) -> bool:
    return int(hashlib.sha256(norm(text).encode()).hexdigest(), 16) % 10 >= 2


def seed_text(inst: str, inp: str) -> str:
    return inst + ("\n\n" + inp if inp else "")


def load(src: Path):
    gsm = [json.loads(l)["question"].strip() for l in open(src / "gsm8k" / "train.jsonl", encoding="utf-8") if l.strip()]
    si = []
    for name in ("seed_tasks.jsonl", "user_oriented_instructions.jsonl"):
        for l in open(src / "self-instruct" / name, encoding="utf-8"):
            if not l.strip():
                continue
            r = json.loads(l)
            inst = (r.get("instances") or [{}])[0]
            row = (r["instruction"].strip(), (inst.get("input") or "").strip(), (inst.get("output") or "").strip())
            if train_side(seed_text(row[0], row[1])):
                si.append(row)

    def gpt(name):
        rows = json.load(open(src / "gpteacher" / name, encoding="utf-8"))
        out = []
        for r in rows:
            row = (r["instruction"].strip(), (r.get("input") or "").strip(), (r.get("response") or "").strip())
            if row[2] and train_side(seed_text(row[0], row[1])):
                out.append(row)
        return out

    return {
        "gsm": gsm,
        "si": si,
        "code": gpt("codegen-instruct.json"),
        "role": gpt("roleplay-simple-deduped-roleplay-instruct.json"),
    }


def clip(parts, limit):
    out, used = [], 0
    for p in parts:
        if used + len(p) > limit and out:
            break
        out.append(p)
        used += len(p) + 2
    return out


def math(rng, s):
    qs = rng.sample(s["gsm"], 8)
    head = rng.choice([
        "My daughter's homework sheet is below. She got stuck on a couple of these.",
        "These word problems are from this week's quiz; the class average was low.",
        "Here is a practice set I am preparing for a study group.",
    ])
    foot = rng.choice([
        f"Can you check whether question {rng.randint(1, 4)} is even solvable as written?",
        "Which of these would you give to a beginner first, and why?",
        "Please write a short hint for each one, without giving away the answer.",
    ])
    return head, [f"Q{i + 1}: {q}" for i, q in enumerate(qs)], foot


def tasks(rng, s):
    main = rng.choice(s["si"])
    head = f"Working on this: {main[0]}" + (f"\n{main[1]}" if main[1] else "")
    head += "\n\n" + rng.choice([
        "Examples my team already finished, so you can match them:",
        "Some earlier tickets and how they were answered:",
        "For comparison, the previous batch looked like this:",
    ])
    body = []
    for inst, inp, out in rng.sample(s["si"], 8):
        body.append(f"* {inst}" + (f" | {inp}" if inp else "") + (f" -> {out}" if out else ""))
    foot = rng.choice(["Do the first one the same way.", "Match the tone of these.", "Same format please."])
    return head, body, foot


def code(rng, s):
    inst, inp, _ = rng.choice(s["code"])
    head = f"{inst}" + (f"\nFor example: {inp}" if inp else "") + "\n\n" + rng.choice([
        "Existing helpers in the project:", "What we have so far:", "Context from the codebase:",
    ])
    body = [f"# {i2}\n{resp}" for i2, _, resp in rng.sample(s["code"], 4)]
    foot = rng.choice(["Reuse these where it makes sense.", "Point out anything in the old code that looks wrong.", "Explain the approach first."])
    return head, body, foot


def roleplay(rng, s):
    inst, inp, _ = rng.choice(s["role"])
    head = f"{inst}" + (f"\n{inp}" if inp else "") + "\n\n" + rng.choice([
        "Previous replies in this story, for continuity:",
        "Here is how the characters have been talking so far:",
        "Some lines we already wrote:",
    ])
    body = [resp for _, _, resp in rng.sample(s["role"], 4)]
    foot = rng.choice(["Continue in the same voice.", "Keep the same personality, one paragraph.", "Make the next reply funnier."])
    return head, body, foot


def notes(rng, s):
    head = rng.choice([
        "Turn these meeting notes into an agenda for Monday.",
        "Sort these items by urgency and say who should own each.",
        "Which of these points contradict each other?",
    ])
    body = [f"- {inst}" for inst, _, _ in rng.sample(s["si"], 5)]
    body += [resp for _, _, resp in rng.sample(s["role"], 2)]
    body += [f"- {inst}" for inst, _, _ in rng.sample(s["code"], 2)]
    rng.shuffle(body)
    return head, body, "Thanks!"


KINDS = [math, tasks, code, roleplay, notes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    s = load(args.source)
    rng = random.Random(SEED)
    rows = []
    for i in range(N):
        kind = KINDS[i % len(KINDS)]
        head, body, foot = kind(rng, s)
        limit = rng.randint(500, 2200)
        text = head + "\n\n" + "\n\n".join(clip(body, limit)) + "\n\n" + foot
        rows.append({"text": text, "label": "benign", "source": "composite-benign", "group": f"composite-{i}"})
    out = args.out / "composite-benign" / "train.jsonl"
    with open(out, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(out, len(rows), {k: len(v) for k, v in s.items()})


if __name__ == "__main__":
    main()
