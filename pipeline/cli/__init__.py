"""The command line: arguments in, exit codes out.

- `main`: `main()`, the error funnel (every error of `pipeline.errors` mapped to its exit code
  once; a bug writes a log and exits 70);
- `parser`: the argument parser and the typed request built from it (`requests`);
- `argtypes`: argparse value types shared by the runner's and the simulator's options;
- `report`: the summary and the dry run's plan as text;
- `progress`: progress bars and the run log, listeners of the engine's events.
Nothing below this package sees argparse.
"""
