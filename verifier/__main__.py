"""``python -m verifier`` is the ``verifier`` command."""

from verifier.cli.main import main

raise SystemExit(main())
