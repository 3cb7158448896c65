"""Per-class markdown tables for bench/study_arch.sh, from the validation.json files that
`cuvae validate` writes (anchored or class-conditioned samples, and reconstructions)."""
import csv
import json


def pct(x):
    """A fraction as a percentage with one decimal."""
    return f"{100 * x:.1f}%"


def load(S, folder):
    """S/folder/validation.json."""
    with open(f"{S}/{folder}/validation.json") as f:
        return json.load(f)


def class_names(v):
    return [c["name"] for c in v["anchored"]["per_class"]]


def samples(v):
    """k -> the share of class k's samples classified as asked (k None: all classes)."""
    return lambda k: v["anchored"]["accuracy"] if k is None else v["anchored"]["per_class"][k]["accuracy"]


def recon_share(v):
    """k -> reconstructions classified right as a share of the originals classified right."""
    r = v["reconstructions"]
    return lambda k: (r["accuracy"] / r["originals_accuracy"] if k is None
                      else r["per_class_accuracy"][k] / r["per_class_originals_accuracy"][k])


def per_class_table(names, columns):
    """Markdown rows: a header, one row per class and a bold **all** row; columns is a list of
    (header, k -> fraction)."""
    lines = ["| class | " + " | ".join(h for h, _ in columns) + " |", "|---|" + "---|" * len(columns)]
    for k, name in enumerate(names):
        lines.append(f"| {k} {name} | " + " | ".join(pct(f(k)) for _, f in columns) + " |")
    lines.append("| **all** | " + " | ".join(f"**{pct(f(None))}**" for _, f in columns) + " |")
    return lines


def last_metrics(S, run):
    """The last row of S/run/metrics.csv as a dict."""
    with open(f"{S}/{run}/metrics.csv") as f:
        return list(csv.DictReader(f))[-1]


def write(out, lines):
    """Writes the table file and echoes it."""
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out}")
