"""Value rules of the spec format: conversions and the readable reasons a value is wrong.

Each ``*_problem`` function returns ``None`` for a good value or a message saying what is
wrong and how to fix it. The schema translation (``mrspec.spec.schema``) and the semantic
checks (``mrspec.spec.checks``) share them, so one mistake reads the same either way.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import os
import re
from pathlib import Path

from mrspec.spec.model import is_s3_uri, split_s3_uri
from mrspec.units import parse_duration, parse_size

NAME_MAX = 40
MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10_240
TIMEOUT_MIN_S, TIMEOUT_MAX_S = 1, 900
MIB = 1024**2

_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_ENTRYPOINT = re.compile(rf"^{_IDENT}(\.{_IDENT})*:{_IDENT}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$")
_BUCKET_CHARS = re.compile(r"^[a-z0-9.-]+$")
_TAG_CHARS = re.compile(r"^[\w\s.:/=+\-@]*$")


# -- name ------------------------------------------------------------------------------


# Letters from other scripts that look like ASCII ones (the usual suspects of a pasted
# name); anything else non-ASCII is named by its Unicode name alone.
_LOOKALIKES = dict(
    zip(
        "аеорсухіјѕԁһӏАВЕКМНОРСТХУΑΒΕΖΗΙΚΜΝΟΡΤΥΧαοιρνкмтѵ‐‑‒–—−＿",
        "aeopcyxijsdhlABEKMHOPCTXYABEZHIKMNOPTYXaoipvkmtv------_",
        strict=True,
    )
)


def lookalike_problem(text: str, what: str) -> str | None:
    """Name the first non-ASCII character of ``text`` and the ASCII text meant."""
    import unicodedata

    for index, char in enumerate(text):
        if char.isascii():
            continue
        meant = "".join(
            _LOOKALIKES.get(c) or unicodedata.normalize("NFKC", c) if not c.isascii() else c
            for c in text
        )
        name = unicodedata.name(char, "an unnamed character")
        looks = f", which looks like {_LOOKALIKES[char]!r}" if char in _LOOKALIKES else ""
        fix = f"; did you mean {meant!r}?" if meant.isascii() and meant != text else ""
        return (
            f"{what} {text!r} has the non-ASCII character {char!r} (U+{ord(char):04X} {name}) "
            f"at position {index + 1}{looks}{fix}"
        )
    return None


def name_problem(name: str) -> str | None:
    """Job names become parts of cloud resource names, hence the strict rule."""
    rule = "lowercase letters, digits and dashes, starting with a letter"
    lookalike = lookalike_problem(name, "the job name")
    if lookalike:
        return lookalike
    if not name:
        return f"the job name is empty; use {rule}"
    if len(name) > NAME_MAX:
        return f"the job name is {len(name)} characters; at most {NAME_MAX} are allowed"
    if _NAME.match(name):
        return None
    fixed = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    fixed = re.sub(r"^[0-9-]+", "", fixed)[:NAME_MAX].rstrip("-")
    hint = f"; for example {fixed!r}" if fixed and _NAME.match(fixed) else ""
    if name.endswith("-"):
        return f"the job name {name!r} ends with a dash; end it with a letter or digit{hint}"
    if not name[0].isalpha() or not name[0].isascii():
        return f"the job name {name!r} must start with a lowercase letter{hint}"
    if any(c.isupper() for c in name):
        return f"the job name {name!r} has uppercase letters; use {rule}{hint}"
    return f"the job name {name!r} may only hold {rule}{hint}"


# -- entrypoints -------------------------------------------------------------------------


def entrypoint_syntax_problem(text: str) -> str:
    """Why ``text`` is not ``module:function`` (called only when it is not)."""
    lookalike = lookalike_problem(text, "the entrypoint")
    if lookalike:
        return lookalike
    base = f"{text!r} is not of the form module:function"
    if ":" not in text and "." in text:
        module, _, func = text.rpartition(".")
        return f"{base}; did you mean '{module}:{func}'?"
    module, _, func = text.partition(":")
    if module.endswith(".py"):
        return f"{base}; name the module without '.py': '{module[:-3]}:{func}'"
    if "/" in module or "\\" in module:
        dotted = module.replace("\\", "/").strip("/").replace("/", ".")
        return f"{base}; use dots for packages ('{dotted}:{func}') and code.path for the folder"
    if func.endswith("()"):
        return f"{base}; name the function without parentheses: '{module}:{func[:-2]}'"
    return f"{base} (for example wordcount:mapper)"


def is_entrypoint(text: str) -> bool:
    return bool(_ENTRYPOINT.match(text))


# -- sizes, memory, durations -------------------------------------------------------------


def _whole(value: int | float | str) -> int | str:
    """YAML may hand us ``2.0``; a whole float is an integer, anything else stays as is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[return-value]


def size_bytes(value: int | float | str) -> int:
    """A size in bytes (integers are bytes); ``ValueError`` with a readable message."""
    return parse_size(_whole(value))


def size_problem(value: int | float | str) -> str | None:
    try:
        n = size_bytes(value)
    except ValueError as exc:
        return str(exc)
    return None if n >= 1 else "a size must be at least 1 byte"


def memory_mb(value: int | float | str) -> int:
    """Lambda memory in MB (Lambda's MB are MiB).

    An integer (quoted or not) is megabytes. Any other string is a size that must come to a whole number of MiB:
    ``2GiB`` -> 2048, ``1769MiB`` or ``1769M`` -> 1769. Decimal units rarely do
    (``1GB`` is 953.67 MiB) and are refused with the integer to write instead.
    """
    value = _whole(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)  # a quoted number means what the number means: MB
    n = parse_size(str(value))
    if n % MIB:
        mib = n / MIB
        closest = max(MEMORY_MIN_MB, round(mib))
        raise ValueError(
            f"{value!r} is {mib:.2f} MiB; Lambda memory is a whole number of MB "
            f"(Lambda's MB are MiB): write {closest} or {closest}MiB"
        )
    return n // MIB


def memory_problem(value: int | float | str) -> str | None:
    try:
        mb = memory_mb(value)
    except ValueError as exc:
        return str(exc)
    return memory_range_problem(mb)


def memory_range_problem(mb: int) -> str | None:
    if MEMORY_MIN_MB <= mb <= MEMORY_MAX_MB:
        return None
    return f"Lambda memory must be {MEMORY_MIN_MB} to {MEMORY_MAX_MB:,} MB, got {mb:,}" + (
        "; an integer is MB, not bytes (write 1769 or '2GiB')" if mb > MEMORY_MAX_MB else ""
    )


def timeout_seconds(value: int | float | str) -> int:
    return parse_duration(_whole(value))


def timeout_problem(value: int | float | str) -> str | None:
    try:
        seconds = timeout_seconds(value)
    except ValueError as exc:
        return str(exc)
    return timeout_range_problem(seconds)


def timeout_range_problem(seconds: int) -> str | None:
    if TIMEOUT_MIN_S <= seconds <= TIMEOUT_MAX_S:
        return None
    return (
        f"a Lambda timeout must be {TIMEOUT_MIN_S} to {TIMEOUT_MAX_S} seconds (15m), "
        f"got {seconds} s; use more map tasks (smaller bin_size) or more partitions instead"
    )


# -- AWS names ----------------------------------------------------------------------------


def region_problem(region: str) -> str:
    lowered = region.lower().replace("_", "-")
    if lowered != region and _REGION.match(lowered):
        return f"{region!r} is not a region name; did you mean {lowered!r}?"
    return f"{region!r} is not an AWS region name such as us-east-1 or eu-west-3"


def bucket_name_problem(bucket: str) -> str | None:
    """The naming rules of S3 general purpose buckets (Amazon S3 User Guide, "General
    purpose bucket naming rules")."""
    if not 3 <= len(bucket) <= 63:
        return f"S3 bucket name {bucket!r} must be 3 to 63 characters long, not {len(bucket)}"
    if not _BUCKET_CHARS.match(bucket):
        fixed = re.sub(r"[^a-z0-9.-]+", "-", bucket.lower()).strip(".-")
        hint = f"; did you mean {fixed!r}?" if bucket_name_problem(fixed) is None else ""
        return (
            f"S3 bucket name {bucket!r} may only hold lowercase letters, digits, dots "
            f"and dashes{hint}"
        )
    if not (bucket[0].isalnum() and bucket[-1].isalnum()):
        return f"S3 bucket name {bucket!r} must start and end with a letter or digit"
    if ".." in bucket:
        return f"S3 bucket name {bucket!r} must not contain two dots in a row"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        pass
    else:
        return f"S3 bucket name {bucket!r} must not look like an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if bucket.startswith(prefix):
            return f"S3 bucket names must not start with {prefix!r} (reserved by AWS)"
    for suffix in ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"):
        if bucket.endswith(suffix):
            return f"S3 bucket names must not end with {suffix!r} (reserved by AWS)"
    return None


_S3_HTTPS = re.compile(
    r"^https?://(?:(?P<vhost>[a-z0-9.-]+)\.s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com"
    r"|s3[.-](?:[a-z0-9-]+\.)?amazonaws\.com/(?P<path>[a-z0-9.-]+))(?P<key>/.*)?$",
    re.IGNORECASE,
)


def _s3_near_miss(location: str) -> str | None:
    """ARNs, console/HTTPS URLs and globs: what people paste for an S3 prefix."""
    if location.startswith("arn:"):
        _, _, resource = location.partition(":::")
        if location.startswith(("arn:aws:s3:::", "arn:aws-cn:s3:::", "arn:aws-us-gov:s3:::")):
            return f"{location!r} is an ARN, not a prefix; did you mean 's3://{resource}'?"
        return f"{location!r} is an ARN; input and output prefixes are s3://bucket/prefix URIs"
    match = _S3_HTTPS.match(location)
    if match:
        bucket = match.group("vhost") or match.group("path")
        key = (match.group("key") or "/").lstrip("/")
        return f"{location!r} is an HTTPS URL; did you mean 's3://{bucket}/{key}'?"
    if any(c in location for c in "*?["):
        head = re.split(r"[*?\[]", location, maxsplit=1)[0]
        folder = head[: head.rfind("/") + 1] or head
        return (
            f"{location!r} is a glob; a prefix takes every object under it (hidden _ and . "
            f"names skipped): did you mean {folder!r}?"
        )
    return None


def location_problem(location: str) -> str | None:
    """A prefix is ``s3://bucket[/key]`` or a local path; catch near misses of the former."""
    lowered = location.lower()
    near_miss = _s3_near_miss(location)
    if near_miss:
        return near_miss
    if is_s3_uri(location):
        bucket, _ = split_s3_uri(location)
        if not bucket:
            return f"{location!r} names no bucket; write s3://bucket/prefix"
        return bucket_name_problem(bucket)
    for near in ("s3:/", "s3:", "s3a://", "s3n://"):
        if lowered.startswith(near):
            rest = location[len(near) :].lstrip("/")
            return f"{location!r} is not an S3 URI; write 's3://{rest}'"
    if "://" in location:
        scheme = location.split("://", 1)[0]
        return f"{scheme}:// locations are not supported; use s3://bucket/prefix or a local path"
    return None


# mrspec tags every resource with these keys itself (see mrspec.aws.lower); with AWS's
# limit of 50 tags per resource, that leaves 47 for the spec.
MRSPEC_TAG_KEYS = ("mrspec:job", "mrspec:run", "mrspec:managed-by")
MAX_USER_TAGS = 50 - len(MRSPEC_TAG_KEYS)


def tag_problem(key: str, value: str) -> tuple[str, str] | None:
    """``(what, message)`` where what is "key" or "value", or ``None``.

    AWS's tag rules: keys up to 128 characters, values up to 256 (both checked by the
    schema), letters, digits, spaces and ``_ . : / = + - @``, no ``aws:`` prefix.
    """
    if key.lower().startswith("aws:"):
        return "key", f"tag key {key!r}: the 'aws:' prefix is reserved by AWS"
    if key.lower().startswith("mrspec:"):
        return "key", (
            f"tag key {key!r}: the 'mrspec:' prefix is reserved for the tags mrspec sets "
            f"itself ({', '.join(MRSPEC_TAG_KEYS)})"
        )
    if not _TAG_CHARS.match(key):
        return "key", (f"tag key {key!r} may only hold letters, digits, spaces and _ . : / = + - @")
    if not _TAG_CHARS.match(value):
        return "value", (
            f"tag value {value!r} may only hold letters, digits, spaces and _ . : / = + - @"
        )
    return None


# -- code.exclude ---------------------------------------------------------------------------


def exclude_pattern_problem(pattern: str) -> str | None:
    """``code.exclude`` globs match paths relative to ``code.path``, with ``/``."""
    if "\\" in pattern:
        return f"{pattern!r}: write paths with '/', not '\\'"
    if pattern.startswith("/"):
        return f"{pattern!r}: patterns are relative to code.path; write {pattern.lstrip('/')!r}"
    if ".." in pattern.split("/"):
        return f"{pattern!r}: a pattern cannot reach outside code.path"
    return None


def excludes(pattern: str, rel: str) -> bool:
    """Whether ``pattern`` leaves the file ``rel`` (relative to code.path) out of the
    package: it matches the path, the file name, or (``dir/**``) a folder above it, as
    the packager (``mrspec.aws.package``) applies it."""
    pat = pattern.rstrip("/")
    parts = rel.split("/")
    for depth in range(1, len(parts) + 1):
        text = "/".join(parts[:depth])
        if fnmatch.fnmatchcase(text, pat) or fnmatch.fnmatchcase(parts[depth - 1], pat):
            return True
        if pat.endswith("/**") and (text == pat[:-3] or text.startswith(pat[:-2])):
            return True
    return False


# -- locations ---------------------------------------------------------------------------


def resolve_local(text: str, base: Path) -> Path:
    """A local path from the spec, absolute: ``~`` expanded, relative to ``base``."""
    return (base / os.path.expanduser(text)).resolve()


def resolve_location(text: str, base: Path) -> str:
    """An ``s3://`` URI as written, or a local path made absolute."""
    return text if is_s3_uri(text) else str(resolve_local(text, base))


def overlap(a: str, b: str) -> str | None:
    """How location ``a`` overlaps location ``b``: "same", "inside", "contains" or ``None``.

    Both are resolved (see :func:`resolve_location`). S3 prefixes are plain string
    prefixes of keys (``s3://b/logs`` also lists ``s3://b/logs-old/x``); local paths are
    folders (``/data/in`` does not contain ``/data/input``).
    """
    if is_s3_uri(a) != is_s3_uri(b):
        return None
    if is_s3_uri(a):
        bucket_a, key_a = split_s3_uri(a)
        bucket_b, key_b = split_s3_uri(b)
        if bucket_a != bucket_b:
            return None
        if key_a.rstrip("/") == key_b.rstrip("/"):
            return "same"
        if key_a.startswith(key_b):
            return "inside"
        return "contains" if key_b.startswith(key_a) else None
    pa, pb = Path(a), Path(b)
    if pa == pb:
        return "same"
    if pa.is_relative_to(pb):
        return "inside"
    return "contains" if pb.is_relative_to(pa) else None
