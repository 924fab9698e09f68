"""Unit tests of the spec rules: names, units, S3 names, overlaps, static entrypoints,
YAML positions, and the agreement of the schema's defaults with the model's constants."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mrspec.spec import model, rules
from mrspec.spec.entrypoints import entrypoint_problem, module_file
from mrspec.spec.schema import load_schema, subschema, suggest
from mrspec.spec.yamldoc import YamlSyntaxError, format_path, parse

# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "wordcount", "join-users-orders", "a1-b2", "x" * 40])
def test_good_names(name: str) -> None:
    assert rules.name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "empty"),
        ("x" * 41, "41 characters"),
        ("1job", "start with a lowercase letter"),
        ("-job", "start with a lowercase letter"),
        ("job-", "ends with a dash"),
        ("WordCount", "for example 'wordcount'"),
        ("word_count", "for example 'word-count'"),
        ("word count", "for example 'word-count'"),
        ("wörd", "non-ASCII character 'ö' (U+00F6 LATIN SMALL LETTER O WITH DIAERESIS) at position 2"),
    ],
)
def test_bad_names(name: str, fragment: str) -> None:
    problem = rules.name_problem(name)
    assert problem is not None and fragment in problem


# -- memory, sizes, durations -------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mb"),
    [
        (1769, 1769),
        ("2GiB", 2048),
        ("1769MiB", 1769),
        ("1769M", 1769),
        ("10GiB", 10240),
        (512.0, 512),
    ],
)
def test_memory_conversion(value: int | float | str, mb: int) -> None:
    assert rules.memory_mb(value) == mb


def test_memory_strings_must_be_whole_mib() -> None:
    with pytest.raises(ValueError, match=r"953\.67 MiB.*write 954"):
        rules.memory_mb("1GB")
    with pytest.raises(ValueError, match="is not a size"):
        rules.memory_mb("lots")


@pytest.mark.parametrize(
    ("value", "ok"),
    [(128, True), (10240, True), (127, False), (10241, False), ("64MiB", False), ("11GiB", False)],
)
def test_memory_range(value: int | str, ok: bool) -> None:
    assert (rules.memory_problem(value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [(1, True), ("15m", True), (900, True), (0, False), ("16m", False), ("1h", False)],
)
def test_timeout_range(value: int | str, ok: bool) -> None:
    assert (rules.timeout_problem(value) is None) is ok


# -- S3 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bucket", ["abc", "my-bucket", "my.bucket.example", "a" * 63, "123bucket", "b-1.x"]
)
def test_good_bucket_names(bucket: str) -> None:
    assert rules.bucket_name_problem(bucket) is None


@pytest.mark.parametrize(
    ("bucket", "fragment"),
    [
        ("ab", "3 to 63"),
        ("a" * 64, "3 to 63"),
        ("My-Bucket", "did you mean 'my-bucket'"),
        ("my_bucket", "lowercase letters, digits, dots and dashes; did you mean 'my-bucket'"),
        ("___", "may only hold"),
        ("-bucket", "start and end"),
        ("bucket.", "start and end"),
        ("my..bucket", "two dots"),
        ("10.0.0.1", "IP address"),
        ("xn--bucket", "'xn--'"),
        ("sthree-data", "'sthree-'"),
        ("amzn-s3-demo-bucket", "'amzn-s3-demo-'"),
        ("data-s3alias", "'-s3alias'"),
        ("data--ol-s3", "'--ol-s3'"),
        ("data.mrap", "'.mrap'"),
        ("data--x-s3", "'--x-s3'"),
        ("data--table-s3", "'--table-s3'"),
    ],
)
def test_bad_bucket_names(bucket: str, fragment: str) -> None:
    problem = rules.bucket_name_problem(bucket)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("location", "fragment"),
    [
        ("s3://", "names no bucket"),
        ("s3:/b/x", "write 's3://b/x'"),
        ("s3:b/x", "write 's3://b/x'"),
        ("s3a://b/x", "write 's3://b/x'"),
        ("gs://b/x", "gs:// locations are not supported"),
    ],
)
def test_location_near_misses(location: str, fragment: str) -> None:
    problem = rules.location_problem(location)
    assert problem is not None and fragment in problem


@pytest.mark.parametrize(
    ("output", "input_", "kind"),
    [
        ("s3://b/in", "s3://b/in/", "same"),
        ("s3://b/in/out/", "s3://b/in/", "inside"),
        ("s3://b/logs-out/", "s3://b/logs", "inside"),  # S3 prefixes are string prefixes
        ("s3://b/", "s3://b/in/", "contains"),
        ("s3://b/out/", "s3://b/in/", None),
        ("s3://c/in/", "s3://b/in/", None),
        ("/data/in", "/data/in", "same"),
        ("/data/in/out", "/data/in", "inside"),
        ("/data", "/data/in", "contains"),
        ("/data/input", "/data/in", None),  # local paths are folders, not string prefixes
        ("/data/in", "s3://b/data/in", None),
    ],
)
def test_overlap(output: str, input_: str, kind: str | None) -> None:
    assert rules.overlap(output, input_) == kind


def test_local_locations_resolve_against_the_base(tmp_path: Path) -> None:
    assert rules.resolve_location("in/", tmp_path) == str(tmp_path.resolve() / "in")
    assert rules.resolve_location("../x", tmp_path / "a") == str(tmp_path.resolve() / "x")
    assert rules.resolve_location("s3://b/k/", tmp_path) == "s3://b/k/"
    assert rules.resolve_location("/abs", tmp_path) == "/abs"


@pytest.mark.parametrize(
    ("key", "value", "what"),
    [("aws:x", "v", "key"), ("AWS:x", "v", "key"), ("a#b", "v", "key"), ("ok", "a;b", "value")],
)
def test_tag_rules(key: str, value: str, what: str) -> None:
    problem = rules.tag_problem(key, value)
    assert problem is not None and problem[0] == what
    assert rules.tag_problem("team name_1/x:y=z+w-@", "Data Team 1") is None


# -- entrypoints ----------------------------------------------------------------------------


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_entrypoints_are_found_statically(tmp_path: Path) -> None:
    write(
        tmp_path / "job.py",
        """\
        import os.path
        from collections import Counter as C
        from helpers import shared_reducer as reducer

        def mapper(line):
            raise SystemExit("user code must never run during validation")

        combiner = reducer
        try:
            from fast import speedy
        except ImportError:
            def speedy(x):
                return x
        if True:
            late: object = None
        """,
    )
    for func in ("mapper", "reducer", "combiner", "speedy", "late", "C", "os"):
        assert entrypoint_problem(tmp_path, f"job:{func}") is None, func


def test_packages_and_nested_modules(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "def top(x):\n    return x\n")
    write(tmp_path / "pkg" / "sub" / "mod.py", "def deep(x):\n    return x\n")
    assert module_file(tmp_path, "pkg") == tmp_path / "pkg" / "__init__.py"
    assert entrypoint_problem(tmp_path, "pkg:top") is None
    assert entrypoint_problem(tmp_path, "pkg.sub.mod:deep") is None
    problem = entrypoint_problem(tmp_path, "pkg.sub:deep")
    assert problem is not None and "pkg/sub.py nor pkg/sub/__init__.py" in problem


@pytest.mark.parametrize(
    ("source", "func", "fragment"),
    [
        ("def mapper(x):\n    pass\n", "maper", "did you mean 'job:mapper'"),
        ("def a(x):\n    pass\n", "zzz", "it defines a"),
        ("class Mapper:\n    pass\n", "Mapper", "is a class"),
        ("async def mapper(x):\n    pass\n", "mapper", "async"),
        ("def mapper(x)\n    pass\n", "mapper", "syntax error at line 1"),
        ("def outer():\n    def inner(x):\n        pass\n", "inner", "no top-level function"),
    ],
)
def test_entrypoint_problems(tmp_path: Path, source: str, func: str, fragment: str) -> None:
    write(tmp_path / "job.py", source)
    problem = entrypoint_problem(tmp_path, f"job:{func}")
    assert problem is not None and fragment in problem


def test_a_py_suffix_is_pointed_out(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "def mapper(x):\n    pass\n")
    problem = entrypoint_problem(tmp_path, "job.py:mapper")
    assert problem is not None and "without '.py': 'job:mapper'" in problem


def test_star_import_gets_the_benefit_of_the_doubt(tmp_path: Path) -> None:
    write(tmp_path / "job.py", "from helpers import *\n")
    assert entrypoint_problem(tmp_path, "job:anything") is None


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("job.mapper", "did you mean 'job:mapper'"),
        ("jobs/wc:mapper", "'jobs.wc:mapper'"),
        ("job:mapper()", "'job:mapper'"),
    ],
)
def test_entrypoint_syntax_hints(text: str, fragment: str) -> None:
    assert not rules.is_entrypoint(text)
    assert fragment in rules.entrypoint_syntax_problem(text)


# -- YAML positions -------------------------------------------------------------------------


def test_positions_of_values_and_keys() -> None:
    doc = parse("a:\n  b: [1, 2]\n  'c.d': x\non: yes\n")
    assert doc.data == {"a": {"b": [1, 2], "c.d": "x"}, "on": True}
    assert doc.values[("a", "b", 1)] == (2, 10)
    assert doc.keys[("a", "c.d")] == (3, 3)
    assert doc.position(("a", "missing"), prefer_key=True) == (1, 1)
    assert format_path(("a", "c.d")) == 'a["c.d"]'
    assert format_path(("input", "prefix", 1)) == "input.prefix[1]"


def test_anchors_and_merge_keys_are_expanded() -> None:
    doc = parse("base: &b {memory: 512, timeout: 60}\nmap:\n  <<: *b\n  timeout: 90\n")
    assert doc.data["map"] == {"memory": 512, "timeout": 90}
    assert doc.problems == []


def test_syntax_errors_carry_their_position() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse("a: 1\nb: [2\n")
    assert info.value.line == 2  # where the '[' to close is, not where the parser gave up
    assert "the '[' opened here is not closed" in info.value.message


# -- schema ---------------------------------------------------------------------------------


def test_schema_defaults_equal_the_model_constants() -> None:
    defaults = {
        ("input", "format"): model.DEFAULT_INPUT_FORMAT,
        ("input", "split_size"): model.DEFAULT_SPLIT_SIZE,
        ("map", "form"): "record",
        ("map", "memory"): model.DEFAULT_MEMORY_MB,
        ("map", "timeout"): model.DEFAULT_MAP_TIMEOUT_S,
        ("map", "bin_size"): model.DEFAULT_BIN_SIZE,
        ("reduce", "partitions"): model.DEFAULT_PARTITIONS,
        ("reduce", "memory"): model.DEFAULT_MEMORY_MB,
        ("reduce", "timeout"): model.DEFAULT_REDUCE_TIMEOUT_S,
        ("output", "format"): model.DEFAULT_OUTPUT_FORMAT,
        ("code", "path"): ".",
        ("code", "exclude"): [],
        ("limits", "max_concurrency"): model.DEFAULT_MAX_CONCURRENCY,
        ("limits", "max_attempts"): model.DEFAULT_MAX_ATTEMPTS,
        ("limits", "max_bad_records"): model.DEFAULT_MAX_BAD_RECORDS,
        ("aws", "region"): model.DEFAULT_REGION,
        ("aws", "architecture"): model.DEFAULT_ARCHITECTURE,
        ("aws", "tags"): {},
        ("aws", "log_retention_days"): model.DEFAULT_LOG_RETENTION_DAYS,
        ("description",): "",
    }
    convert = {"split_size": rules.size_bytes, "bin_size": rules.size_bytes}
    convert |= {"memory": rules.memory_mb, "timeout": rules.timeout_seconds}
    for path, constant in defaults.items():
        node = subschema(path)
        assert node is not None and "default" in node, path
        value = node["default"]
        value = convert.get(str(path[-1]), lambda v: v)(value)
        assert value == constant, path


def test_every_optional_field_has_title_description_and_default() -> None:
    schema = load_schema()
    no_default = {("map", "combiner"), ("code", "requirements"), ("limits", "budget_usd")}
    for section, node in schema["properties"].items():
        assert node.get("title") and node.get("description"), section
        required = set(node.get("required", []))
        for key, field in node.get("properties", {}).items():
            assert field.get("title") and field.get("description"), (section, key)
            if key not in required and (section, key) not in no_default:
                assert "default" in field, (section, key)


def test_the_model_enums_match_the_schema() -> None:
    assert subschema(("input", "format"))["enum"] == ["text", "jsonl"]  # type: ignore[index]
    assert subschema(("output", "format"))["enum"] == ["tsv", "jsonl"]  # type: ignore[index]
    assert subschema(("aws", "architecture"))["enum"] == ["arm64", "x86_64"]  # type: ignore[index]
    assert subschema(("apiVersion",))["enum"] == [model.API_VERSION]  # type: ignore[index]


def test_the_schema_is_valid_and_accepts_the_examples_as_editors_see_them() -> None:
    import yaml
    from jsonschema import Draft202012Validator

    Draft202012Validator.check_schema(load_schema())
    validator = Draft202012Validator(load_schema())
    examples = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*/job.yaml"))
    assert examples
    for spec_file in examples:
        data = yaml.safe_load(spec_file.read_text(encoding="utf-8"))
        assert [e.message for e in validator.iter_errors(data)] == [], spec_file


def test_suggest() -> None:
    choices = ["memory", "timeout", "bin_size", "entrypoint"]
    assert suggest("memroy", choices) == "memory"
    assert suggest("Timeout", choices) == "timeout"
    assert suggest("binsize", choices) == "bin_size"
    assert suggest("qqq", choices) is None


def test_reserved_tags_agree_with_what_the_stack_sets() -> None:
    from mrspec.aws import lower

    assert set(rules.MRSPEC_TAG_KEYS) == {
        lower.MRSPEC_TAG_JOB,
        lower.MRSPEC_TAG_RUN,
        lower.MRSPEC_TAG_MANAGED,
    }
    assert subschema(("aws", "tags"))["maxProperties"] == rules.MAX_USER_TAGS  # type: ignore[index]
    problem = rules.tag_problem("mrspec:run", "x")
    assert problem is not None and problem[0] == "key"


@pytest.mark.parametrize(
    ("pattern", "rel", "hit"),
    [
        ("*.py", "job.py", True),
        ("job.py", "job.py", True),
        ("pkg", "pkg/mod.py", True),
        ("pkg/**", "pkg/sub/mod.py", True),
        ("pkg/", "pkg/mod.py", True),
        ("*.csv", "job.py", False),
        ("tests/*", "job.py", False),
        ("pk", "pkg/mod.py", False),
    ],
)
def test_exclude_patterns_match_like_the_packager(pattern: str, rel: str, hit: bool) -> None:
    assert rules.excludes(pattern, rel) is hit


@pytest.mark.parametrize(
    ("pattern", "fragment"),
    [("/data/*", "write 'data/*'"), ("..\\x", "'/'"), ("../x", "outside code.path")],
)
def test_bad_exclude_patterns(pattern: str, fragment: str) -> None:
    problem = rules.exclude_pattern_problem(pattern)
    assert problem is not None and fragment in problem
    assert rules.exclude_pattern_problem("data/**") is None


def test_exclude_matching_agrees_with_the_packager() -> None:
    from pathlib import PurePosixPath

    from mrspec.aws import package

    patterns = ["*.py", "job.py", "pkg", "pkg/**", "pkg/", "*.csv", "tests/*", "p*", "sub"]
    files = ["job.py", "pkg/mod.py", "pkg/sub/deep.py", "tests/test_x.py", "data.csv"]
    for pattern in patterns:
        for rel in files:
            parts = rel.split("/")
            ancestors = [PurePosixPath("/".join(parts[:n])) for n in range(1, len(parts) + 1)]
            packager = any(package._excluded(a, [pattern]) for a in ancestors)
            assert rules.excludes(pattern, rel) is packager, (pattern, rel)
