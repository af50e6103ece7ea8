#!/usr/bin/env bash
# The documentation's Swift code is the tests' code: every ```swift block of the DocC catalogs
# (Sources/*/*.docc) and of README.md must be, word for word, a region of a test file between
# `// doc-snippet: NAME` and `// end-doc-snippet` (those tests compile it and mostly run it),
# and every such region must appear in a catalog. scripts/test.sh runs this before the build.
# A block whose fence reads ```swift excerpt (README.md) need only be consecutive lines of one
# region, indentation aside.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 - <<'PYTHON'
import glob, re, sys

def normal(text):
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))

def dedent(lines):
    indent = min((len(l) - len(l.lstrip(" ")) for l in lines if l.strip()), default=0)
    return [l[indent:] for l in lines]

def contains(code, excerpt):
    """Whether `excerpt`'s lines are consecutive lines of `code`, both dedented."""
    want, lines = dedent(excerpt.split("\n")), code.split("\n")
    return any(dedent(lines[i : i + len(want)]) == want for i in range(len(lines) - len(want) + 1))

regions = {}
for path in sorted(glob.glob("Tests/**/*.swift", recursive=True)):
    text = open(path).read()
    for match in re.finditer(r"^// doc-snippet: (\S+)\n(.*?)^// end-doc-snippet$", text, re.S | re.M):
        name = match.group(1)
        if name in regions:
            sys.exit(f"check-doc-snippets: region {name} twice ({regions[name][0]}, {path})")
        regions[name] = (path, normal(match.group(2)))

failures, used = [], set()
documents = sorted(glob.glob("Sources/*/*.docc/*.md")) + ["README.md"]
blocks = 0
for path in documents:
    text = open(path).read()
    for match in re.finditer(r"^```swift( excerpt)?\n(.*?)^```$", text, re.S | re.M):
        blocks += 1
        block, excerpt = normal(match.group(2)), bool(match.group(1))
        line = text[: match.start()].count("\n") + 1
        found = [name for name, (_, code) in regions.items() if (contains(code, block) if excerpt else block == code)]
        if not found:
            failures.append(f"{path}:{line}: this ```swift block is no test's doc-snippet region"
                            + (" (an excerpt must be contained in one)" if excerpt else " (copy it from the test, or mark it excerpt)"))
        used.update(found)
for name, (path, _) in sorted(regions.items()):
    if name not in used:
        failures.append(f"{path}: region {name} is in no catalog and not in README.md")
for failure in failures:
    print("check-doc-snippets: " + failure, file=sys.stderr)
if failures:
    sys.exit(1)
print(f"check-doc-snippets: {blocks} code blocks match {len(regions)} compiled regions")
PYTHON
