#!/usr/bin/env bash
# The comment step of mrspec's GitHub Action: post the review as ONE pull-request comment,
# updated in place on later pushes (found by the marker line review.sh writes first).
# GitHub's REST API through the gh CLI, which runners have; GH_TOKEN authorises it.
#
#   GH_REPO               owner/name (Actions: github.repository)
#   MRSPEC_PR             pull-request number
#   MRSPEC_COMMENT_FILE   the comment body (default: mrspec-comment.md)
#   GH                    the gh command (default: gh)
#
# A review of no spec is posted only over an earlier comment (the change was reverted).
# A token that may not write (pull requests from forks get a read-only one) is not an
# error of the change under review: the step warns and the review stays in the job summary.
set -euo pipefail

file="${MRSPEC_COMMENT_FILE:-mrspec-comment.md}"
gh="${GH:-gh}"
marker="<!-- mrspec-review -->"
: "${GH_REPO:?GH_REPO (owner/name) is required}"
: "${MRSPEC_PR:?MRSPEC_PR (the pull-request number) is required}"

if [ ! -s "$file" ]; then
    echo "::warning title=mrspec review::no comment to post ($file is missing or empty)"
    exit 0
fi

# GitHub refuses comment bodies over 65,536 characters: cut a long review (many specs)
# at a line end and say where the whole of it is.
body="$file"
if [ "$(wc -m < "$file")" -gt 65000 ]; then
    body="$file.short"
    python3 -c '
import sys
text = open(sys.argv[1], encoding="utf-8").read()
cut = text.rfind("\n", 0, 64000)
note = "\n\n**The review is too long for a comment: the rest is in the job summary.**\n"
open(sys.argv[2], "w", encoding="utf-8").write(text[:cut] + note)
' "$file" "$body"
fi

# Every comment of the PR (all pages), then the id of the first one carrying the marker.
# --paginate prints one JSON array per page, back to back.
existing="$("$gh" api --paginate "repos/$GH_REPO/issues/$MRSPEC_PR/comments" | python3 -c '
import json, sys
text, marker, at = sys.stdin.read(), sys.argv[1], 0
decoder = json.JSONDecoder()
while True:
    while at < len(text) and text[at].isspace():
        at += 1
    if at == len(text):
        break
    page, at = decoder.raw_decode(text, at)
    for comment in page:
        if marker in (comment.get("body") or ""):
            print(comment["id"])
            sys.exit(0)
' "$marker")"

if [ -z "$existing" ] && grep -qF "<!-- mrspec-review: no specs -->" "$file"; then
    echo "mrspec review: no job spec changed and no earlier comment; nothing to post"
    exit 0
fi
if [ -n "$existing" ]; then
    what="updated comment $existing"
    set -- api --method PATCH "repos/$GH_REPO/issues/comments/$existing" -F "body=@$body"
else
    what="posted a comment"
    set -- api --method POST "repos/$GH_REPO/issues/$MRSPEC_PR/comments" -F "body=@$body"
fi
if "$gh" "$@" > /dev/null; then
    echo "mrspec review: $what on $GH_REPO#$MRSPEC_PR"
else
    echo "::warning title=mrspec review::could not write the PR comment (a read-only token, as pull requests from forks get?); the review is in the job summary"
fi
