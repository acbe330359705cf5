"""All SQL and the output folder it lives in.

- `store`: `StateStore`, the rows every run reads and writes (the durability rules at its top);
- `rows`: the frozen rows it hands out (`Attempt`, `StoredResult`, `StoredUpload`, `Phase`);
- `opening`: opening a state file with its checks (ours, endpoint, manifest, schema version);
- `schema`: the SQL schema and its migrations, versioned;
- `folder`: the output folder's own checks (links, lost or foreign state, files outside it);
- `lock`: one run per output folder, an OS file lock.
"""
