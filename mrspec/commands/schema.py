"""``mrspec schema``: print the JSON Schema of the spec format (or its Markdown reference)."""

from __future__ import annotations

import click


@click.command(
    "schema",
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--markdown",
    is_flag=True,
    help="Print the field reference as Markdown (the text of docs/spec.md) instead.",
)
def command(markdown: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of the job spec format, apiVersion mrspec/v1.

    Editors that speak yaml-language-server validate and complete specs with it when a
    spec starts with a line such as:

    \b
      # yaml-language-server: $schema=../../mrspec/spec/schema.json

    \b
    Examples:
      mrspec schema > mrspec-v1.schema.json
      mrspec schema --markdown > docs/spec.md
    """
    if markdown:
        from mrspec.spec.reference import markdown_reference

        click.echo(markdown_reference(), nl=False)
        return
    from mrspec.spec.schema import schema_text

    click.echo(schema_text(), nl=False)
