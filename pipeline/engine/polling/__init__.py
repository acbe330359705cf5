"""The tracker's schedule: when to ask Kie about each task next.

- `schedule`: `PollPlanner`, which learns each timing class's latency and spends the query
  budget where it buys the most (the tracker's only entry point);
- `maths`: fitting a latency distribution from censored answers and placing polls (pure);
- `classes`: timing classes (a model plus the input fields that set how long a task takes).
"""
