#!/usr/bin/env bash
# The review step of mrspec's GitHub Action (action.yml), a plain script so that it runs
# the same on a laptop, in tests and in Actions:
#
#   1. find the job specs that changed between MRSPEC_BASE and HEAD;
#   2. mrspec validate --github    (problems become annotations on the PR's lines)
#   3. mrspec compile --check      (stacks/ is not stale)
#   4. mrspec plan --format markdown [--base-ref BASE] [--listing FILE] for each valid spec
#   5. write the PR comment to MRSPEC_COMMENT_FILE (and the job summary) and the outcome
#      to GITHUB_OUTPUT: changed-specs, failed=true|false.
#
# It exits 0 even when a check fails, so the comment is still posted; action.yml fails
# the job afterwards from the `failed` output. Environment (all optional):
#   MRSPEC_BASE           git ref to compare with (default: origin/main)
#   MRSPEC_SPECS          spec files to review, space-separated (default: the changed ones)
#   MRSPEC_SPEC_PATTERN   extended regex naming spec files (default: job.y(a)ml, *.mrspec.y(a)ml)
#   MRSPEC_STACKS         folder of the compiled artifacts (default: stacks)
#   MRSPEC_COMMENT_FILE   where the comment goes (default: mrspec-comment.md)
#   MRSPEC                the mrspec command (default: mrspec)
# A spec's saved input listing, <spec without .yaml>.listing.jsonl beside it (for example
# jobs/wc/job.listing.jsonl), is passed to plan with --listing: plans need no AWS access.
set -uo pipefail

base="${MRSPEC_BASE:-origin/main}"
# The same files as the pre-commit hooks' `files:` (a test keeps the two equal).
pattern="${MRSPEC_SPEC_PATTERN:-(^|/)(job|.*\.mrspec)\.ya?ml$}"
stacks="${MRSPEC_STACKS:-stacks}"
comment="${MRSPEC_COMMENT_FILE:-mrspec-comment.md}"
mrspec="${MRSPEC:-mrspec}"
marker="<!-- mrspec-review -->"
failed=false

output() {  # name=value to the step's outputs (a no-op outside Actions)
    if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$1" >> "$GITHUB_OUTPUT"; fi
}

if ! git rev-parse --verify --quiet "$base^{commit}" > /dev/null; then
    echo "::error title=mrspec review::base ref '$base' is not in this checkout; check out with fetch-depth: 0 (actions/checkout) or fetch it first"
    output "failed=true"
    exit 0
fi

specs=()
if [ -n "${MRSPEC_SPECS:-}" ]; then
    read -r -a specs <<< "$MRSPEC_SPECS"
else
    # Files changed on this branch since it left the base (three dots: the merge base),
    # deleted ones left out: there is nothing left to check.
    while IFS= read -r file; do
        specs+=("$file")
    done < <(git diff --name-only --diff-filter=d "$base...HEAD" -- | grep -E "$pattern" || true)
fi
output "changed-specs=${specs[*]}"

{
    echo "$marker"
    echo "## mrspec review"
    echo
} > "$comment"

if [ "${#specs[@]}" -eq 0 ]; then
    echo "no job specs changed since $base"
    echo "No job spec changed since \`$base\`." >> "$comment"
    echo "<!-- mrspec-review: no specs -->" >> "$comment"
    output "failed=false"
    exit 0
fi
echo "reviewing ${#specs[@]} changed spec(s): ${specs[*]}"

section() {  # title, status, command output file
    {
        echo "<details><summary>$1: $2</summary>"
        echo
        echo '```'
        cat "$3"
        echo '```'
        echo "</details>"
        echo
    } >> "$comment"
}

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

# Annotations go to stdout, where Actions reads them; the comment gets the plain lines.
if "$mrspec" validate --github "${specs[@]}"; then
    echo "**validate**: ${#specs[@]} spec(s) valid" >> "$comment"
    echo >> "$comment"
else
    failed=true
    "$mrspec" validate "${specs[@]}" > "$log" 2>&1
    section "**validate**" "problems found" "$log"
fi

valid=()
for spec in "${specs[@]}"; do
    if "$mrspec" validate --quiet "$spec" > /dev/null 2>&1; then valid+=("$spec"); fi
done

if [ "${#valid[@]}" -gt 0 ]; then
    if "$mrspec" compile --check --out "$stacks" "${valid[@]}" > "$log" 2>&1; then
        echo "**compile --check**: \`$stacks/\` is up to date" >> "$comment"
        echo >> "$comment"
    else
        failed=true
        cat "$log"
        # Each stale file as an annotation too (the message lines are "FILE: what").
        sed -nE 's/^(.+): (missing|differs|not produced by the spec any more)$/::error file=\1,title=mrspec compile --check::\2; run mrspec compile on its spec and commit the result/p' "$log"
        section "**compile --check**" "\`$stacks/\` is stale" "$log"
    fi
fi

for spec in "${valid[@]}"; do
    args=(plan "$spec" --format markdown)
    # A spec new on this branch has no old version to compare with.
    if git cat-file -e "$base:$spec" 2> /dev/null; then args+=(--base-ref "$base"); fi
    listing="${spec%.*}.listing.jsonl"
    if [ -f "$listing" ]; then args+=(--listing "$listing"); fi
    echo "mrspec ${args[*]}"
    if "$mrspec" "${args[@]}" > "$log" 2> "$log.err"; then
        { echo; cat "$log"; echo; } >> "$comment"
    else
        failed=true
        cat "$log.err"
        cat "$log.err" >> "$log"
        section "**plan** \`$spec\`" "failed" "$log"
    fi
    rm -f "$log.err"
done

if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$comment" >> "$GITHUB_STEP_SUMMARY"; fi
output "failed=$failed"
echo "comment written to $comment (failed=$failed)"
exit 0
