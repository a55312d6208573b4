"""An import-linter contract type of Switchyard's own (pyproject.toml, ``make lint``)."""

from __future__ import annotations

import re

import grimp
from importlinter.application import output
from importlinter.domain.contract import Contract, ContractCheck

NAMES = re.compile(r"\bimport\s+\(?(?P<names>[^)#]*)")


class PrivateNamesContract(Contract):
    """No module imports another module's private names (``from .delivery import _mark_lost``):
    a name that starts with one underscore belongs to its module. Importing a private module
    from within its own package (``from . import _helpers``) is allowed."""

    type_name = "private_names"

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found: list[str] = []
        for importer in sorted(graph.modules):
            for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                for detail in graph.get_import_details(importer=importer, imported=imported):
                    for name in _private_names(detail["line_contents"], imported):
                        found.append(
                            f"{importer}:{detail['line_number']} imports {name} from {imported}"
                        )
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for line in check.metadata["found"]:
            output.print_error(line)


def _private_names(line: str, imported: str) -> list[str]:
    match = NAMES.search(line)
    if match is None or not line.lstrip().startswith("from "):
        return []
    names = [part.split(" as ")[0].strip() for part in match["names"].split(",")]
    module = imported.rsplit(".", 1)[-1]
    return [
        name
        for name in names
        if name.startswith("_") and not name.startswith("__") and name != module
    ]
