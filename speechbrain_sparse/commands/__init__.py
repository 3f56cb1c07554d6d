"""Subcommands of ``sb-sparse``.

Each module here defines ``NAME`` (the subcommand), ``HELP`` (one line) and
``add_arguments(parser)`` plus ``run(args) -> int``. The CLI discovers them, so a
new command is one new module.
"""
