"""A result on disk: fetching it, checking what it is, and naming it.

- `download`: one result URL -> one file, size-capped, resumable through part files;
- `partfiles`: the `.part` files a download writes before its atomic rename;
- `media`: what a response really holds (Content-Type, magic bytes) against what was due;
- `names`: the file names under `media/` (a job's results, earlier takes).
"""
