from musebridge.cli import main

raise SystemExit(main())
