from sysops_agent.cli import main

raise SystemExit(main())
