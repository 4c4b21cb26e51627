from groupwarden.cli.main import main

raise SystemExit(main())
