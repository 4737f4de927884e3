"""Verbs that need no cluster: catalog, version, completion."""

from __future__ import annotations

import argparse

from roadlab.catalog.loader import CatalogError
from roadlab.cli.common import EXIT_NOT_FOUND, EXIT_OK, PACKAGE, CliError
from roadlab.cli.output import (
    catalog_entry_json,
    format_catalog,
    format_catalog_entry,
    package_version,
)
from roadlab.cli.session import App


def cmd_catalog(app: App, args: argparse.Namespace) -> int:
    try:
        catalog = app.catalog()
    except CatalogError as error:
        raise CliError(f"catalog: {error} (set ROADLAB_CATALOG to the labs directory)") from error
    if args.id is None:
        definitions = [definition for _, definition in sorted(catalog.items())]
        if app.structured:
            app.emit([catalog_entry_json(d) for d in definitions])
        elif app.output == "name":  # catalog labs are no API objects: their bare ids
            app.out.write("".join(f"{d.id}\n" for d in definitions))
        else:
            app.print(format_catalog(catalog, wide=app.output == "wide"))
        return EXIT_OK
    definition = catalog.get(args.id)
    if definition is None:
        known = ", ".join(sorted(catalog)) or "none"
        raise CliError(f"catalog lab {args.id} not found (known: {known})", EXIT_NOT_FOUND)
    if app.structured:
        app.emit(catalog_entry_json(definition))
    else:
        app.print(definition.id if app.output == "name" else format_catalog_entry(definition))
    return EXIT_OK


def cmd_version(app: App, args: argparse.Namespace) -> int:
    if app.structured:
        app.emit({"package": PACKAGE, "version": package_version()})
    else:
        app.print(f"kubectl lab {package_version()}")
    return EXIT_OK


def cmd_completion(app: App, args: argparse.Namespace) -> int:
    from roadlab.cli import completion  # noqa: PLC0415 - it imports the parser, which imports us

    app.print(completion.shell_script(args.shell))
    return EXIT_OK
