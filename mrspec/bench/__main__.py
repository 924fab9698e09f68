"""``python -m mrspec.bench``: the local-engine word-count benchmark (see the package)."""

from mrspec.bench import main

raise SystemExit(main())
